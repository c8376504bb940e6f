"""JobManager: background jobs with status, progress, ETA, cancellation and a concurrency cap."""
from __future__ import annotations

import threading
import time

import pytest

from ptm_core.base.errors import PTMError
from ptm_core.runs.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobManager

TIMEOUT = 5.0  # generous deadline for things that should take milliseconds


def _finished(job):
    # `finished` is written last (after status, progress, error, result), so poll on it, not on status
    return lambda: job.finished is not None


def test_job_runs_queued_to_running_to_done(wait_until):
    manager = JobManager(max_concurrent=1)
    blocker_go, started, go = threading.Event(), threading.Event(), threading.Event()
    blocker = manager.submit("blocker", "blocker", lambda ctx: blocker_go.wait(TIMEOUT))
    assert wait_until(lambda: blocker.status == RUNNING, TIMEOUT)

    def work(ctx):
        started.set()
        assert go.wait(TIMEOUT)
        ctx.progress(0.5, "half way")
        return {"answer": 42}

    job = manager.submit("k", "the job", work)
    assert job.status == QUEUED and job.started is None and job.eta_seconds is None
    blocker_go.set()
    assert started.wait(TIMEOUT)
    assert job.status == RUNNING and job.started is not None
    go.set()
    assert wait_until(_finished(job), TIMEOUT)
    assert job.status == DONE
    assert job.progress == 1.0
    assert job.result == {"answer": 42}
    assert job.error is None
    assert job.finished >= job.started
    assert job.log and "started the job" in job.log[0]
    assert manager.get(job.id) is job and manager.find("k") is job
    assert manager.get(None) is None and manager.get("nope") is None
    assert job in manager.jobs()


def test_same_key_returns_the_same_job(wait_until):
    manager = JobManager(max_concurrent=2)
    go = threading.Event()
    calls = []

    def work(ctx):
        calls.append(1)
        go.wait(TIMEOUT)
        return "ok"

    first = manager.submit("same", "one", work)
    assert manager.submit("same", "two", work) is first  # while running
    other = manager.submit("other", "three", lambda ctx: "x")
    assert other is not first
    go.set()
    assert wait_until(_finished(first), TIMEOUT) and first.status == DONE
    assert manager.submit("same", "again", work) is first  # and once done
    assert len(calls) == 1


def test_ptm_error_fails_with_its_one_line_message(wait_until):
    manager = JobManager()

    def work(ctx):
        raise PTMError("Unknown model 'xyz'. List models with: python -m ptm_core models")

    job = manager.submit("bad", "bad", work)
    assert wait_until(_finished(job), TIMEOUT)
    assert job.status == FAILED
    assert job.error == "Unknown model 'xyz'. List models with: python -m ptm_core models"
    assert job.result is None


def test_unexpected_exception_fails_with_type_and_first_line(wait_until, caplog):
    manager = JobManager()

    def work(ctx):
        raise ValueError("something broke\nwith a second line\nand a third")

    job = manager.submit("boom", "boom", work)
    assert wait_until(_finished(job), TIMEOUT)
    assert job.status == FAILED
    assert job.error == "ValueError: something broke"


def test_failed_job_can_be_resubmitted(wait_until):
    manager = JobManager()
    attempts = []

    def work(ctx):
        attempts.append(1)
        if len(attempts) == 1:
            raise PTMError("first try fails")
        return "second try works"

    first = manager.submit("retry", "retry", work)
    assert wait_until(_finished(first), TIMEOUT) and first.status == FAILED
    second = manager.submit("retry", "retry", work)
    assert second is not first
    assert wait_until(_finished(second), TIMEOUT) and second.status == DONE
    assert manager.find("retry") is second


def test_cancel_during_run(wait_until):
    manager = JobManager()
    running = threading.Event()

    def work(ctx):
        running.set()
        step = 0
        while True:  # a long job that polls for cancellation between steps
            step += 1
            ctx.check_cancelled()
            ctx.progress(min(step / 10_000, 0.99), f"step {step}")
            time.sleep(0.005)

    job = manager.submit("long", "long", work)
    assert running.wait(TIMEOUT)
    asked = time.monotonic()
    manager.cancel(job.id)
    assert job.cancel_requested
    assert wait_until(_finished(job), 1.0)
    assert time.monotonic() - asked < 1.0
    assert job.status == CANCELLED
    assert job.error is None
    manager.cancel("no-such-job")  # harmless


def test_progress_never_raises_so_work_keeps_what_it_has(wait_until):
    """Work with its own stop protocol reports progress after the cancel, then returns what it kept."""
    manager = JobManager()
    running, cancelled = threading.Event(), threading.Event()

    def work(ctx):
        running.set()
        assert cancelled.wait(TIMEOUT)
        kept = []
        for step in range(5):
            ctx.progress(step / 5, f"step {step}")  # the old context raised Cancelled here
            kept.append(step)
            if ctx.cancelled():
                break
        return kept

    job = manager.submit("keeps", "keeps", work)
    assert running.wait(TIMEOUT)
    manager.cancel(job.id)
    cancelled.set()
    assert wait_until(_finished(job), TIMEOUT)
    assert job.status == DONE and job.result == [0]
    assert "stopped early" in job.message


def test_cancel_while_queued(wait_until):
    manager = JobManager(max_concurrent=1)
    go = threading.Event()
    ran = []
    blocker = manager.submit("blocker", "blocker", lambda ctx: go.wait(TIMEOUT))
    assert wait_until(lambda: blocker.status == RUNNING, TIMEOUT)
    queued = manager.submit("queued", "queued", lambda ctx: ran.append(1))
    manager.cancel(queued.id)
    go.set()
    assert wait_until(_finished(queued), TIMEOUT)
    assert queued.status == CANCELLED
    assert ran == []


def test_max_concurrent_one_keeps_the_second_job_queued(wait_until):
    manager = JobManager(max_concurrent=1)
    first_go, first_running, second_running = threading.Event(), threading.Event(), threading.Event()

    def first_work(ctx):
        first_running.set()
        assert first_go.wait(TIMEOUT)
        return 1

    def second_work(ctx):
        second_running.set()
        return 2

    first = manager.submit("first", "first", first_work)
    assert first_running.wait(TIMEOUT)
    second = manager.submit("second", "second", second_work)
    assert not second_running.wait(0.2)  # it does not start while the first holds the only slot
    assert second.status == QUEUED and first.status == RUNNING
    first_go.set()
    assert second_running.wait(TIMEOUT)
    assert wait_until(lambda: first.finished is not None and second.finished is not None, TIMEOUT)
    assert first.status == DONE and second.status == DONE
    assert (first.result, second.result) == (1, 2)
    assert second.started >= first.finished


def test_two_slots_run_two_jobs_at_once():
    manager = JobManager(max_concurrent=2)
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    a = manager.submit("a", "a", lambda ctx: barrier.wait())
    b = manager.submit("b", "b", lambda ctx: barrier.wait())
    deadline = time.monotonic() + TIMEOUT
    while (a.finished is None or b.finished is None) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert a.status == DONE and b.status == DONE  # a Barrier(2) only opens if both ran together


def test_eta_is_none_until_steady_then_close_and_phrased(wait_until):
    manager = JobManager()
    at_start, reported, finish = threading.Event(), threading.Event(), threading.Event()
    step_s, steps = 0.05, 100

    def work(ctx):
        at_start.set()
        for step in range(1, 61):  # a steady pace: 100 steps of step_s; 60 done, then wait
            time.sleep(step_s)
            ctx.progress(step / steps, f"step {step}")
        reported.set()
        assert finish.wait(TIMEOUT)

    job = manager.submit("eta", "eta", work)
    assert at_start.wait(TIMEOUT)
    assert job.eta_seconds is None and job.eta_text == "estimating time left…"
    assert reported.wait(TIMEOUT)
    eta = job.eta_seconds
    assert eta is not None and 40 * step_s / 1.5 <= eta <= 40 * step_s * 1.5
    assert job.eta_text == "almost done" and not job.eta_step_only
    finish.set()
    assert wait_until(_finished(job), TIMEOUT)
    assert job.status == DONE and job.eta_seconds is None and job.eta_text == ""


def test_scaled_progress_maps_onto_a_sub_range(wait_until):
    manager = JobManager()
    seen = []

    def work(ctx):
        sub = ctx.scaled(0.2, 0.6)
        for fraction in (0.0, 0.5, 1.0):
            sub(fraction, "sub")
            seen.append(ctx._job.progress)

    job = manager.submit("scaled", "scaled", work)
    assert wait_until(_finished(job), TIMEOUT) and job.status == DONE
    assert seen == pytest.approx([0.2, 0.4, 0.6])


def test_lanes_run_side_by_side_but_one_at_a_time_within_a_lane(wait_until):
    """A long map-lane job (UMAP's compile) must not hold up compute work, nor two maps run at once."""
    manager = JobManager(max_concurrent=1)
    release = threading.Event()
    compile_job = manager.submit("warm-up", "compile", lambda ctx: release.wait(TIMEOUT), lane="map")
    assert wait_until(lambda: compile_job.status == RUNNING, TIMEOUT)
    map_job = manager.submit("map", "a map", lambda ctx: "map", lane="map")
    probe = manager.submit("probe", "a probe", lambda ctx: "probe")  # the compute lane
    assert wait_until(_finished(probe), TIMEOUT) and probe.status == DONE
    assert map_job.status == QUEUED and map_job.lane == "map" and probe.lane == "compute"
    release.set()
    assert wait_until(_finished(map_job), TIMEOUT) and map_job.result == "map"


def test_a_warm_up_yields_to_the_users_work_unless_a_map_waits_for_it(wait_until):
    """UMAP's compile waits while an extraction runs (side by side both took ~3x longer), but not when a map
    queued behind it needs it done."""
    manager = JobManager(max_concurrent=1)
    extraction_go, compiled = threading.Event(), []
    extraction = manager.submit("extract", "extract", lambda ctx: extraction_go.wait(TIMEOUT))
    assert wait_until(lambda: extraction.status == RUNNING, TIMEOUT)
    warm_up = manager.submit("warm-up", "compile", lambda ctx: (manager.yield_to("compute", "map", poll_s=0.01),
                                                                compiled.append(time.monotonic())), lane="map")
    time.sleep(0.2)
    assert warm_up.status == RUNNING and not compiled  # waiting for the extraction
    extraction_go.set()
    assert wait_until(_finished(warm_up), TIMEOUT) and compiled

    second_go = threading.Event()
    second = manager.submit("extract-2", "extract", lambda ctx: second_go.wait(TIMEOUT))
    assert wait_until(lambda: second.status == RUNNING, TIMEOUT)
    again = manager.submit("warm-up-2", "compile", lambda ctx: manager.yield_to("compute", "map", poll_s=0.01),
                           lane="map")
    time.sleep(0.2)
    assert again.status == RUNNING
    a_map = manager.submit("map", "a map", lambda ctx: "map", lane="map")  # a user's map, queued behind it
    assert wait_until(_finished(a_map), TIMEOUT) and a_map.result == "map" and second.status == RUNNING
    second_go.set()


def test_attach_or_submit_restores_only_cached_work_after_a_restart(tmp_path, wait_until):
    """A page visit after a server restart re-runs cheap cached work, never a fine-tune nobody asked for."""
    from ptm_core.runs.store import RunStore

    calls = []

    def work(ctx):
        calls.append(ctx)
        return "result"

    first = JobManager(store=RunStore(tmp_path / "runs.sqlite"))
    job = first.attach_or_submit("k", "t", work, start=True)
    assert wait_until(lambda: job.status == DONE, 10)
    assert first.attach_or_submit("k", "t", work) is job and len(calls) == 1  # attached, not run again

    restarted = JobManager(store=RunStore(tmp_path / "runs.sqlite"))
    assert restarted.attach_or_submit("k", "t", work) is None and len(calls) == 1  # a fine-tune: not re-run
    again = restarted.attach_or_submit("k", "t", work, restore=True)  # cached work: read back at once
    assert again is not None and wait_until(lambda: again.status == DONE, 10) and len(calls) == 2
    assert restarted.attach_or_submit("never-run", "t", work, restore=True) is None

"""A tour step's time left: the whole step, at the pace measured on this machine, moving within each phase."""
import threading
import time

import pytest

from ptm_core.flows import tour, tour_clock
from ptm_core.flows.tour_clock import ClockState, ClockedContext, Pace, StepClock, load_prior, phase_left
from ptm_core.flows.tour_costs import estimate_step_seconds, step_phases
from ptm_core.runs.jobs import Job, JobContext


def test_the_pace_is_measured_over_real_work_and_clamped():
    pace = Pace()
    assert pace.factor(prior=1.7) == 1.7  # nothing measured yet: the prior
    pace.observe(estimated=10.0, taken=0.5)  # a cache hit, far under its estimate: says nothing of the machine
    assert pace.factor(prior=1.7) == 1.7
    pace.observe(estimated=10.0, taken=30.0)
    pace.observe(estimated=20.0, taken=30.0)
    assert pace.factor(prior=1.7) == pytest.approx(60 / 30)
    slow = Pace()
    slow.observe(estimated=4.0, taken=400.0)
    assert slow.factor() == tour_clock.PACE_RANGE[1]


def test_the_prior_grows_with_the_load_per_core():
    assert load_prior(load=0.0, cpus=2) == 1.0
    assert load_prior(load=3.0, cpus=2) == 2.5
    assert load_prior(load=200.0, cpus=2) == tour_clock.PACE_RANGE[1]


def test_phase_left_follows_the_estimate_then_the_overrun_then_the_works_own_progress():
    assert phase_left(expected=20, elapsed=5) == 15
    assert phase_left(expected=20, elapsed=16) == pytest.approx(4, abs=0.01)  # where the overrun rule takes over
    overrun = [phase_left(expected=20, elapsed=t) for t in (20, 40, 80)]
    assert 0 < overrun[0] < overrun[1] < overrun[2] < 20  # grows with the overrun, slower than the time spent
    assert phase_left(expected=20, elapsed=30, sub=0.75) == pytest.approx(10)  # the work's pace, not the estimate
    assert phase_left(expected=20, elapsed=30, sub=0.01) == phase_left(expected=20, elapsed=30)  # too little to go by


def test_the_whole_steps_time_left_sums_the_phases_at_the_measured_pace():
    pace = Pace()
    clock = StepClock([("a", 10.0), ("b", 20.0), ("c", 5.0)], pace=pace, prior=2.0, now=100.0)
    clock.enter("a", 100.0)
    first = clock.state(105.0)
    assert (first.phase, first.phases, first.label) == (1, 3, "a")
    assert first.left == pytest.approx((2 * 10 - 5) + 2 * (20 + 5))  # the rest of a, then all of b and c
    assert first.elapsed == 5.0 and first.fraction == pytest.approx(5 / (5 + first.left))
    clock.enter("b", 130.0)  # a took 30 s against 10 estimated: this machine runs at 3x the reference
    assert pace.factor(prior=2.0) == pytest.approx(3.0)
    second = clock.state(131.0)
    assert second.left == pytest.approx((3 * 20 - 1) + 3 * 5)
    assert second.fraction > first.fraction


def test_progress_and_time_left_move_within_a_phase_that_reports_nothing():
    clock = StepClock([("sweep", 10.0)], pace=Pace(), prior=1.0, now=0.0)
    clock.enter("sweep", 0.0)
    states = [clock.state(t) for t in range(0, 40, 3)]  # well past the estimate: still moving
    fractions = [s.fraction for s in states]
    assert all(a < b for a, b in zip(fractions[1:], fractions[2:])) and fractions[-1] < 1
    assert len({round(s.left, 3) for s in states}) == len(states)  # the time left is never the same twice


def test_the_works_own_progress_inside_a_phase_is_read_relative_to_the_phase():
    clock = StepClock([("features", 100.0), ("probe", 10.0)], pace=Pace(), prior=1.0, now=0.0)
    clock.enter("features", 0.0)
    clock.report(0.2, step_end=0.4, message="200/1000 images")  # half of its sub-step [0, 0.4]
    state = clock.state(20.0)
    assert state.detail == "200/1000 images"
    assert state.left == pytest.approx(20 * 0.5 / 0.5 + 10)


class _Recorder:
    """A JobContext stand-in: what the clock puts on the job."""

    def __init__(self):
        self.previews, self.progress_calls, self.stages = [], [], []

    def preview(self, value):
        self.previews.append(value)

    def progress(self, fraction, message="", step_end=1.0):
        self.progress_calls.append((fraction, message))

    def stage(self, message):
        self.stages.append(message)

    def cancelled(self):
        return False


def test_publishing_puts_the_clocks_view_on_the_job_and_passes_the_rest_through():
    now = [0.0]
    job = _Recorder()
    ctx = ClockedContext(job, StepClock([("one", 4.0), ("two", 4.0)], pace=Pace(), prior=1.0), now=lambda: now[0])
    ctx.stage("one")
    ctx.scaled(0.0, 0.5)(0.5, "half way")
    now[0] = 2.0
    state = ctx.publish()
    assert isinstance(job.previews[-1], ClockState) and job.previews[-1] == state
    assert job.progress_calls[-1] == (state.fraction, "one: half way")
    assert job.stages == ["one"] and ctx.cancelled() is False  # the job's own methods, unchanged
    ctx.stage("fine-tuning (lp-ft, 6 epoch(s) at 64px)")  # the work's words reach the log; the line shows the phase's
    assert job.stages[-1] == "fine-tuning (lp-ft, 6 epoch(s) at 64px)" and ctx.publish().label == "two"


def test_a_clocked_steps_heartbeat_changes_the_line_while_the_work_is_silent(monkeypatch):
    monkeypatch.setattr(tour_clock, "HEARTBEAT_S", 0.05)
    seen, release = [], threading.Event()
    job = Job("key", "title")

    def silent(ctx):
        ctx.stage("a long sweep")
        release.wait(5)
        return "done"

    def watch():  # until four different lines were published (a loaded machine may delay a beat), at most 10 s
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len({id(p) for _f, p in seen if p is not None}) < 4:
            time.sleep(0.03)
            seen.append((job.progress, job.preview))
        release.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert tour_clock.clocked(silent, [("a long sweep", 0.2)])(JobContext(job)) == "done"
    watcher.join()
    states = list({id(p): p for _f, p in seen if isinstance(p, ClockState)}.values())
    assert len(states) >= 4, seen  # the work said nothing after its stage: every new line is the heartbeat's
    assert [s.elapsed for s in states] == sorted({s.elapsed for s in states})  # each later and different
    assert [s.fraction for s in states] == sorted(s.fraction for s in states) and states[-1].fraction > states[0].fraction


def test_the_step_estimate_is_the_sum_of_its_phases_scaled_by_the_pace(monkeypatch):
    plan = tour.TourPlan()
    monkeypatch.setattr(tour_clock, "PACE", Pace())
    monkeypatch.setattr(tour_clock, "load_prior", lambda: 2.5)
    for step in tour.TOUR_STEPS:
        assert estimate_step_seconds(plan, step) == pytest.approx(sum(s for _w, s in step_phases(plan, step)))
        assert tour_clock.step_seconds(plan, step) == pytest.approx(2.5 * estimate_step_seconds(plan, step))


def test_the_works_own_previews_never_replace_the_clocks_line():
    """An extraction publishes its preview probe and map through ctx.preview; in a tour step that would replace the
    clock's state and the page would fall back to the job's generic line until the next heartbeat."""
    job = _Recorder()
    ctx = ClockedContext(job, StepClock([("one", 4.0)], pace=Pace(), prior=1.0), now=lambda: 0.0)
    state = ctx.publish()
    assert state.label == "one", "before the work's first stage the line names the first phase"
    ctx.preview("an extraction's preview")
    assert job.previews == [state]

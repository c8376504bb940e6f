"""Run store: jobs recorded in SQLite, restart recovery, exports, cache cap, concurrent submits."""
import csv
import io
import os
import threading
import time

import numpy as np

from ptm_core.runs.artifacts import artifact_dir, enforce_cache_cap, load_npz, save_npz
from ptm_core.base.errors import PTMError
from ptm_core.runs.jobs import CANCELLED, DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, JobManager
from ptm_core.runs.store import RunStore


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_store_uses_wal_and_round_trips_a_run(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    assert store._execute("PRAGMA journal_mode")[0][0] == "wal"
    store.save({"id": "a", "key": "k", "kind": "explore", "title": "t", "status": QUEUED, "created": 1.0,
                "config": {"dataset": {"spec": "digits"}}})
    store.save({"id": "a", "status": DONE, "metrics": {"test_accuracy": 0.9}, "started": 2.0, "finished": 5.0})
    run = store.get("a")
    assert run["status"] == DONE and run["config"] == {"dataset": {"spec": "digits"}}
    assert run["metrics"] == {"test_accuracy": 0.9} and run["title"] == "t"
    assert store.latest("k", DONE)["id"] == "a" and store.latest("k", FAILED) is None


def test_jobs_are_recorded_through_every_state(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    manager = JobManager(store=store)
    release = threading.Event()

    def work(ctx):
        ctx.progress(0.5, "half way")
        release.wait(5)
        ctx.record(metrics={"test_accuracy": 0.75}, artifacts={"features": "/x.npz"})
        return "result"

    job = manager.submit("key-1", "a job", work, kind="explore", config={"seed": 0})
    _wait(lambda: store.get(job.id)["status"] == RUNNING)
    release.set()
    _wait(lambda: store.get(job.id)["status"] == DONE)
    run = store.get(job.id)
    assert run["metrics"]["test_accuracy"] == 0.75 and run["artifacts"]["features"] == "/x.npz"
    assert run["config"] == {"seed": 0} and run["progress"] == 1.0 and run["finished"] >= run["started"]
    assert any("done" in line for line in run["log"])


def test_failed_and_cancelled_jobs_are_recorded(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    manager = JobManager(store=store)

    def fails(ctx):
        raise PTMError("Folder not found: /nope")

    def loops(ctx):
        while True:  # work with nothing to keep stops where it polls cancel (progress never raises)
            ctx.progress(0.1)
            ctx.check_cancelled()
            time.sleep(0.01)

    failed = manager.submit("f", "fails", fails)
    _wait(lambda: failed.status == FAILED and failed.finished)
    looping = manager.submit("c", "loops", loops)
    _wait(lambda: looping.status == RUNNING)
    looping.cancel()
    _wait(lambda: looping.status == CANCELLED and looping.finished, timeout=2.0)
    _wait(lambda: store.get(looping.id)["status"] == CANCELLED)
    assert store.get(failed.id)["error"] == "Folder not found: /nope"


def test_restart_marks_unfinished_runs_interrupted_and_keeps_finished_ones(tmp_path):
    path = tmp_path / "runs.sqlite"
    first = JobManager(store=RunStore(path))
    release = threading.Event()
    done = first.submit("done", "finished job", lambda ctx: "ok")
    _wait(lambda: first.store.get(done.id)["status"] == DONE)
    running = first.submit("run", "long job", lambda ctx: release.wait(10))
    _wait(lambda: first.store.get(running.id)["status"] == RUNNING)

    # A new server process on the same data directory: the old process's running job is gone.
    second = JobManager(store=RunStore(path))
    assert second.interrupted_on_start == 1
    assert second.store.get(running.id)["status"] == INTERRUPTED
    assert second.store.get(done.id)["status"] == DONE
    assert second.store.latest("done", DONE)["id"] == done.id and second.store.latest("run", DONE) is None
    release.set()


def test_two_sessions_submitting_at_once_share_one_worker(tmp_path):
    manager = JobManager(max_concurrent=1, store=RunStore(tmp_path / "runs.sqlite"))
    gate, running_now, peak = threading.Barrier(2), [], []
    lock = threading.Lock()

    def work(ctx):
        with lock:
            running_now.append(1)
            peak.append(len(running_now))
        time.sleep(0.2)
        with lock:
            running_now.pop()
        return ctx

    jobs = []

    def session(key):
        gate.wait()
        jobs.append(manager.submit(key, key, work))

    threads = [threading.Thread(target=session, args=(k,)) for k in ("tab-1", "tab-2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({j.id for j in jobs}) == 2
    assert sorted(j.status for j in jobs) in ([QUEUED, RUNNING], [RUNNING, QUEUED], [QUEUED, QUEUED])
    _wait(lambda: all(j.status == DONE for j in jobs))
    assert max(peak) == 1  # never two heavy jobs at once


def test_metrics_csv_has_one_row_per_run(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    for i, acc in enumerate((0.5, 0.9)):
        store.save({"id": f"r{i}", "key": "k", "kind": "explore", "title": f"run {i}", "status": DONE,
                    "created": float(i), "started": 1.0, "finished": 3.0,
                    "metrics": {"test_accuracy": acc, "val_curve": [1, 2]}})
    rows = list(csv.DictReader(io.StringIO(store.metrics_csv())))
    assert [r["id"] for r in rows] == ["r1", "r0"]
    assert float(rows[0]["test_accuracy"]) == 0.9 and float(rows[0]["seconds"]) == 2.0
    assert "val_curve" not in rows[0]
    only = list(csv.DictReader(io.StringIO(store.metrics_csv(["r0"]))))
    assert [r["id"] for r in only] == ["r0"]


def test_cache_cap_evicts_least_recently_used():
    folder = artifact_dir("features")
    paths = []
    for i in range(3):
        paths.append(save_npz(folder / f"f{i}.npz", features=np.zeros((256, 256), np.float32)))
        os.utime(paths[-1], (1000 + i, 1000 + i))
    load_npz(paths[0])  # recently used again: the oldest is now f1
    size = paths[0].stat().st_size
    evicted = enforce_cache_cap("features", max_bytes=2 * size + 10)
    assert evicted == [paths[1]]
    assert paths[0].exists() and paths[2].exists() and not paths[1].exists()
    assert not paths[1].with_name("f1.npz.sha256").exists()

"""Long work as jobs on background threads, outside any UI script run.

A job outlives the widget change, page switch or browser refresh that would stop a Streamlit
script run; the same key returns the same job, so a page reattaches to work already running.
Jobs run in lanes, each with a cap on how many run at once (the app runs one per lane); the rest wait as `queued`.
The `compute` lane takes extraction, probes and fine-tuning; the `map` lane takes UMAP's one-off
compile and the maps, so a fresh server's compile (its cost: the "First UMAP in a fresh process" row of
benchmarks/RESULTS.md) never holds up a probe, and a long extraction never holds up a map of features
already computed.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from ptm_core.base.messages import M_
from ptm_core.base.errors import Cancelled, PTMError
from ptm_core.runs.eta import EtaEstimator, eta_phrase
from ptm_core.runs.store import RunStore

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = "queued", "running", "done", "failed", "cancelled", "interrupted"
# The statuses in words, for the interface to translate (the statuses themselves are stored keys).
STATUS_WORDS = {QUEUED: M_("queued"), RUNNING: M_("running"), DONE: M_("done"), FAILED: M_("failed"),
                CANCELLED: M_("cancelled"), INTERRUPTED: M_("interrupted")}
FINISHED = (DONE, FAILED, CANCELLED, INTERRUPTED)
ACTIVE = (QUEUED, RUNNING)
COMPUTE, MAP = "compute", "map"  # the lanes: extraction, probes, fine-tuning | UMAP's compile and the maps


@dataclass(frozen=True)
class JobSpec:
    """Everything the job manager needs to find, restore or start one piece of work; a flow builds it, a page
    attaches to it (`JobManager.attach`).

    `restore`: a run that a previous server finished is started again when a page asks for it, for work whose
    steps read back from the caches in about a second; work that caches nothing (a fine-tune) is never re-run
    unasked. `record`: kept in the run store (housekeeping such as warm-ups is not).
    """

    key: str
    title: str
    work: Callable[[JobContext], Any] = field(compare=False)
    kind: str = "job"
    lane: str = COMPUTE
    restore: bool = False
    config: dict = field(default_factory=dict, compare=False)
    record: bool = True


@dataclass
class Job:
    key: str
    title: str
    kind: str = "job"
    lane: str = "compute"
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: str = QUEUED
    progress: float = 0.0
    message: str = M_("waiting for a free worker")
    error: str | None = None
    result: Any = None
    preview: Any = None  # a partial result while the work runs (not kept in the run store)
    log: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    recorded: bool = True  # kept in the run store (housekeeping jobs are not)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _eta: EtaEstimator = field(default_factory=EtaEstimator, repr=False)

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the current stage's recent pace; None until that figure can be trusted."""
        if self.status != RUNNING:
            return None
        return self._eta.remaining(time.monotonic())

    @property
    def eta_step_only(self) -> bool:
        """True when `eta_seconds` reaches only the end of the current step, not of the job."""
        return self._eta.step_only

    @property
    def eta_text(self) -> str:
        """'about 2 min left' ('… left in this step'), 'estimating time left…' or 'almost done'; '' unless running.

        English (eta.eta_phrase); the app translates its own (pages/ui/job_views.eta_text)."""
        return eta_phrase(self.eta_seconds, self.eta_step_only) if self.status == RUNNING else ""

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def record(self) -> dict:
        """The columns the run store keeps for this job."""
        return {"id": self.id, "key": self.key, "kind": self.kind, "title": self.title, "config": self.config,
                "status": self.status, "progress": self.progress, "message": self.message, "error": self.error,
                "metrics": self.metrics, "artifacts": self.artifacts, "log": self.log, "created": self.created,
                "started": self.started, "finished": self.finished}


class JobContext:
    """What a job's work function sees: progress reporting and cancellation checks.

    The one rule for cancelling: reporting progress never raises. Work that has something to keep
    when stopped (an extraction's checkpoint, a fine-tune's best weights) polls `cancelled()` at
    its own safe points and keeps it; work with nothing to keep raises Cancelled from
    `check_cancelled()`. A progress callback that raised would abort that work mid-step, before
    its keep-what-was-done path could run.
    """

    def __init__(self, job: Job, persist: Callable[[Job], None] = lambda job: None):
        self._job = job
        self._persist = persist
        self._persisted_at = 0.0

    def progress(self, fraction: float, message: str = "", step_end: float = 1.0) -> None:
        """Report progress (never raises, see the class docstring).

        `step_end`: where the current step ends when its pace says nothing about the work after it
        (time-left estimates then reach only there); 1.0, the default, is the job's end.
        """
        self._job.progress = min(max(fraction, 0.0), 1.0)
        self._job._eta.add(time.monotonic(), self._job.progress, step_end)
        if message:
            self._job.message = message
        if time.monotonic() - self._persisted_at > 2.0:  # the store needs progress, not every tick of it
            self._persisted_at = time.monotonic()
            self._persist(self._job)

    def stage(self, message: str) -> None:
        """A new stage of the work: logged, and its pace is measured afresh for the time left."""
        self._job.message = message
        self._job._eta.reset()
        self._job.log.append(f"{time.strftime('%H:%M:%S')} {message}")
        self._persist(self._job)

    def pace_pending(self, pending: bool) -> None:
        """Whether the work's pace is about to change (see EtaEstimator.hold): no time left is shown meanwhile."""
        self._job._eta.hold(pending)

    def preview(self, value: Any) -> None:
        """A partial result the page may show while the work goes on (replaced by each call, never stored)."""
        self._job.preview = value

    def record(self, metrics: dict | None = None, artifacts: dict | None = None) -> None:
        """Metrics and artifact paths that the run store keeps once the job ends."""
        self._job.metrics.update(metrics or {})
        self._job.artifacts.update(artifacts or {})

    def cancelled(self) -> bool:
        return self._job.cancel_requested

    def check_cancelled(self) -> None:
        if self._job.cancel_requested:
            raise Cancelled()

    def scaled(self, start: float, stop: float) -> Callable[[float, str], None]:
        """A progress callback for a sub-step that maps its 0-1 onto [start, stop] of the job."""
        return lambda fraction, message="": self.progress(start + (stop - start) * fraction, message, step_end=stop)


class JobManager:
    """Runs jobs on threads; with a store, records every job and marks a dead server's runs interrupted.

    Create one per process and store: a new manager takes over the store's unfinished runs.
    """

    def __init__(self, max_concurrent: int = 1, store: RunStore | None = None):
        self._max_concurrent = max_concurrent
        self._slots: dict[str, threading.Semaphore] = {}
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self.store = store
        self.interrupted_on_start = store.mark_interrupted() if store else 0

    def _persist(self, job: Job) -> None:
        if self.store is not None and job.recorded:
            try:
                self.store.save(job.record())
            except Exception:  # a store hiccup must not kill the work it records
                log.exception("could not record job %s", job.id)

    def submit(self, key: str, title: str, work: Callable[[JobContext], Any], kind: str = "job",
               config: dict | None = None, record: bool = True, lane: str = "compute") -> Job:
        """Start `work` in `lane`, or return the job with the same key that is queued, running or done."""
        with self._lock:
            for job in self._jobs.values():
                if job.key == key and job.status in (QUEUED, RUNNING, DONE):
                    return job
            job = Job(key=key, title=title, kind=kind, lane=lane, config=config or {}, recorded=record)
            self._jobs[job.id] = job
            self._slots.setdefault(lane, threading.Semaphore(self._max_concurrent))
        self._persist(job)
        threading.Thread(target=self._run, args=(job, work), name=f"job-{job.id}", daemon=True).start()
        return job

    def attach(self, spec: JobSpec, start: bool = False) -> Job | None:
        """The job a page shows for `spec`; None when there is none yet and `start` (the user's click) is False."""
        return self.attach_or_submit(spec.key, spec.title, spec.work, start=start, restore=spec.restore,
                                     kind=spec.kind, config=spec.config, lane=spec.lane)

    def start(self, spec: JobSpec) -> Job:
        """Submit `spec` (or return its queued, running or done job): background work no page waits for."""
        return self.submit(spec.key, spec.title, spec.work, kind=spec.kind, config=spec.config, record=spec.record,
                           lane=spec.lane)

    def attach_or_submit(self, key: str, title: str, work: Callable[[JobContext], Any], *, start: bool = False,
                         restore: bool = False, kind: str = "job", config: dict | None = None,
                         lane: str = "compute") -> Job | None:
        """The job a page shows for `key`; None when there is none yet.

        A queued, running or finished job of this server is attached to. With `restore`, for work whose
        steps read back from the caches in about a second, a run that a previous server finished is
        started again; work that caches nothing (a fine-tune) is never re-run unasked. `start` (the
        user's click) submits a new job unless one is queued, running or done.
        """
        job = self.find(key)
        if job is not None and job.status in (QUEUED, RUNNING, DONE):
            return job
        restorable = (restore and job is None and self.store is not None
                      and self.store.latest(key, DONE) is not None)
        if start or restorable:
            return self.submit(key, title, work, kind=kind, config=config, lane=lane)
        return job

    def _run(self, job: Job, work: Callable[[JobContext], Any]) -> None:
        with self._slots[job.lane]:
            if job.cancel_requested:
                job.finished, job.message, job.status = time.time(), "cancelled before it started", CANCELLED
                self._persist(job)
                return
            job.started, job.status = time.time(), RUNNING
            ctx = JobContext(job, self._persist)
            ctx.stage(M_("started {title}", title=job.title))
            try:
                job.result = work(ctx)
                job.progress, job.message, job.status = 1.0, M_("done"), DONE
            except Cancelled:
                job.message, job.status = M_("cancelled"), CANCELLED
            except PTMError as exc:
                job.error, job.status = exc.for_ui(), FAILED
            except Exception as exc:  # the traceback goes to the server log, one line to the UI
                log.exception("job %s (%s) failed", job.id, job.title)
                job.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                job.status = FAILED
            except BaseException:
                job.error, job.status = M_("the worker was interrupted"), INTERRUPTED
                raise
            finally:
                job.finished = time.time()
                # Cancelled work that returned normally stopped at a safe point and kept what it had.
                stopped = job.status == DONE and job.cancel_requested
                early = M_(" (stopped early, what was done is kept)") if stopped else ""
                ctx.stage(M_("{status}{early} after {seconds:.1f} s", status=STATUS_WORDS[job.status], early=early,
                             seconds=job.elapsed))

    def yield_to(self, lane: str, own_lane: str, poll_s: float = 0.5) -> None:
        """Wait while a job runs in `lane`, unless a job queues behind the caller in `own_lane` (which needs the
        caller done first): optional background work (a warm-up) leaves the cores to the user's work."""
        def busy() -> bool:
            statuses = [(job.lane, job.status) for job in list(self._jobs.values())]
            return (lane, RUNNING) in statuses and (own_lane, QUEUED) not in statuses
        while busy():
            time.sleep(poll_s)

    def get(self, job_id: str | None) -> Job | None:
        return self._jobs.get(job_id) if job_id else None

    def find(self, key: str) -> Job | None:
        matches = [job for job in self._jobs.values() if job.key == key]
        return max(matches, key=lambda job: job.created) if matches else None

    def jobs(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda job: job.created, reverse=True)

    def cancel(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.cancel()

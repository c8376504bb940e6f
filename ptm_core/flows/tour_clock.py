"""A tour step's time left, for the whole step and at this machine's pace, and progress that never sits still.

Each step is a fixed list of phases (tour_costs.step_phases: the stages its work enters, in order, each with the
seconds it takes on the reference machine). `StepClock` follows the work through them: the time left is what is
left of the current phase plus every later phase's estimate, all scaled by the pace; a heartbeat republishes it
every HEARTBEAT_S, so the line changes even while a phase reports nothing (a C sweep, a map's layout).

The pace is measured, not assumed: the ratio of seconds taken to seconds estimated over the phases this process has
finished (`PACE`, shared by every step, so step 5's button already knows how slow steps 1-4 ran). A phase that ends
far under its estimate read its result from a cache and says nothing about the machine: it is left out. Before any
phase has finished, the load average stands in (`load_prior`): with L runnable tasks beside the step on C cores, a
CPU-bound step gets about C / (C + L) of them.
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ptm_core.flows.tour import TOUR_STEPS, TourPlan, step_work
from ptm_core.flows.tour_costs import step_phases
from ptm_core.runs.jobs import JobContext, JobSpec

HEARTBEAT_S = 1.0
CACHED_SHARE = 0.2  # a phase done in under this share of its estimate read a cache: not a measure of the pace
MIN_MEASURED_S = 3.0  # estimated seconds of measured phases before their pace replaces the prior
PACE_RANGE = (0.5, 50.0)  # beyond these the measurement is more likely wrong than the machine (37 seen at load 20)
# Past 80 % of its estimate a phase's time left is OVERRUN_LEFT * sqrt(elapsed * expected): continuous there
# (0.2236 * sqrt(0.8) = 0.2), growing with an overrun but slower than the time spent, so the bar still moves.
OVERRUN_LEFT = 0.2236
MIN_SUB_PROGRESS = 0.05  # the work's own progress in a phase is trusted for the time left from this share on


def load_prior(load: float | None = None, cpus: int | None = None) -> float:
    """The pace before any phase has been measured: 1 + runnable tasks per core (os.getloadavg's last minute), within
    PACE_RANGE. A guess from the load, replaced by the measured pace as soon as one phase has run; on the shared
    2-core box at a load of about 20 it guesses 11 where the small plan's step 2 then ran at about 37 (410 s against 11)."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # not on every platform
            load = 0.0
    cpus = cpus or os.cpu_count() or 1
    return min(1.0 + load / cpus, PACE_RANGE[1])


class Pace:
    """Seconds taken over seconds estimated, over the phases this process finished (thread-safe)."""

    def __init__(self) -> None:
        self.taken = 0.0
        self.estimated = 0.0
        self._lock = threading.Lock()

    def observe(self, estimated: float, taken: float) -> None:
        if estimated <= 0 or taken < CACHED_SHARE * estimated:
            return
        with self._lock:
            self.taken += taken
            self.estimated += estimated

    def factor(self, prior: float | None = None) -> float:
        with self._lock:
            taken, estimated = self.taken, self.estimated
        if estimated < MIN_MEASURED_S:
            return load_prior() if prior is None else prior
        return min(max(taken / estimated, PACE_RANGE[0]), PACE_RANGE[1])


PACE = Pace()


def phase_left(expected: float, elapsed: float, sub: float | None = None) -> float:
    """Seconds left in a phase expected (pace applied) to take `expected`, `elapsed` into it. The work's own
    progress `sub` (0-1), once past MIN_SUB_PROGRESS, extrapolates its pace; else the estimate's remainder, and near
    or past the estimate a figure that grows with the overrun (OVERRUN_LEFT) instead of sitting at zero."""
    if sub is not None and MIN_SUB_PROGRESS <= sub < 1 and elapsed > 1.0:
        return elapsed * (1 - sub) / sub
    return max(expected - elapsed, OVERRUN_LEFT * math.sqrt(max(elapsed, 0.0) * expected))


@dataclass(frozen=True)
class ClockState:
    """What the page shows of a running step: its phase, the work's latest words, and the whole step's time."""

    phase: int  # 1-based
    phases: int
    label: str
    detail: str
    elapsed: float
    left: float
    fraction: float


class StepClock:
    """Follows one step through its phases; `now` is injected so that tests can drive it with made-up times."""

    def __init__(self, phases: list[tuple[str, float]], pace: Pace = PACE, prior: float | None = None,
                 now: float = 0.0) -> None:
        self.phases, self.pace, self.prior = phases, pace, prior
        self.started = self.phase_started = now
        self.index = -1  # before the work's first stage
        self.label, self.detail = (phases[0][0] if phases else ""), ""  # shown as the first phase until it starts
        self.work_fraction, self.phase_from, self.sub = 0.0, 0.0, None
        self.shown = 0.0

    def _estimate(self, index: int) -> float:
        return self.phases[index][1] if 0 <= index < len(self.phases) else 0.0

    def enter(self, label: str, now: float) -> None:
        """The work entered its next stage: the phase before it is timed (and feeds the pace)."""
        self.close(now)
        self.index, self.detail = self.index + 1, ""
        # The phase's own words (tour_costs.step_phases), not the work's stage message, which may say more than
        # the step's reader needs ("fine-tuning (lp-ft, 6 epoch(s) at 64px)"); past the list, the work's.
        self.label = self.phases[self.index][0] if self.index < len(self.phases) else label
        self.phase_started, self.phase_from, self.sub = now, self.work_fraction, None

    def close(self, now: float) -> None:
        if 0 <= self.index < len(self.phases):
            self.pace.observe(self._estimate(self.index), now - self.phase_started)

    def report(self, fraction: float, step_end: float, message: str = "") -> None:
        """The work's own progress (its job fractions; `step_end` where its current sub-step ends)."""
        self.work_fraction = fraction
        span = step_end - self.phase_from
        if span > 0:
            self.sub = min(max((fraction - self.phase_from) / span, 0.0), 1.0)
        if message:
            self.detail = message

    def state(self, now: float) -> ClockState:
        pace = self.pace.factor(self.prior)
        current = max(self.index, 0)
        in_phase = now - self.phase_started if self.index >= 0 else 0.0
        left = phase_left(pace * self._estimate(current), in_phase, self.sub)
        left += pace * sum(self._estimate(i) for i in range(current + 1, len(self.phases)))
        elapsed = now - self.started
        # Elapsed over elapsed plus left: moves with every heartbeat; never backwards, never to 100 % before the end.
        self.shown = max(self.shown, min(elapsed / max(elapsed + left, 1e-9), 0.99))
        return ClockState(current + 1, len(self.phases), self.label, self.detail, elapsed, left, self.shown)


class ClockedContext:
    """A step's JobContext seen through its clock: stages advance the phases, the work's progress feeds the clock,
    and `publish()` (the heartbeat's) puts the clock's view on the job: its progress, message and `preview`."""

    def __init__(self, ctx: JobContext, clock: StepClock, now: Callable[[], float] = time.monotonic) -> None:
        self._ctx, self._clock, self._now = ctx, clock, now
        self._lock = threading.Lock()

    def stage(self, message: str) -> None:
        with self._lock:
            self._clock.enter(message, self._now())
        self._ctx.stage(message)
        self.publish()

    def progress(self, fraction: float, message: str = "", step_end: float = 1.0) -> None:
        with self._lock:
            self._clock.report(fraction, step_end, message)

    def preview(self, value: object) -> None:
        """The work's own partial results (an extraction's preview probe and map) are not the tour's to show: the
        job's preview stays the clock's, or the step's line falls back to the job's generic one until the next
        heartbeat (seen in Chromium: "pixels: features — 0%, estimating time left…" mid-step)."""

    def scaled(self, start: float, stop: float) -> Callable[..., None]:
        return lambda fraction, message="": self.progress(start + (stop - start) * fraction, message, step_end=stop)

    def publish(self) -> ClockState:
        with self._lock:
            state = self._clock.state(self._now())
        self._ctx.preview(state)
        self._ctx.progress(state.fraction, f"{state.label}: {state.detail}" if state.detail else state.label)
        return state

    def __getattr__(self, name: str):  # cancelled, check_cancelled, record, pace_pending: the job's own
        return getattr(self._ctx, name)


def clocked(work: Callable[[JobContext], object], phases: list[tuple[str, float]]) -> Callable[[JobContext], object]:
    """`work` run with a StepClock over `phases` and a heartbeat thread publishing it every HEARTBEAT_S."""
    def run(ctx: JobContext):
        clock = StepClock(phases, now=time.monotonic())
        clocked_ctx = ClockedContext(ctx, clock)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_S):
                clocked_ctx.publish()

        clocked_ctx.publish()  # the step's line from its first moment, before the work enters a phase
        heartbeat = threading.Thread(target=beat, name="tour-heartbeat", daemon=True)
        heartbeat.start()
        try:
            return work(clocked_ctx)
        finally:
            stop.set()
            heartbeat.join()
            clock.close(time.monotonic())  # the last phase's pace
    return run


def step_seconds(plan: TourPlan, step: str) -> float:
    """A step's whole estimate at this machine's pace (measured by this process's earlier phases, else the load)."""
    return PACE.factor() * sum(seconds for _what, seconds in step_phases(plan, step))


def step_spec(plan: TourPlan, step: str) -> JobSpec:
    """One step's job (`TOUR_STEPS`): the same whether its own button or "run every step" starts it."""
    key, title, work, restore = step_work(plan, step)
    return JobSpec(key, title, clocked(work, step_phases(plan, step)), kind="tour", restore=restore)


def step_specs(plan: TourPlan) -> list[JobSpec]:
    """Every step's job, in the order "run every step" queues them."""
    return [step_spec(plan, step) for step in TOUR_STEPS]

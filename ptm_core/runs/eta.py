"""Time-left estimates from a job's recent progress, shown only once they can be trusted.

Extrapolating elapsed * (1 - p) / p from the job's start misleads in three ways: model loading
and caching before the first step count as work, resumed work (an extraction continuing from its
checkpoint) counts as if just computed, and a stage with another pace (LP-FT's probe, then its
training) is extrapolated over the rest. So the estimator measures the rate over a trailing
window of (time, progress) samples taken since the first real work step of the current stage,
and says nothing until that rate has been steady for a while.

A step that ends before the job does (features, then a probe sweep of another pace) says where it
ends (`step_end`); its estimate then only reaches there, and says so ("left in this step").
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

MIN_SAMPLES = 6  # samples in the current stage (the first is the baseline, not a work step)
MIN_STAGE_ADVANCE = 0.05  # share of the stage's work (from its first sample to its end) done before estimating
MIN_SPAN_S = 1.0  # seconds of samples in the current stage
MAX_REPORT_SHARE = 0.05  # of the step, per report: coarser work (a C sweep's few fits of unequal cost) gives no rate
MAX_EXTRAPOLATION = 6.0  # estimate at most this many times the span measured: a short look is a poor guide
STEADY_RATIO = 1.35  # the recent rate and the stage's whole rate may differ by at most this factor
SAMPLE_EVERY_S = 0.2  # thinner samples than this add nothing and cost memory
MAX_SAMPLES = 1024  # beyond this every other sample is dropped, so a long stage keeps its whole span


@dataclass
class EtaEstimator:
    """Feed it `add(time, fraction, step_end)`; `reset()` at a stage boundary; `remaining(now)` is seconds or None."""

    samples: list[tuple[float, float]] = field(default_factory=list)
    step_end: float = 1.0  # the job fraction where the current step ends; 1.0: the step runs to the job's end
    held: bool = False  # the pace is about to change (see `hold`): no estimate
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        with self._lock:
            self.samples, self.held = [], False

    def hold(self, pending: bool) -> None:
        """`True` while the work knows its pace is about to change (an extraction whose faster runtime is
        still being prepared): the pace so far would mislead. `False` once it has: measured afresh from there."""
        with self._lock:
            if self.held and not pending:
                self.samples = []
            self.held = pending

    def add(self, t: float, fraction: float, step_end: float = 1.0) -> None:
        with self._lock:
            # Progress going back or another step's end: a new pass or step, whose pace is its own.
            if step_end != self.step_end or (self.samples and fraction < self.samples[-1][1]):
                self.samples, self.step_end = [], step_end
            if len(self.samples) > 1 and t - self.samples[-2][0] < SAMPLE_EVERY_S and fraction < step_end:
                # The newest within a tick replaces the last, so the rate stays current.
                self.samples[-1] = (t, fraction)
                return
            self.samples.append((t, fraction))
            if len(self.samples) > MAX_SAMPLES:
                self.samples = self.samples[::2] + ([self.samples[-1]] if len(self.samples) % 2 == 0 else [])

    def remaining(self, now: float) -> float | None:
        """Seconds to `step_end` (the job's end unless `step_only`), or None while not trustworthy."""
        with self._lock:
            samples, step_end, held = list(self.samples), self.step_end, self.held
        return None if held else estimate_remaining(samples, now, step_end)

    @property
    def step_only(self) -> bool:
        return self.step_end < 1.0


def _rate(samples: list[tuple[float, float]]) -> float:
    (t0, p0), (t1, p1) = samples[0], samples[-1]
    return (p1 - p0) / (t1 - t0) if t1 > t0 else 0.0


def estimate_remaining(samples: list[tuple[float, float]], now: float, step_end: float = 1.0) -> float | None:
    """Seconds until progress reaches `step_end` at the recent rate; None while the samples do not support it."""
    if len(samples) < MIN_SAMPLES:
        return None
    (t0, p0), (t_last, p_last) = samples[0], samples[-1]
    span = t_last - t0
    step_work = max(step_end - p0, 1e-9)
    if span < MIN_SPAN_S or p_last - p0 < MIN_STAGE_ADVANCE * step_work:
        return None
    if (p_last - p0) / (len(samples) - 1) > MAX_REPORT_SHARE * step_work:
        return None
    if p_last >= step_end:
        return 0.0
    # The recent window is the latest half of the stage: long enough to average over validations
    # and epoch ends, short enough to follow a pace that settles after warm-up.
    recent = [s for s in samples if s[0] >= t_last - span / 2]
    if len(recent) < 3:
        recent = samples[-3:]
    rate_recent, rate_stage = _rate(recent), _rate(samples)
    if rate_recent <= 0 or rate_stage <= 0:
        return None
    if max(rate_recent, rate_stage) / min(rate_recent, rate_stage) > STEADY_RATIO:
        return None
    stalled = now - t_last
    if stalled > max(30.0, span):  # no progress for longer than the stage has run: the pace is unknown
        return None
    # A blend leans on the longer baseline, which is steadier, while following a pace that drifts.
    rate = math.sqrt(rate_recent * rate_stage)
    left = (step_end - p_last) / rate
    if left > MAX_EXTRAPOLATION * span:
        return None
    return max(left - stalled, 0.0)


DURATION_UNITS = {"s": "{s} s", "min": "{m} min", "h": "{h} h", "h_min": "{h} h {m} min"}


def format_duration(seconds: float, units: dict[str, str] = DURATION_UNITS) -> str:
    """'45 s', '3 min', '1 h 20 min': rounded as a person would say it; `units` words it (e.g. translated)."""
    if seconds < 60:
        return units["s"].format(s=max(5, int(round(seconds / 5.0)) * 5))
    if seconds < 3600:
        return units["min"].format(m=int(round(seconds / 60.0)))
    hours, minutes = divmod(int(round(seconds / 60.0)), 60)
    return units["h_min"].format(h=hours, m=minutes) if minutes else units["h"].format(h=hours)


def eta_phrase(seconds: float | None, step_only: bool = False) -> str:
    """A running job's time left in English words (`Job.eta_text`), for headless callers and the tests.

    The app does not show this string: pages/ui/job_views.eta_text words the same cases through its message
    catalogue, with these phrases as the English msgids.
    """
    if seconds is None:
        return "estimating time left…"
    where = " in this step" if step_only else ""
    if seconds < 5:
        return f"almost done{where}"
    return f"about {format_duration(seconds)} left{where}"

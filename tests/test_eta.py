"""Time-left estimates: replayed on progress traces recorded from real runs (tests/eta_traces/record.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ptm_core.runs.eta import EtaEstimator, eta_phrase, estimate_remaining, format_duration

TRACES = sorted((Path(__file__).parent / "eta_traces").glob("*.json"))
POLL_S = 0.25  # how often a page asks
TOLERANCE = 1.5
ALMOST_DONE_S = 5.0  # below this the phrase is "almost done", right while the truth is under 1.5x that


def _step_ends_at(events: list, i: int, end: float) -> float:
    """When the step of event i ends: the job's end, or the first later report at its step_end, stage or step change."""
    _, _, step_end = events[i]
    if step_end >= 1.0:
        return end
    for t, fraction, other_end in events[i + 1:]:
        if fraction is None or other_end != step_end or fraction >= step_end - 1e-9:
            return t
    return end


def replay(trace: dict, estimate=None) -> list[tuple[float, float, float | None, float]]:
    """(time, progress, estimate or None, true seconds left in the estimate's scope) at every poll and report."""
    estimator, events, end = EtaEstimator(), trace["events"], trace["end"]
    polls = sorted({e[0] for e in events} | {k * POLL_S for k in range(int(end / POLL_S) + 1)})
    rows, i, progress, last = [], 0, 0.0, None
    for now in polls:
        while i < len(events) and events[i][0] <= now:
            t, fraction, step_end = events[i]
            if fraction is None:
                estimator.reset()
            else:
                estimator.add(t, fraction, step_end)
                progress, last = fraction, i
            i += 1
        shown = estimate(now, progress) if estimate else estimator.remaining(now)
        truth = (_step_ends_at(events, last, end) if last is not None else end) - now
        rows.append((now, progress, shown, truth))
    return rows


def _right(shown: float, truth: float) -> bool:
    if shown < ALMOST_DONE_S:
        return truth < ALMOST_DONE_S * TOLERANCE
    return truth > 0 and 1 / TOLERANCE <= shown / truth <= TOLERANCE


def _misses(rows) -> list:
    return [r for r in rows if r[1] >= 0.1 and r[2] is not None and not _right(r[2], r[3])]


def test_the_recorded_traces_are_there():
    assert {p.stem for p in TRACES} >= {"extraction", "extraction_resumed", "probes", "pixel_sweep", "finetune", "lpft"}


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_every_estimate_shown_after_ten_percent_is_within_one_and_a_half_times(path):
    rows = replay(json.loads(path.read_text()))
    assert _misses(rows) == []


@pytest.mark.parametrize("name, min_coverage", [("extraction", 0.8), ("explore", 0.7), ("extraction_resumed", 0.6),
                                                ("finetune", 0.8), ("lpft", 0.6)])
def test_steady_work_gets_an_estimate_most_of_the_time(name, min_coverage):
    """The estimator may not buy its accuracy by staying silent where the pace is steady."""
    rows = [r for r in replay(json.loads((TRACES[0].parent / f"{name}.json").read_text())) if r[1] >= 0.1]
    assert sum(r[2] is not None for r in rows) / len(rows) >= min_coverage


def test_extrapolating_from_the_job_start_misses_on_lp_ft():
    """The old estimate elapsed * (1 - p) / p: the probe stage's pace is nothing like training's."""
    trace = json.loads((TRACES[0].parent / "lpft.json").read_text())
    old = replay(trace, estimate=lambda now, p: now * (1 - p) / p if p > 0.02 else None)
    assert len(_misses(old)) > 10


def test_warm_up_before_the_first_step_is_not_counted():
    # 60 s of model loading, then 1 % a second: the old extrapolation said 6.4 min at 20 % (truth: 80 s).
    samples = [(60.0 + s, 0.01 * s) for s in range(1, 21)]
    assert estimate_remaining(samples, samples[-1][0]) == pytest.approx(80.0, rel=0.05)
    assert estimate_remaining(samples[:6], samples[5][0]) is None  # 5 s seen: too short a look for 94 s ahead


def test_resumed_work_is_not_counted_as_just_done():
    # A resumed extraction: its first report is at 41 % (40 % from the checkpoint), then 1 % a second.
    estimator = EtaEstimator()
    for s in range(0, 12):
        estimator.add(100.0 + s, 0.41 + 0.01 * s)
    assert estimator.remaining(111.0) == pytest.approx(48.0, rel=0.05)


def test_coarse_reports_of_unequal_work_give_no_rate():
    # A C sweep: six fits, the larger Cs slower; one report per fit says little about the next.
    samples = [(0.0, 0.0), (2.4, 1 / 6), (7.5, 2 / 6), (14.8, 3 / 6), (22.4, 4 / 6), (25.9, 5 / 6)]
    assert estimate_remaining(samples, 26.0) is None


def test_a_pace_that_just_changed_is_not_trusted():
    samples = [(float(s), 0.01 * s) for s in range(20)] + [(19.0 + s, 0.19 + 0.05 * s) for s in range(1, 6)]
    assert estimate_remaining(samples, samples[-1][0]) is None


def test_a_pace_about_to_change_shows_no_estimate_and_is_measured_afresh_after():
    estimator = EtaEstimator()
    for s in range(20):  # PyTorch's pace: 0.01 a second
        estimator.add(float(s), 0.01 * s)
    assert estimator.remaining(19.0) == pytest.approx(81.0, rel=0.05)
    estimator.hold(True)  # OpenVINO is being prepared beside it
    assert estimator.remaining(19.0) is None
    estimator.add(20.0, 0.20)
    estimator.hold(False)  # it took over: four times the pace, from here on only
    for s in range(1, 23):
        estimator.add(20.0 + 0.5 * s, 0.20 + 0.02 * s)
    assert estimator.remaining(31.0) == pytest.approx(9.0, rel=0.05)
    estimator.hold(True)
    estimator.reset()  # a new stage has its own pace, held or not
    assert not estimator.held


def test_a_step_estimate_reaches_only_its_end_and_says_so():
    estimator = EtaEstimator()
    for s in range(12):
        estimator.add(float(s), 0.02 * s, step_end=0.5)
    assert estimator.step_only and estimator.remaining(11.0) == pytest.approx(14.0, rel=0.05)
    estimator.add(12.0, 0.5, step_end=1.0)  # the next step starts afresh
    assert not estimator.step_only and estimator.remaining(12.0) is None


def test_phrases():
    assert eta_phrase(None) == "estimating time left…"
    assert eta_phrase(3.0) == "almost done" and eta_phrase(3.0, step_only=True) == "almost done in this step"
    assert eta_phrase(42.0) == "about 40 s left" and eta_phrase(130.0) == "about 2 min left"
    assert eta_phrase(130.0, step_only=True) == "about 2 min left in this step"
    assert format_duration(5400) == "1 h 30 min" and format_duration(3600) == "1 h"

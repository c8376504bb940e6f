"""Time-left estimates on the app's default run, measured live: how close is what the user reads to the truth?

    python benchmarks/eta_accuracy.py [--limit 5000]

The explorer's own job (MNIST-5k, bundled tf_efficientnet_lite0, 128 px, previews on, then the probe sweep)
runs through the job manager into a fresh data directory; every 0.25 s the benchmark reads the job's
estimate as a page would (`job.eta_seconds`), and afterwards compares each one with the seconds that were
really left to the end of what it estimated (its step, or the job). Counted from 10 % done, as the target
says. The baseline is the extrapolation from the job's start, elapsed * (1 - p) / p, on the same polls.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOLERANCE = 1.5
POLL_S = 0.25
ALMOST_DONE_S = 5.0  # the UI says "almost done" below this: right while the truth is under 1.5x that


def poll_job(limit: int | None) -> tuple[list[tuple[float, float, float | None, float]], float, float]:
    """(time, progress, estimate or None, its step's end) every POLL_S, the job's start and end times."""
    from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig, Source
    from ptm_core.flows.explore import ExploreRequest, run_explore
    from ptm_core.runs.jobs import FINISHED, JobManager

    request = ExploreRequest(Source(DatasetConfig("mnist5k", limit), BackboneConfig("tf_efficientnet_lite0", "bundled"),
                                    ExtractionConfig(image_size=128)))
    job = JobManager().submit(request.key(), request.title(), lambda ctx: run_explore(request, ctx))
    polls = []
    while job.status not in FINISHED:
        polls.append((time.monotonic(), job.progress, job.eta_seconds, job._eta.step_end))
        time.sleep(POLL_S)
    if job.error:
        raise RuntimeError(job.error)
    return polls, polls[0][0], time.monotonic()


def truths(polls: list, end: float) -> list[float]:
    """Seconds really left at each poll to where its estimate reaches: its step's end, or the job's."""
    out = []
    for i, (t, _, _, step_end) in enumerate(polls):
        reached = end
        if step_end < 1.0:
            reached = next((u for u, p, _, e in polls[i + 1:] if p >= step_end - 1e-9 or e != step_end), end)
        out.append(reached - t)
    return out


def _right(shown: float, truth: float) -> bool:
    if shown < ALMOST_DONE_S:
        return truth < ALMOST_DONE_S * TOLERANCE
    return truth > 0 and 1 / TOLERANCE <= shown / truth <= TOLERANCE


def score(polls: list, truth: list[float], shown: list[float | None]) -> tuple[int, int, int, float]:
    """(polls from 10 %, estimates shown there, of which right within 1.5x, worst ratio shown / truth)."""
    late = [i for i, p in enumerate(polls) if p[1] >= 0.1]
    given = [i for i in late if shown[i] is not None]
    right = [i for i in given if _right(shown[i], truth[i])]
    ratios = [shown[i] / truth[i] for i in given if truth[i] > ALMOST_DONE_S]
    worst = max(ratios + [1 / r for r in ratios if r > 0], default=float("nan"))
    return len(late), len(given), len(right), worst


def rows(quick: bool = False, limit: int | None = None) -> list[dict]:
    limit = limit or (1000 if quick else None)
    os.environ["PTM_DATA_DIR"] = tempfile.mkdtemp(prefix="ptm-eta-bench-")
    polls, start, end = poll_job(limit)
    truth = truths(polls, end)
    late, given, right, worst = score(polls, truth, [p[2] for p in polls])
    naive = [(t - start) * (1 - p) / p if p > 0.02 else None for t, p, _, _ in polls]
    whole = truths([(t, p, e, 1.0) for t, p, e, _ in polls], end)  # the naive figure always means the job's end
    n_late, n_given, n_right, n_worst = score(polls, whole, naive)
    what = f"MNIST-5k{f' (limit {limit})' if limit else ''}, lite0 bundled @128, previews on"
    return [{"figure": f"time-left estimates after 10 % done, the explorer's default job ({what}): share within 1.5x",
             "ours": f"{right}/{given} ({right / max(given, 1):.0%}); shown at {given}/{late} polls; worst {worst:.2f}x",
             "baseline": f"{n_right}/{n_given} ({n_right / max(n_given, 1):.0%}); worst {n_worst:.2f}x",
             "ratio": right / max(given, 1), "target": "every shown estimate within 1.5x",
             "met": given > 0 and right == given,
             "note": f"job {end - start:.0f} s; baseline: elapsed x (1 - p) / p from the job's start"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for row in rows(args.quick, args.limit):
        print(row)


if __name__ == "__main__":
    main()

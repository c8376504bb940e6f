"""Each claim the tour's captions make, tested on its default data: McNemar's exact p (Welch's for step 4's means
over draws), and whether the caption the page shows is the "beats" or the "cannot be told apart" one.

    python benchmarks/tour_claims.py [--steps shapes,digits,efficiency,finetune,lesson]

Not a speed figure: `ours` is the p-value, `baseline` the two accuracies, `met` whether the test supports a
difference (p < 0.05). A claim that is not met is not an error: its caption then says the two cannot be told apart.
Runs in a fresh data dir unless PTM_DATA_DIR is set; the tour's precision is `auto`, as a user gets it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ptm_core.base.stats import SIGNIFICANCE  # noqa: E402
from ptm_core.flows import tour  # noqa: E402
from ptm_core.runs.jobs import Job, JobContext  # noqa: E402

STEPS = ("shapes", "digits", "efficiency", "finetune", "lesson", "zoo")


def _paired_row(figure: str, test, seconds: float) -> dict:
    return {"figure": figure, "ours": f"p = {test.p_value:.2g}",
            "baseline": f"{test.a_accuracy:.1%} vs {test.b_accuracy:.1%} on {test.n_test:,} test images",
            "ratio": float("nan"), "target": "p < 0.05, or the caption says tie", "met": test.p_value < SIGNIFICANCE,
            "note": f"McNemar exact, {test.a_only_right} vs {test.b_only_right} discordant; verdict {test.verdict}; "
                    f"step computed in {seconds:.0f} s"}


def _claim_rows(spec: str, claim, draws: int, seconds: float) -> list[dict]:
    """Step 4's claim covers every budget: one row per k, pretrained vs pixels with as many labels per class."""
    return [{"figure": f"tour 4: pretrained vs pixels with {k} label{'s' if k != 1 else ''}/class, {spec}",
             "ours": f"p = {test.p_value:.2g}", "baseline": f"{test.a_mean:.1%} vs {test.b_mean:.1%}",
             "ratio": float("nan"), "target": "p < 0.05, or the caption says no difference detected",
             "met": test.verdict != "tie",
             "note": f"Welch's t-test over {draws} draws; verdict {test.verdict}; step computed in {seconds:.0f} s"}
            for k, test in claim.tests]


def step_rows(plan: tour.TourPlan, step: str) -> list[dict]:
    ctx, started = JobContext(Job("benchmark", step)), time.perf_counter()
    if step in ("shapes", "digits"):
        dataset = plan.shapes if step == "shapes" else plan.digits
        result = tour.run_contrast(plan, dataset, ctx)
        seconds = time.perf_counter() - started
        number = 2 if step == "shapes" else 3
        return [_paired_row(f"tour {number}: pretrained vs {kind}, {dataset.spec}", result.tests[kind], seconds)
                for kind in ("random", "pixels")]
    if step == "efficiency":
        points = tour.run_efficiency(plan, ctx)
        seconds = time.perf_counter() - started
        return [row for spec in (plan.shapes.spec, plan.digits.spec)
                for row in _claim_rows(spec, tour.efficiency_claim(points, spec), len(plan.seeds), seconds)]
    if step == "finetune":
        result = tour.run_frozen_vs_adapted(plan, ctx)
        row = _paired_row(f"tour 5: LP-FT vs its linear probe, {result.n_test:,} of {plan.finetune_limit:,} digits",
                          tour.adapted_test(result), time.perf_counter() - started)
        row["note"] += f"; fine-tune precision {result.precision}"
        return [row]
    if step == "zoo":
        result = tour.run_zoo(plan, ctx)
        seconds = time.perf_counter() - started
        return [_paired_row(f"tour 7: {row.backbone.name} vs {result.reference}, {plan.shapes.spec}", row.test, seconds)
                for row in result.rows if row.test is not None]
    result = tour.run_lesson(plan, ctx)
    seconds = time.perf_counter() - started
    return [_paired_row(f"tour 6: pretrained vs random init on {size.n:,} test images, {plan.lesson.spec}", size.test,
                        seconds) for size in result.sizes]


def rows(quick: bool = False, steps: tuple[str, ...] = STEPS) -> list[dict]:
    """One row per claim; `quick` changes nothing: a claim is only worth its default data."""
    plan = tour.TourPlan()
    return [row for step in steps for row in step_rows(plan, step)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)}")
    args = parser.parse_args()
    for row in rows(steps=tuple(args.steps.split(","))):
        print(f"{row['figure']}: {row['ours']} ({row['baseline']}; {'supported' if row['met'] else 'tie'}) — "
              f"{row['note']}", flush=True)


if __name__ == "__main__":
    main()

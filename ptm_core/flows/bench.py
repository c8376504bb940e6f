"""The leaderboard as a job ("Which backbone for my data?"): ptm_core.evals.bench on the sidebar's dataset.

The runs and leaderboard of one BenchConfig live in the data folder under `bench/<its key>`; the job is restored after
a server restart by running it again, which reads every finished run back from there (and the features from the
cache) in about a second per backbone.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ptm_core.base.messages import M_
from ptm_core.base.configs import describe_data, stable_hash
from ptm_core.evals.bench import T_INTERVAL, T_MIN_SEEDS, BenchConfig, BenchResult, run_bench
from ptm_core.runs.artifacts import artifact_dir
from ptm_core.runs.jobs import JobContext, JobSpec

BENCH_T_MIN_SEEDS = T_MIN_SEEDS


@dataclass(frozen=True)
class BenchProgress:
    """Each row's share done so far (0-1), in the leaderboard's run order: what the page draws a bar of."""

    labels: tuple[str, ...]
    fractions: tuple[float, ...]


def interval_kind(row: dict) -> str:
    """"t" (Student's, over the row's seeds) or "bootstrap" (over its test images): which interval a leaderboard row
    has, read off its `interval` column (fewer than BENCH_T_MIN_SEEDS seeds, or seeds that all agree, get the
    bootstrap)."""
    return "t" if str(row.get("interval", "")).startswith(T_INTERVAL) else "bootstrap"


def bench_dir(config: BenchConfig) -> Path:
    return artifact_dir("bench") / config.key()


def entry_labels(config: BenchConfig) -> tuple[str, ...]:
    return tuple(f"{entry.name} ({entry.weights})" for entry in config.entries())


def bench_title(config: BenchConfig) -> str:
    """One line naming what the leaderboard is of: its rows, data, size and seeds."""
    names = ", ".join(config.backbones)
    extra = M_(" + random init") if config.include_random and config.weights != "random" else ""
    return M_("Leaderboard: {names} ({weights}{extra}) on {data} @ {size}px, {n} seeds", names=names,
              weights=config.weights, extra=extra, data=describe_data(config.dataset), size=config.image_size,
              n=len(config.seeds))


def run_bench_job(config: BenchConfig, ctx: JobContext) -> BenchResult:
    """run_bench with its progress as the job's and, per row, as the job's preview (BenchProgress)."""
    labels = entry_labels(config)
    n = len(labels)

    def progress(fraction: float, message: str) -> None:
        ctx.progress(fraction, message)
        ctx.preview(BenchProgress(labels, tuple(min(max(fraction * n - i, 0.0), 1.0) for i in range(n))))

    ctx.preview(BenchProgress(labels, (0.0,) * n))
    result = run_bench(config, bench_dir(config), progress=progress, cancelled=ctx.cancelled, stage=ctx.stage)
    best = result.rows[0]
    ctx.record(metrics={"best": f"{best['backbone']} ({best['weights']})", "best_linear_mean": best["linear_mean"],
                        "leaderboard_rows": len(result.rows), "computed": result.computed, "reused": result.reused},
               artifacts={"leaderboard": str(result.leaderboard), "runs": str(result.runs_dir)})
    return result


def bench_spec(config: BenchConfig) -> JobSpec:
    """The leaderboard job of `config` in the compute lane; restored after a restart (finished runs read back)."""
    return JobSpec(stable_hash(["bench", config.key()]), bench_title(config), partial(run_bench_job, config),
                   kind="bench", restore=True, config=config.to_dict())

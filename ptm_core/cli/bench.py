"""`python -m ptm_core bench`: the leaderboard of backbones on one dataset (ptm_core.evals.bench).

Only the command lives here; its arguments are in cli/args.py, and the engine is imported when the command runs, so
that building the parser stays light for every other command.
"""
from __future__ import annotations

import argparse

from ptm_core.base.configs import DatasetConfig, KNNConfig, describe_data
from ptm_core.base.text import dumps, printable


def _ci_text(low: float, high: float) -> str:
    return f"95 % CI {low:.1%}-{high:.1%}"


def _row_text(row: dict) -> str:
    speed = "speed unknown" if row["images_per_s"] is None else f"{row['images_per_s']:.0f} img/s"
    return (f"{printable(row['backbone'])} ({row['weights']}): linear probe {row['linear_mean']:.1%} "
            f"({_ci_text(row['linear_ci_low'], row['linear_ci_high'])}, {row['interval']}), "
            f"k-NN {row['knn_mean']:.1%}; {speed}, {row['feature_dim']}-d, {row['params_m']:.1f} M parameters")


def cmd_bench(args: argparse.Namespace, progress=None) -> int:
    from ptm_core.evals.bench import BenchConfig, run_bench

    config = BenchConfig(backbones=args.backbones, weights=args.weights, include_random=args.include_random,
                         dataset=DatasetConfig(args.dataset, args.limit), image_size=args.image_size, seeds=args.seeds,
                         knn=KNNConfig(args.k, args.temperature), init_seed=args.init_seed, precision=args.precision,
                         batch_size=args.batch_size, device=args.device, runtime=args.runtime)
    result = run_bench(config, args.out, progress=progress)
    if args.json:
        print(dumps({"rows": result.rows, "runs_dir": str(result.runs_dir), "leaderboard": str(result.leaderboard),
                     "computed": result.computed, "reused": result.reused}))
        return 0
    for row in result.rows:
        print(_row_text(row))
    print(f"on {printable(describe_data(config.dataset))} @ {config.image_size}px, {len(config.seeds)} seeds: "
          f"{result.computed} runs computed, {result.reused} read back; runs in {printable(result.runs_dir)}, "
          f"leaderboard in {printable(result.leaderboard)}")
    return 0

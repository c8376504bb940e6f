"""Evaluations built on features, probes and fine-tuning: baselines (pixels, random weights), label
efficiency, the layer sweep, two feature sets compared image by image (`versus`), and the leaderboard of backbones
on one dataset (`bench`).
"""
from ptm_core.evals.bench import BenchConfig, BenchResult, run_bench
from ptm_core.evals.baselines import PIXEL_SIZE, random_weights, run_pixel_baseline, run_random_weights_baseline
from ptm_core.evals.label_efficiency import run_label_efficiency
from ptm_core.evals.layer_sweep import run_layer_sweep
from ptm_core.evals.versus import VersusResult, probe_versus

__all__ = ["BenchConfig", "BenchResult", "PIXEL_SIZE", "VersusResult", "probe_versus", "random_weights", "run_bench",
           "run_label_efficiency", "run_layer_sweep", "run_pixel_baseline", "run_random_weights_baseline"]

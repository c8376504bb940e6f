"""Probes on frozen features: the linear probe (C chosen on a validation split, every C fitted at once) and
the weighted k-NN probe.
"""
from ptm_core.probes.linear import (LinearProbe, ProbeResult, cached_linear_probe, confusion, per_class_accuracy,
                                    run_linear_probe, split_indices)
from ptm_core.probes.knn import KNNProbe, KNNResult, run_knn_probe

__all__ = ["KNNProbe", "KNNResult", "LinearProbe", "ProbeResult", "cached_linear_probe", "confusion",
           "per_class_accuracy", "run_knn_probe", "run_linear_probe", "split_indices"]

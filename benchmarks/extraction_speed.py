"""Feature extraction: ours (the engine behind `python -m ptm_core extract`) vs a naive timm loop.

Ours: batched normalisation, batch norms folded into the convolutions, channels-last, inference mode,
pre-logits only, `--precision auto --runtime auto` (the fastest pair measured on this machine: PyTorch or
OpenVINO, fp32 or native bf16; the one chosen is in the note), the CLI's batch of 64, into a fresh feature cache
each time, OpenVINO's model converted once beforehand (the one-off conversion is timed and reported; the IR is
kept across runs, as in the app; so is auto's measurement of the pairs, made once beforehand too);
the PyTorch path alone is reported too. Naive: what a first script does: timm's transform per image, NCHW, no_grad,
fp32, batch 32, the full forward. Both run in this one process on the same images, alternating, so machine
noise hits both alike; the best run of each counts. The linear probe is scored on both sets of features.

    python benchmarks/extraction_speed.py [--n 512] [--sizes 224] [--repeats 2] [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from timm.data import create_transform

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _features import data_dir  # noqa: E402
from ptm_core.models import openvino as openvino_runtime  # noqa: E402
from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig, ProbeConfig  # noqa: E402
from ptm_core.data import load_dataset  # noqa: E402
from ptm_core.features.extraction import data_config, extract  # noqa: E402
from ptm_core.models.precision import native_bf16  # noqa: E402
from ptm_core.probes.linear import run_linear_probe  # noqa: E402
from ptm_core.models.weights import load_backbone  # noqa: E402

TARGET = 3.0
ACCURACY_TOLERANCE_PT = 0.3


def naive(dataset_config: DatasetConfig, size: int, batch_size: int = 32) -> tuple[float, np.ndarray]:
    """img/s and pre-logit features of a plain loop; the classifier runs too, as in model(batch)."""
    start = time.perf_counter()
    model = load_backbone(BackboneConfig()).model
    transform = create_transform(**data_config(model, size), is_training=False)
    dataset = load_dataset(dataset_config)
    out = []
    with torch.no_grad():
        for lo in range(0, len(dataset), batch_size):
            batch = torch.stack([transform(dataset.image(i)) for i in range(lo, min(lo + batch_size, len(dataset)))])
            features = model.forward_head(model.forward_features(batch), pre_logits=True)
            model.get_classifier()(features)  # the rest of the full forward
            out.append(features.numpy())
    return len(dataset) / (time.perf_counter() - start), np.concatenate(out)


IR_DIR = Path(tempfile.mkdtemp(prefix="ptm-bench-openvino-"))  # the converted model, shared by every run


@contextlib.contextmanager
def fresh_cache():
    """A temporary PTM_DATA_DIR, so features are computed, never read back from an earlier run (the
    OpenVINO IR and auto's measurement, made once by `convert_once`, are copied in: the app keeps them too)."""
    with tempfile.TemporaryDirectory() as cache:
        for kept in ("openvino", "calibration"):
            if (IR_DIR / kept).exists():
                shutil.copytree(IR_DIR / kept, Path(cache) / kept)
        with data_dir(cache):
            yield


def convert_once(size: int) -> float | None:
    """Seconds the one-off OpenVINO conversion of the bundled model took (None: OpenVINO not installed); then
    auto's one-off measurement of the pairs at `size`, kept with it."""
    with data_dir(IR_DIR):
        start, seconds = time.perf_counter(), None
        if openvino_runtime.available():
            extract(DatasetConfig("mnist5k", limit=10), BackboneConfig(),
                    ExtractionConfig(128, 10, "cpu", runtime="openvino", precision="fp32"))
            seconds = time.perf_counter() - start
        extract(DatasetConfig("mnist5k", limit=10), BackboneConfig(), ExtractionConfig(size, 10, "cpu"))
        return seconds


def ours(dataset_config: DatasetConfig, size: int, batch_size: int = 64, runtime: str = "auto"
         ) -> tuple[float, np.ndarray, dict]:
    """img/s (model and data loading included, as for naive), features and meta of the engine's extract."""
    with fresh_cache():
        start = time.perf_counter()
        result = extract(dataset_config, BackboneConfig(), ExtractionConfig(size, batch_size, "cpu", runtime=runtime))
        seconds = time.perf_counter() - start
    return len(result.features) / seconds, result.features, result.meta


def _accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    return run_linear_probe(features, labels, ProbeConfig(seed=0)).test_accuracy


def measure(n: int, size: int, repeats: int) -> dict:
    """Best img/s of each over `repeats` alternating runs, and the probe accuracy on each one's features."""
    data = DatasetConfig("mnist5k", limit=n)
    convert_seconds = convert_once(size)
    rates: dict[str, list[float]] = {"naive": [], "ours": [], "torch": []}
    for _ in range(repeats):
        rate, naive_features = naive(data, size)
        rates["naive"].append(rate)
        rate, our_features, meta = ours(data, size)
        rates["ours"].append(rate)
        rates["torch"].append(ours(data, size, runtime="torch")[0])
    labels = load_dataset(data).labels
    return {"naive": max(rates["naive"]), "ours": max(rates["ours"]), "torch": max(rates["torch"]), "meta": meta,
            "acc_naive": _accuracy(naive_features, labels), "acc_ours": _accuracy(our_features, labels),
            "convert_seconds": convert_seconds}


def _rows_for(m: dict, n: int, size: int) -> list[dict]:
    ratio = m["ours"] / m["naive"]
    path = f"{m['meta']['precision_label']}, {m['meta']['batchnorms_folded']} batch norms folded"
    path += f"; auto chose {m['meta'].get('path_choice')}"
    delta = 100 * (m["acc_ours"] - m["acc_naive"])
    runtime = (f"runtime {m['meta'].get('runtime')}; PyTorch path alone {m['torch']:.1f} img/s "
               f"({m['torch'] / m['naive']:.2f}x)")
    if m["convert_seconds"] is not None:
        runtime += f"; one-off OpenVINO conversion {m['convert_seconds']:.0f} s, not in the rate"
    return [
        {"figure": f"extract tf_efficientnet_lite0 @{size}px, {n} MNIST images", "ours": f"{m['ours']:.1f} img/s",
         "baseline": f"{m['naive']:.1f} img/s (naive timm loop)", "ratio": ratio, "target": f"≥ {TARGET:g}×",
         "met": ratio >= TARGET,
         "note": f"{path}; {runtime}; probe acc ours {m['acc_ours']:.1%} vs naive {m['acc_naive']:.1%}"},
        {"figure": f"linear-probe accuracy @{size}px, {n} MNIST images (ours vs naive features)",
         "ours": f"{m['acc_ours']:.2%}", "baseline": f"{m['acc_naive']:.2%}",
         "ratio": m["acc_ours"] / max(m["acc_naive"], 1e-9), "target": f"±{ACCURACY_TOLERANCE_PT} pt",
         "met": abs(delta) <= ACCURACY_TOLERANCE_PT + 1e-9, "note": f"difference {delta:+.2f} pt ({path})"},
    ]


def rows(quick: bool = False, n: int | None = None, sizes: tuple[int, ...] = (224,), repeats: int | None = None
         ) -> list[dict]:
    """One dict per figure: figure, ours, baseline, ratio (ours / baseline), target, met, note."""
    n = n or (128 if quick else 512)
    repeats = repeats or (1 if quick else 2)
    out = []
    for size in sizes:
        out += _rows_for(measure(n, size, repeats), n, size)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=None, help="MNIST images (default 512, --quick 128)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224])
    parser.add_argument("--repeats", type=int, default=None, help="alternating runs of each (default 2, --quick 1)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {native_bf16(torch.device('cpu'))}")
    for row in rows(args.quick, args.n, tuple(args.sizes), args.repeats):
        print(f"{row['figure']}: ours {row['ours']}, baseline {row['baseline']}, ratio {row['ratio']:.2f} "
              f"(target {row['target']}: {'met' if row['met'] else 'NOT met'}) — {row['note']}")


if __name__ == "__main__":
    main()

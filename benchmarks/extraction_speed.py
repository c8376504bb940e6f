"""Feature extraction: ours (channels_last + inference_mode + pre-logits) vs a naive timm loop.

Both run in this one process on the same images, alternating, so machine noise hits both alike.
Prints images/s for each and the ratio. Usage:

    python benchmarks/extraction_speed.py [--n 256] [--sizes 128 224] [--repeats 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from timm.data import create_transform

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ptm_core.configs import BackboneConfig, DatasetConfig  # noqa: E402
from ptm_core.data import load_dataset  # noqa: E402
from ptm_core.extraction import data_config, extract_features  # noqa: E402
from ptm_core.weights import load_backbone  # noqa: E402


def naive(model, dataset, transform, batch_size: int) -> float:
    """What a first script usually does: NCHW, no_grad, the full forward, one batch at a time."""
    start = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(dataset), batch_size):
            batch = torch.stack([transform(dataset.image(i)) for i in range(lo, min(lo + batch_size, len(dataset)))])
            model(batch.contiguous())
    return len(dataset) / (time.perf_counter() - start)


def ours(model, dataset, transform, batch_size: int) -> float:
    start = time.perf_counter()
    extract_features(model, dataset, transform, batch_size, torch.device("cpu"))
    return len(dataset) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    dataset = load_dataset(DatasetConfig("mnist5k", limit=args.n))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(dataset)} MNIST images, "
          f"tf_efficientnet_lite0 (bundled weights), batch {args.batch_size}")
    for size in args.sizes:
        rates = {"naive": [], "ours": []}
        for _ in range(args.repeats):
            for name, fn in (("naive", naive), ("ours", ours)):
                model = load_backbone(BackboneConfig()).model  # fresh, so memory format starts as NCHW
                transform = create_transform(**data_config(model, size), is_training=False)
                rates[name].append(fn(model, dataset, transform, args.batch_size))
        best = {k: max(v) for k, v in rates.items()}
        print(f"{size:4d} px  naive {best['naive']:7.1f} img/s   ours {best['ours']:7.1f} img/s   "
              f"ratio {best['ours'] / best['naive']:.2f}x")


if __name__ == "__main__":
    main()

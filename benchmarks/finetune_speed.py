"""Fine-tuning throughput: ours (`ptm_core.finetune.finetuning`, full mode) vs a plain PyTorch loop, and bf16 vs fp32.

Same model (tf_efficientnet_lite0, bundled weights, a fresh seeded 10-class head), same images (the fit
split of mnist5k's first N), same batch, size, augmentation, optimiser and learning rates. The plain loop:
timm's training transform per image, the default collate, NCHW, fp32, model(x) -> loss -> backward -> step.
Ours is timed by its own training clock (loading + steps; no validation, test or checkpoint), the plain
loop the same way. Runs alternate in this one process; the best of each counts.

    python benchmarks/finetune_speed.py [--n 640] [--repeats 2] [--quick]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.extraction_speed import fresh_cache  # noqa: E402
from ptm_core.base.configs import BackboneConfig, DatasetConfig, FinetuneConfig  # noqa: E402
from ptm_core.data import load_dataset  # noqa: E402
from ptm_core.features.extraction import data_config  # noqa: E402
from ptm_core.models.precision import native_bf16  # noqa: E402
from ptm_core.finetune.finetuning import TrainingImages, build_model, finetune, finetune_split  # noqa: E402
from ptm_core.finetune.training import make_optimizer  # noqa: E402

LOOP_TARGET, BF16_TARGET, AUTO_TARGET = 0.95, 1.5, 0.9
CONFIG = FinetuneConfig(mode="full", epochs=1, batch_size=32, image_size=96, val_size=0.0)


def plain_loop(data: DatasetConfig, config: FinetuneConfig) -> float:
    """Training img/s of the loop a tutorial would write, on the same images, order and optimiser."""
    from timm.data import create_transform

    dataset = load_dataset(data)
    fit, _, _ = finetune_split(dataset.labels, config)
    model, _ = build_model(BackboneConfig(), config, len(dataset.class_names))
    transform = create_transform(**data_config(model, config.image_size), is_training=True, scale=(0.5, 1.0),
                                 hflip=0.5, color_jitter=None)
    loader = DataLoader(TrainingImages(dataset, fit, transform), batch_size=config.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(config.seed))
    optimizer, loss_fn, images_seen = make_optimizer(model, config), nn.CrossEntropyLoss(), 0
    model.train()
    start = time.perf_counter()
    for images, labels in loader:
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        images_seen += len(images)
    return images_seen / (time.perf_counter() - start)


def ours(data: DatasetConfig, config: FinetuneConfig) -> tuple[float, str, str]:
    """Training img/s as the engine records it, the precision that ran and how it was chosen."""
    with fresh_cache():
        result = finetune(data, BackboneConfig(), config, device="cpu")
    return result.train_images_per_s, result.precision, result.precision_choice


def _row(figure: str, ours_rate: float, base_rate: float, baseline: str, target: float, note: str) -> dict:
    ratio = ours_rate / base_rate
    return {"figure": figure, "ours": f"{ours_rate:.1f} img/s", "baseline": f"{base_rate:.1f} img/s ({baseline})",
            "ratio": ratio, "target": f"≥ {target:g}×", "met": ratio >= target, "note": note}


def _bf16_rows(data: DatasetConfig, n: int, repeats: int) -> list[dict]:
    figure = f"fine-tune bf16 autocast vs fp32, lite0 @{CONFIG.image_size}px, {n} MNIST images"
    if not native_bf16(torch.device("cpu")):
        # Emulated bf16 runs many times slower than fp32; timing it would only say that the CPU lacks it.
        return [{"figure": figure, "ours": "not run", "baseline": "fp32", "ratio": math.nan,
                 "target": f"≥ {BF16_TARGET:g}×", "met": False,
                 "note": "this CPU has no native bf16 (AVX512_BF16/AMX): auto trains in fp32; not measured"}]
    rates: dict[str, list[float]] = {"fp32": [], "bf16": [], "auto": []}
    for _ in range(repeats):
        for precision in rates:
            rate, ran, choice = ours(data, dataclasses.replace(CONFIG, precision=precision))
            rates[precision].append(rate)
    best = max(("fp32", "bf16"), key=lambda p: max(rates[p]))
    return [_row(figure, max(rates["bf16"]), max(rates["fp32"]), "ours, fp32", BF16_TARGET,
                 "both through ptm_core.finetune.finetuning, alternating"),
            _row(f"fine-tune precision auto vs the faster of fp32 and bf16, lite0 @{CONFIG.image_size}px, {n} MNIST "
                 "images", max(rates["auto"]), max(rates[best]), f"ours, {best}", AUTO_TARGET,
                 f"auto trained in {ran}: {choice} (measured in each run's fresh data directory; the few seconds "
                 "of measuring are not in the training rate)")]


def rows(quick: bool = False, n: int | None = None, repeats: int | None = None) -> list[dict]:
    """One dict per figure: figure, ours, baseline, ratio (ours / baseline), target, met, note."""
    n = n or (200 if quick else 640)
    repeats = repeats or (1 if quick else 2)
    data = DatasetConfig("mnist5k", limit=n)
    rates: dict[str, list[float]] = {"plain": [], "ours": []}
    for _ in range(repeats):
        rates["plain"].append(plain_loop(data, CONFIG))
        rate, precision, _ = ours(data, CONFIG)
        rates["ours"].append(rate)
    loop_row = _row(f"fine-tune (full) lite0 @{CONFIG.image_size}px, batch {CONFIG.batch_size}, {n} MNIST images",
                    max(rates["ours"]), max(rates["plain"]), "plain PyTorch loop", LOOP_TARGET,
                    f"ours ran {precision} (precision auto); training steps incl. data loading")
    return [loop_row, *_bf16_rows(data, n, repeats)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=None, help="MNIST images (default 640, --quick 200); 80%% train")
    parser.add_argument("--repeats", type=int, default=None, help="alternating runs of each (default 2, --quick 1)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"native bf16: {native_bf16(torch.device('cpu'))}")
    for row in rows(args.quick, args.n, args.repeats):
        print(f"{row['figure']}: ours {row['ours']}, baseline {row['baseline']}, ratio {row['ratio']:.2f} "
              f"(target {row['target']}: {'met' if row['met'] else 'NOT met'}) — {row['note']}")


if __name__ == "__main__":
    main()

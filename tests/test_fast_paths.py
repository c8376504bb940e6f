"""The fast paths change speed, not answers: batched preprocessing, folded batch norms, bf16 autocast.

bf16 is forced where the CPU lacks it (emulated: slow, but the tiny model at 32 px keeps it short), so
its numbers are checked on any machine; `auto` is checked with the hardware's answer overridden both ways
(PTM_NATIVE_BF16, read by ptm_core.base.capabilities).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from timm.data import create_transform
from torch import nn

from ptm_core.models import precision as fast_paths
from ptm_core.base.configs import ExtractionConfig, FinetuneConfig, ProbeConfig, Source
from ptm_core.data import load_dataset
from ptm_core.base.errors import PTMError
from ptm_core.features.extraction import data_config, extract
from ptm_core.models.precision import BatchTransform, fold_batchnorms, pre_logits, resolve_precision
from ptm_core.finetune.finetuning import finetune
from ptm_core.probes.linear import run_linear_probe
from ptm_core.models.weights import load_backbone
from arrays import cosines

CPU = torch.device("cpu")
REPO_ROOT = Path(__file__).resolve().parent.parent


def _config(tiny, precision: str) -> ExtractionConfig:
    return dataclasses.replace(tiny.extraction(), precision=precision)


@pytest.fixture
def no_native_bf16(monkeypatch):
    monkeypatch.setenv("PTM_NATIVE_BF16", "0")


def test_batch_transform_gives_timm_standard_values_channels_last(tiny):
    model = load_backbone(tiny.backbone()).model
    cfg = data_config(model, tiny.image_size)
    dataset = load_dataset(tiny.data(limit=20))
    images = [dataset.image(i) for i in range(len(dataset))]
    batch = BatchTransform(cfg)
    fast = batch.stack([batch(image) for image in images])
    standard = torch.stack([create_transform(**cfg, is_training=False)(image) for image in images])
    assert fast.dtype == torch.float32 and fast.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast, standard, rtol=0, atol=1e-5)


def test_fast_fp32_features_match_the_plain_timm_forward(tiny, one_torch_thread, no_native_bf16):
    """Folded batch norms + batched preprocessing: the same features as timm's transform and unfolded forward."""
    features = extract(tiny.data(), tiny.backbone(), _config(tiny, "auto"))
    assert features.meta["precision"] == "fp32" and features.meta["batchnorms_folded"] > 0
    model = load_backbone(tiny.backbone()).model
    transform = create_transform(**data_config(model, tiny.image_size), is_training=False)
    dataset = load_dataset(tiny.data())
    with torch.inference_mode():
        batch = torch.stack([transform(dataset.image(i)) for i in range(len(dataset))])
        reference = model.forward_head(model.forward_features(batch), pre_logits=True).numpy()
    np.testing.assert_allclose(features.features, reference, rtol=1e-3, atol=1e-4 * np.abs(reference).max())


def test_bf16_features_agree_with_fp32_in_direction_and_probe_accuracy(tiny, one_torch_thread):
    data = tiny.data(limit=300)
    fp32 = extract(data, tiny.backbone(), _config(tiny, "fp32"))
    bf16 = extract(data, tiny.backbone(), _config(tiny, "bf16"))
    assert fp32.features.dtype == bf16.features.dtype == np.float32
    assert bf16.meta["precision"] == "bf16" and not np.array_equal(fp32.features, bf16.features)  # bf16 did run
    cosine = cosines(fp32.features, bf16.features)
    assert cosine.min() > 0.99, cosine.min()
    accuracy = [run_linear_probe(f.features, f.labels, ProbeConfig(seed=0)).test_accuracy for f in (fp32, bf16)]
    assert abs(accuracy[0] - accuracy[1]) <= 2 / 60 + 1e-9, accuracy  # at most 2 of the 60 test images


def test_precision_is_in_the_cache_key_and_meta(tiny, monkeypatch, tmp_path, bf16_gates_open):
    monkeypatch.setenv("PTM_NATIVE_BF16", "0")
    auto_cpu = extract(tiny.data(), tiny.backbone(), _config(tiny, "auto"))
    fp32 = extract(tiny.data(), tiny.backbone(), _config(tiny, "fp32"))
    assert fp32.meta["cache_hit"] and fp32.key == auto_cpu.key  # auto resolved to fp32: the same entry
    bf16 = extract(tiny.data(), tiny.backbone(), _config(tiny, "bf16"))
    assert not bf16.meta["cache_hit"] and bf16.key != fp32.key
    assert (bf16.meta["precision"], bf16.meta["precision_label"]) == ("bf16", "bf16 autocast")
    monkeypatch.setenv("PTM_NATIVE_BF16", "1")
    again = extract(tiny.data(), tiny.backbone(), _config(tiny, "auto"))
    assert again.meta["cache_hit"] and again.key == fp32.key  # auto takes any entry it could make, fp32 first
    monkeypatch.setenv("PTM_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.setattr("ptm_core.models.calibration.measure", lambda runs, n: {
        pair: 100.0 if pair.precision == "bf16" else 10.0 for pair in runs})  # bf16 measured 10x faster
    auto_bf16 = extract(tiny.data(), tiny.backbone(), _config(tiny, "auto"))
    assert not auto_bf16.meta["cache_hit"] and auto_bf16.key == bf16.key and auto_bf16.meta["precision"] == "bf16"
    np.testing.assert_array_equal(auto_bf16.features, bf16.features)


def test_precision_other_than_auto_changes_the_source_key(tiny):
    source = Source(tiny.data(), tiny.backbone(), _config(tiny, "auto"))
    assert source.key() == Source(tiny.data(), tiny.backbone(), ExtractionConfig(tiny.image_size, 64, "cpu")).key()
    assert Source(source.dataset, source.backbone, _config(tiny, "bf16")).key() != source.key()
    assert Source(source.dataset, source.backbone, _config(tiny, "fp32")).key() != source.key()


def test_auto_offers_bf16_by_what_the_machine_reports_and_bad_names_are_refused(tiny, monkeypatch, bf16_gates_open):
    monkeypatch.setenv("PTM_NATIVE_BF16", "0")
    assert resolve_precision("auto", CPU) == "fp32" and resolve_precision("bf16", CPU) == "bf16"
    assert fast_paths.precisions_to_try("auto", CPU) == ["fp32"]
    monkeypatch.setenv("PTM_NATIVE_BF16", "1")
    assert fast_paths.precisions_to_try("auto", CPU) == ["fp32", "bf16"]
    assert fast_paths.precisions_to_try("fp32", CPU) == ["fp32"]
    assert resolve_precision("auto", CPU) == "fp32" and resolve_precision("fp32", CPU) == "fp32"  # unmeasured
    with pytest.raises(PTMError, match="Unknown precision 'fp16'"):
        resolve_precision("fp16", CPU)
    with pytest.raises(PTMError, match="Unknown precision"):
        extract(tiny.data(), tiny.backbone(), _config(tiny, "x"))


def test_native_bf16_is_the_cpus_answer_unless_overridden_and_false_off_cpu_and_cuda(monkeypatch):
    from ptm_core.base.capabilities import capabilities

    monkeypatch.delenv("PTM_NATIVE_BF16", raising=False)
    assert fast_paths.native_bf16(CPU) is capabilities().cpu_bf16_detected
    for override, native in (("1", True), ("0", False)):
        monkeypatch.setenv("PTM_NATIVE_BF16", override)
        assert fast_paths.native_bf16(CPU) is native
        assert fast_paths.native_bf16(torch.device("meta")) is False


class _NormBeforeConv(nn.Module):
    """Registered conv-then-norm, but the norm runs first: folding would change the output."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x):
        return self.conv(self.bn(x))


def test_folding_that_would_change_the_output_is_refused():
    model = _NormBeforeConv().eval()
    kept, folded = fold_batchnorms(model, lambda m, b: m(b), (3, 8, 8))
    assert kept is model and folded == 0


def test_folding_leaves_the_original_model_untouched(tiny):
    model = load_backbone(tiny.backbone()).model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused, folded = fold_batchnorms(model, pre_logits, (3, tiny.image_size, tiny.image_size))
    assert folded > 0 and fused is not model
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


FAST = FinetuneConfig(mode="full", epochs=1, batch_size=16, image_size=32, val_size=0.2)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_finetune_runs_records_its_precision_and_throughput(tiny, one_torch_thread, precision):
    result = finetune(tiny.data(limit=120), tiny.backbone(), dataclasses.replace(FAST, precision=precision),
                      device="cpu")
    assert result.precision == precision and result.summary()["precision"] == precision
    assert all(math.isfinite(r["loss"]) for r in result.train_curve) and result.train_curve
    assert result.train_images_per_s > 0
    assert np.isfinite(result.probabilities).all() and result.probabilities.dtype == np.float32


def test_finetune_refuses_an_unknown_precision(tiny):
    with pytest.raises(PTMError, match="Unknown precision"):
        finetune(tiny.data(), tiny.backbone(), dataclasses.replace(FAST, precision="half"), device="cpu")


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PTM_DATA_DIR=str(data_dir))
    env.pop("PTM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ptm_core", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_cli_reports_the_precision_and_refuses_a_bad_one(tiny, tmp_path):
    args = ["extract", "--backbone", tiny.model, "--weights", "random", "--dataset", "digits", "--limit", "40",
            "--image-size", "32", "--out", str(tmp_path / "f.npz")]
    good = _cli(*args, "--precision", "fp32", "--json", data_dir=tmp_path / "data")
    assert good.returncode == 0, good.stderr
    summary = json.loads(good.stdout)
    assert summary["precision"] == "fp32" and summary["batchnorms_folded"] > 0
    bad = _cli(*args, "--precision", "fp16", data_dir=tmp_path / "data")
    assert bad.returncode == 2 and "invalid choice: 'fp16'" in bad.stderr and "Traceback" not in bad.stderr

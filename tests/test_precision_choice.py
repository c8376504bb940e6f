"""Precision is a fact of the run, and `auto` is the fastest correct path on this machine, whatever the machine.

Both branches run everywhere: PTM_NATIVE_BF16 makes any CPU count as one with or without native bf16 (read in
ptm_core.base.capabilities alone). Where the CPU really has native bf16, a test shows the bf16 paths are measured for
real; OpenVINO's own bf16 is tested where its plugin offers it, and skipped with the reason elsewhere.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ptm_core.models import calibration
from ptm_core.models.calibration import Pair, choose
from ptm_core.base.capabilities import capabilities
from ptm_core.base.errors import PTMError
from ptm_core.features.extraction import extract
from ptm_core.models.precision import precisions_to_try
from arrays import cosines

CPU = torch.device("cpu")
REPO_ROOT = Path(__file__).resolve().parent.parent
TORCH_FP32, TORCH_BF16 = Pair("torch", "fp32"), Pair("torch", "bf16")
OV_FP32, OV_BF16 = Pair("openvino", "fp32"), Pair("openvino", "bf16")


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def _config(tiny, **changes):
    return dataclasses.replace(tiny.extraction(), **changes)


def test_the_override_is_read_in_one_place_both_ways_and_a_bad_value_is_refused(monkeypatch):
    monkeypatch.setenv("PTM_NATIVE_BF16", "1")
    forced_on = capabilities()
    assert forced_on.native_bf16(CPU) and forced_on.override == "1" and "forced on" in forced_on.describe()
    monkeypatch.setenv("PTM_NATIVE_BF16", "0")
    forced_off = capabilities()
    assert not forced_off.native_bf16(CPU) and not forced_off.openvino_bf16
    assert forced_on.fingerprint() != forced_off.fingerprint()  # a calibration is kept per branch
    assert not forced_on.native_bf16(torch.device("meta"))
    monkeypatch.setenv("PTM_NATIVE_BF16", "yes")
    with pytest.raises(PTMError, match="PTM_NATIVE_BF16 must be 0 or 1"):
        capabilities()
    monkeypatch.delenv("PTM_NATIVE_BF16")
    assert capabilities().cpu_bf16 == capabilities().cpu_bf16_detected


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="the CPU's flags are read from Linux's /proc/cpuinfo")
def test_detection_agrees_with_the_cpus_own_flags(monkeypatch):
    monkeypatch.delenv("PTM_NATIVE_BF16", raising=False)
    flags = _cpu_flags()
    found = capabilities()
    assert set(found.cpu_flags) == flags & {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}
    assert found.cpu_bf16_detected == bool(flags & {"avx512_bf16", "amx_tile"})


@pytest.mark.skipif(not capabilities().cpu_bf16_detected, reason="this CPU has no native bf16 (AVX512_BF16 or AMX)")
def test_where_the_cpu_has_native_bf16_auto_measures_the_bf16_paths_for_real(tiny, monkeypatch, bf16_gates_open):
    monkeypatch.delenv("PTM_NATIVE_BF16", raising=False)
    assert precisions_to_try("auto", CPU) == ["fp32", "bf16"]
    run = extract(tiny.data(), tiny.backbone(), _config(tiny, precision="auto", runtime="torch"))
    rates = run.meta["path_rates"]
    assert set(rates) == {"torch fp32", "torch bf16"} and all(r > 0 for r in rates.values())
    chosen = choose({Pair(*name.split()): rate for name, rate in rates.items()})
    assert run.meta["precision"] == chosen.precision  # the rule applied to what this machine measured


def test_choose_takes_the_fastest_and_bf16_only_by_a_clear_margin():
    assert choose({TORCH_FP32: 50, OV_FP32: 270}) == OV_FP32
    assert choose({TORCH_FP32: 50, TORCH_BF16: 140}) == TORCH_BF16
    assert choose({TORCH_FP32: 100, TORCH_BF16: 105}) == TORCH_FP32  # within the margin: fp32's numbers
    assert choose({OV_FP32: 250, OV_BF16: 290, TORCH_BF16: 140}) == OV_BF16
    assert choose({TORCH_BF16: 10}) == TORCH_BF16  # an explicit bf16: the only candidate


def test_measure_alternates_and_reports_images_per_second():
    calls = []

    def run(name: str, seconds: float):
        return lambda: calls.append(name) or time.sleep(seconds)
    rates = calibration.measure({TORCH_FP32: run("a", 0.02), TORCH_BF16: run("b", 0.04)}, images_per_call=8)
    assert calls == ["a", "b"] + ["a", "b"] * calibration.ROUNDS  # a warm-up each, then alternating rounds
    assert 100 < rates[TORCH_FP32] <= 400 and 50 < rates[TORCH_BF16] <= 200 and rates[TORCH_FP32] > rates[TORCH_BF16]


def test_a_calibration_is_kept_per_machine_and_measured_again_when_the_machine_changes(monkeypatch):
    made = []

    def make_runs():
        made.append(1)
        return {TORCH_FP32: lambda: None, TORCH_BF16: lambda: time.sleep(0.001)}, 4
    monkeypatch.setenv("PTM_NATIVE_BF16", "1")
    first, how = calibration.calibrated("extract", "m", [3, 32], [TORCH_FP32, TORCH_BF16], make_runs)
    assert how == "measured" and set(first) == {TORCH_FP32, TORCH_BF16}
    again, how = calibration.calibrated("extract", "m", [3, 32], [TORCH_FP32, TORCH_BF16], make_runs)
    assert how == "cached" and again == pytest.approx(first) and len(made) == 1
    monkeypatch.setenv("PTM_NATIVE_BF16", "0")  # another machine, as far as the fingerprint goes
    _, how = calibration.calibrated("extract", "m", [3, 32], [TORCH_FP32, TORCH_BF16], make_runs)
    assert how == "measured" and len(made) == 2
    for path in (Path(p) for p in calibration.artifact_dir("calibration").glob("*.json")):
        path.write_text("{not json")
    _, how = calibration.calibrated("extract", "m", [3, 32], [TORCH_FP32, TORCH_BF16], make_runs)
    assert how == "measured" and len(made) == 3  # a damaged record is measured again, not an error


def test_fine_tuning_uses_bf16_only_where_it_measured_faster(tiny, monkeypatch, bf16_gates_open):
    from ptm_core.base.configs import FinetuneConfig
    from ptm_core.finetune.training import training_precision
    from ptm_core.models.weights import load_backbone

    model = load_backbone(tiny.backbone()).model
    config = FinetuneConfig(mode="full", image_size=32, batch_size=8)
    monkeypatch.setenv("PTM_NATIVE_BF16", "0")
    assert training_precision(model, "m", config, CPU) == ("fp32", "torch fp32 (the only candidate)")
    monkeypatch.setenv("PTM_NATIVE_BF16", "1")
    monkeypatch.setattr(calibration, "measure", lambda runs, n: {TORCH_FP32: 10.0, TORCH_BF16: 10.5})
    precision, how = training_precision(model, "m", config, CPU)
    assert precision == "fp32" and "torch bf16 10" in how  # bf16 did not pay here: fp32
    monkeypatch.setattr(calibration, "measure", lambda runs, n: {TORCH_FP32: 10.0, TORCH_BF16: 20.0})
    assert training_precision(model, "m", dataclasses.replace(config, image_size=48), CPU)[0] == "bf16"
    assert training_precision(model, "m", dataclasses.replace(config, precision="fp32"), CPU)[0] == "fp32"
    monkeypatch.setitem(calibration.AUTO_BF16, "torch", False)  # the accuracy gate closed: fp32, unmeasured
    assert training_precision(model, "m", dataclasses.replace(config, image_size=64), CPU) == (
        "fp32", "torch fp32 (the only candidate)")


@pytest.mark.slow
def test_training_calibration_really_trains_each_precision(tiny, monkeypatch, bf16_gates_open):
    """The timed calls are forward + backward in that precision, and leave the model as it was."""
    from ptm_core.base.configs import FinetuneConfig
    from ptm_core.finetune.training import training_precision
    from ptm_core.models.weights import load_backbone

    monkeypatch.setenv("PTM_NATIVE_BF16", "1")
    model = load_backbone(tiny.backbone()).model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    precision, how = training_precision(model, "m", FinetuneConfig(mode="full", image_size=32, batch_size=4), CPU)
    assert precision in ("fp32", "bf16") and "measured on this machine" in how
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO is not installed")


@needs_openvino
def test_openvino_fp32_is_compiled_as_f32_even_where_the_plugin_defaults_to_bf16(tiny):
    import openvino

    run = extract(tiny.data(limit=20), tiny.backbone(), _config(tiny, runtime="openvino"))
    default = openvino.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    assert run.meta["openvino_precision"] == "f32" and run.meta["precision"] == "fp32", default


@needs_openvino
def test_openvino_bf16_refused_where_it_cannot_run(tiny, monkeypatch):
    monkeypatch.setenv("PTM_NATIVE_BF16", "0")
    with pytest.raises(PTMError, match="OpenVINO computes bf16 only on a CPU with native bf16"):
        extract(tiny.data(), tiny.backbone(), _config(tiny, runtime="openvino", precision="bf16"))


@pytest.mark.skipif(not capabilities().openvino_bf16, reason="OpenVINO's CPU plugin offers no bf16 on this CPU")
def test_openvino_bf16_is_its_own_cache_entry_and_says_so(tiny):
    data = tiny.data(limit=40)
    fp32 = extract(data, tiny.backbone(), _config(tiny, runtime="torch"))
    torch_bf16 = extract(data, tiny.backbone(), _config(tiny, runtime="torch", precision="bf16"))
    ov_bf16 = extract(data, tiny.backbone(), _config(tiny, runtime="openvino", precision="bf16"))
    assert not ov_bf16.meta["cache_hit"] and len({fp32.key, torch_bf16.key, ov_bf16.key}) == 3
    assert (ov_bf16.meta["openvino_precision"], ov_bf16.meta["numerics"]) == ("bf16", "bf16-openvino")
    assert ov_bf16.meta["precision_label"] == "bf16, OpenVINO"
    assert cosines(ov_bf16.features, fp32.features).min() > 0.99


@needs_openvino
def test_an_openvino_entry_without_its_precision_is_computed_again(tiny):
    """Entries written before OpenVINO's precision was set may hold bf16 numbers under the fp32 key."""
    first = extract(tiny.data(limit=20), tiny.backbone(), _config(tiny, runtime="openvino"))
    path = calibration.artifact_dir("features") / f"{first.key}.npz"
    first.meta.pop("openvino_precision")
    first.to_npz(path)
    again = extract(tiny.data(limit=20), tiny.backbone(), _config(tiny, runtime="openvino"))
    assert not again.meta["cache_hit"] and again.meta["openvino_precision"] == "f32"
    assert extract(tiny.data(limit=20), tiny.backbone(), _config(tiny, runtime="openvino")).meta["cache_hit"]


@pytest.mark.slow
@needs_openvino
def test_the_cli_says_what_computed_the_features(tiny, tmp_path):
    command = [sys.executable, "-m", "ptm_core", "--data-dir", str(tmp_path / "d"), "extract", "--backbone", tiny.model,
               "--weights", "random",
               "--dataset", "digits", "--limit", "20", "--image-size", "32", "--precision", "fp32",
               "--runtime", "openvino", "--out", str(tmp_path / "f.npz"), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["precision"], summary["runtime"], summary["openvino_precision"]) == ("fp32", "openvino", "f32")
    assert summary["path_choice"] == "openvino fp32 (the only candidate)"
    assert summary["machine"] == capabilities().describe()


@pytest.mark.slow
@needs_openvino
def test_real_images_openvino_fp32_equals_pytorch_fp32(monkeypatch):
    """Bundled ImageNet weights on real MNIST digits: fp32 through OpenVINO is PyTorch's fp32 (cosine >= 0.9999)."""
    from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig

    data, backbone = DatasetConfig("mnist5k", limit=64), BackboneConfig()
    torch_run = extract(data, backbone, ExtractionConfig(96, 32, "cpu", precision="fp32", runtime="torch"))
    monkeypatch.setenv("PTM_DATA_DIR", str(Path(calibration.artifact_dir("x")).parent / "openvino-run"))
    ov_run = extract(data, backbone, ExtractionConfig(96, 32, "cpu", precision="fp32", runtime="openvino"))
    assert ov_run.meta["openvino_precision"] == "f32" and ov_run.key == torch_run.key
    assert cosines(ov_run.features, torch_run.features).min() >= 0.9999

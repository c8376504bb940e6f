"""OpenVINO as the extraction runtime: the same features as PyTorch in fp32 (its precision set, never the plugin's
default), converted once, and PyTorch when it cannot run.

`auto` chooses by measurement (ptm_core.models.calibration); tests of what happens once it has chosen OpenVINO make the
measurement say so (`openvino_measured_faster`) rather than rely on which is faster for a tiny model here."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from ptm_core.models import openvino as openvino_runtime
from ptm_core.runs.artifacts import artifact_dir
from ptm_core.base.configs import BackboneConfig
from ptm_core.base.errors import PTMError
from ptm_core.data import load_dataset
from ptm_core.features.extraction import data_config, extract, extract_features
from ptm_core.models.calibration import AUTO_BF16
from ptm_core.models.extraction_path import candidates
from ptm_core.models.precision import BatchTransform, pre_logits
from ptm_core.models.openvino import RuntimeSwitch
from ptm_core.models.weights import load_backbone
from arrays import cosines

pytest.importorskip("openvino")


@pytest.fixture
def openvino_measured_faster(monkeypatch):
    """The calibration measures OpenVINO fp32 fastest (what it does for real backbones on CPUs, not always for
    the tiny test model); every measured pair is recorded."""
    measured = []

    def measure(runs, images):
        measured.append(sorted(p.name for p in runs))
        return {p: 100.0 if p.runtime == "openvino" and p.precision == "fp32" else 10.0 for p in runs}
    monkeypatch.setattr("ptm_core.models.calibration.measure", measure)
    return measured


def _irs() -> list:
    return sorted(artifact_dir("openvino").glob("*.xml"))


@pytest.mark.slow
def test_openvino_features_equal_pytorch_under_the_same_key(tiny, tmp_path, monkeypatch):
    torch_run = extract(tiny.data(), tiny.backbone(), _with(tiny.extraction(), runtime="torch"))
    monkeypatch.setenv("PTM_DATA_DIR", str(tmp_path / "openvino-run"))
    ov_run = extract(tiny.data(), tiny.backbone(), _with(tiny.extraction(), runtime="openvino"))
    assert ov_run.key == torch_run.key  # same features to 1e-5: one cache entry
    assert torch_run.meta["runtime"] == "torch" and ov_run.meta["runtime"] == "openvino"
    assert ov_run.meta["precision_label"] == "fp32, OpenVINO" and ov_run.meta["openvino_from"] == 0
    assert ov_run.meta["openvino_precision"] == "f32"  # read back from the compiled model
    np.testing.assert_allclose(ov_run.features, torch_run.features, rtol=1e-3, atol=1e-4)
    assert cosines(ov_run.features, torch_run.features).min() > 0.9999
    assert len(_irs()) == 1


@pytest.mark.slow
def test_a_converted_model_is_reused_and_auto_uses_it_where_measured_faster(tiny, monkeypatch,
                                                                           openvino_measured_faster):
    extract(tiny.data(limit=40), tiny.backbone(), _with(tiny.extraction(), runtime="openvino"))

    def no_second_conversion(*args):
        raise AssertionError("converted twice")

    monkeypatch.setattr("openvino.frontend.pytorch.ts_decoder.TorchScriptPythonDecoder", no_second_conversion)
    again = extract(tiny.data(limit=50), tiny.backbone(), tiny.extraction())  # auto, a small run: the IR is there
    assert again.meta["runtime"] == "openvino" and len(_irs()) == 1
    assert openvino_measured_faster == [["openvino fp32", "torch fp32"]]
    assert again.meta["path_choice"].startswith("openvino fp32 (measured on this machine")
    kept = extract(tiny.data(limit=55), tiny.backbone(), tiny.extraction())
    assert kept.meta["runtime"] == "openvino" and "cached on this machine" in kept.meta["path_choice"]
    assert len(openvino_measured_faster) == 1  # measured once per machine, model and size


@pytest.mark.slow
def test_auto_stays_on_pytorch_where_it_measures_faster(tiny, monkeypatch):
    extract(tiny.data(limit=40), tiny.backbone(), _with(tiny.extraction(), runtime="openvino"))
    monkeypatch.setattr("ptm_core.models.calibration.measure",
                        lambda runs, images: {p: 50.0 if p.runtime == "torch" else 20.0 for p in runs})
    again = extract(tiny.data(limit=50), tiny.backbone(), tiny.extraction())
    assert again.meta["runtime"] == "torch" and again.meta["path_rates"] == {"torch fp32": 50.0, "openvino fp32": 20.0}


def test_the_apps_warm_up_leaves_the_default_run_nothing_to_prepare(tiny, monkeypatch, openvino_measured_faster):
    """Converted, compiled and measured ahead (and its images read): the run is on OpenVINO from its first batch."""
    from ptm_core.flows import explore
    from ptm_core.base.configs import Source

    def convert_here(backbone, identity):  # the child process's work, without its ~10 s start
        return openvino_runtime.convert(load_backbone(backbone).model, backbone.name, identity, (3, 32, 32))

    monkeypatch.setattr(openvino_runtime, "convert_in_child", convert_here)
    source = Source(tiny.data(limit=20), tiny.backbone(seed=3), tiny.extraction())
    explore.warm_up(source)
    assert len(_irs()) == 1 and openvino_runtime.compiled_runner(_irs()[0]) is not None
    threads = threading.active_count()
    run = extract(source.dataset, source.backbone, _with(source.extraction, batch_size=4))  # auto, a small run
    assert run.meta["runtime"] == "openvino" and run.meta["openvino_from"] == 0
    assert threading.active_count() == threads  # no conversion or compile started beside it
    assert len(openvino_measured_faster) == 1 and "cached" in run.meta["path_choice"]  # measured at the warm-up


@pytest.mark.slow
def test_auto_converts_nothing_for_a_small_run_and_other_weights_are_another_model(tiny):
    small = extract(tiny.data(), tiny.backbone(), tiny.extraction())
    assert small.meta["runtime"] == "torch" and _irs() == []
    cached = extract(tiny.data(), tiny.backbone(), _with(tiny.extraction(), runtime="openvino"))
    assert cached.meta["cache_hit"] and _irs() == []  # the same features, already computed
    extract(tiny.data(), tiny.backbone(seed=1), _with(tiny.extraction(), runtime="openvino"))
    extract(tiny.data(), tiny.backbone(seed=2), _with(tiny.extraction(), runtime="openvino"))
    assert len(_irs()) == 2


def test_the_switch_hands_over_at_the_next_batch_once_converted(tiny, monkeypatch):
    ready = threading.Event()
    converted = threading.Event()

    def slow_convert(backbone, identity):
        ready.wait(10)
        return "model.xml"

    runners = []

    def fake_runner(path, precision="fp32"):
        runners.append(lambda batch: np.zeros((len(batch), 4), dtype=np.float32))
        converted.set()
        return runners[-1]

    monkeypatch.setattr(openvino_runtime, "convert_in_child", slow_convert)
    monkeypatch.setattr(openvino_runtime, "runner", fake_runner)
    switch = RuntimeSwitch(torch.nn.Linear(2, 2), BackboneConfig("m", "random"), "random:0", (3, 32, 32), wait=False)
    assert switch(0) is None and switch(64) is None  # PyTorch's turn while it converts
    ready.set()
    assert converted.wait(10)
    assert switch(128) is runners[0] and switch(192) is runners[0]  # the converted model, from then on
    assert switch.from_row == 128 and switch.describe(0) == "torch+openvino" and switch.describe(128) == "openvino"


@pytest.mark.slow
def test_the_extraction_says_its_pace_will_change_until_the_switch(tiny, monkeypatch):
    ready = threading.Event()
    monkeypatch.setattr(openvino_runtime, "convert_in_child", lambda backbone, identity: ready.wait(10) and "m.xml")
    model = load_backbone(tiny.backbone()).model
    monkeypatch.setattr(openvino_runtime, "runner", lambda path, precision="fp32": lambda batch: pre_logits(
        model, batch).numpy())
    switch = RuntimeSwitch(torch.nn.Linear(2, 2), BackboneConfig("m", "random"), "random:0", (3, 32, 32), wait=False)
    dataset = load_dataset(tiny.data(limit=40))
    pending, seen = [], []

    def pace_pending(flag: bool) -> None:
        pending.append(flag)
        if len(pending) == 3:  # OpenVINO is ready from the fourth batch on
            ready.set()
            while switch.pending:
                threading.Event().wait(0.01)

    extract_features(model, dataset, BatchTransform(data_config(model, 32)), 8, torch.device("cpu"),
                     fast_forward=switch, pace_pending=pace_pending, progress=lambda f, m: seen.append(f))
    assert pending == [True, True, True, False, False, False] and switch.from_row == 24


def test_a_failed_conversion_keeps_auto_on_pytorch_and_fails_an_explicit_choice(tiny, monkeypatch):
    def broken(*args):
        raise RuntimeError("unsupported op aten::weird\nmore")

    monkeypatch.setattr(openvino_runtime, "convert", broken)
    monkeypatch.setattr(openvino_runtime, "convert_in_child", broken)
    switch = RuntimeSwitch(torch.nn.Linear(2, 2), BackboneConfig("m", "random"), "random:0", (3, 32, 32), wait=False)
    for _ in range(200):
        if switch.error:
            break
        threading.Event().wait(0.01)
    assert switch.error == "RuntimeError: unsupported op aten::weird" and switch(0) is None
    assert switch.describe(0) == "torch"
    with pytest.raises(PTMError, match="could not convert m .*aten::weird.*--runtime torch"):
        RuntimeSwitch(torch.nn.Linear(2, 2), BackboneConfig("m", "random"), "random:0", (3, 32, 32), wait=True)


@pytest.mark.slow
def test_a_background_conversion_runs_in_a_child_process_and_the_run_switches_over(tiny, monkeypatch, tmp_path,
                                                                                  openvino_measured_faster):
    monkeypatch.setattr(openvino_runtime, "WORTH_CONVERTING", 0)  # this small run is "worth" converting for
    in_child = []
    real = openvino_runtime.convert_in_child
    monkeypatch.setattr(openvino_runtime, "convert_in_child", lambda *args: in_child.append(args) or real(*args))
    features = extract(tiny.data(), tiny.backbone(), _with(tiny.extraction(), batch_size=4))
    assert len(in_child) == 1 and features.meta["runtime"] in ("torch", "torch+openvino")
    for _ in range(600):  # the run may end before the child does; its IR is kept (and compiled) for the next run
        if _irs() and openvino_runtime.compiled_runner(_irs()[0]) is not None:
            break
        threading.Event().wait(0.1)
    assert len(_irs()) == 1
    again = extract(tiny.data(limit=50), tiny.backbone(), tiny.extraction())
    assert again.meta["runtime"] == "openvino"
    monkeypatch.setenv("PTM_DATA_DIR", str(tmp_path / "torch"))
    torch_run = extract(tiny.data(limit=50), tiny.backbone(), _with(tiny.extraction(), runtime="torch"))
    assert torch_run.meta["runtime"] == "torch" and not torch_run.meta["cache_hit"]
    np.testing.assert_allclose(again.features, torch_run.features, rtol=1e-3, atol=1e-4)


def _names(config, device="cpu") -> list[str]:
    return [p.name for p in candidates(config, torch.device(device))]


def test_which_pairs_a_run_may_use(tiny, monkeypatch, bf16_gates_open):
    """The candidates follow what the machine reports (PTM_NATIVE_BF16 overrides the CPU's answer both ways)."""
    monkeypatch.setenv("PTM_NATIVE_BF16", "0")
    auto = _with(tiny.extraction(), precision="auto")
    assert _names(auto) == ["torch fp32", "openvino fp32"]
    assert _names(_with(auto, runtime="torch")) == ["torch fp32"]
    assert _names(_with(auto, precision="bf16")) == ["torch bf16"]  # explicit: runs emulated, OpenVINO cannot
    with pytest.raises(PTMError, match="OpenVINO computes bf16 only on a CPU with native bf16"):
        candidates(_with(auto, precision="bf16", runtime="openvino"), torch.device("cpu"))
    monkeypatch.setenv("PTM_NATIVE_BF16", "1")
    from ptm_core.base.capabilities import capabilities

    with_bf16 = ["torch fp32", "torch bf16", "openvino fp32"] + (["openvino bf16"] if capabilities().openvino_bf16
                                                                  else [])
    assert _names(auto) == with_bf16
    monkeypatch.setitem(AUTO_BF16, "torch", False)  # its probe lost too much in bf16: auto never uses it
    assert _names(auto) == [name for name in with_bf16 if name != "torch bf16"]
    assert _names(_with(auto, precision="bf16", runtime="torch")) == ["torch bf16"]  # asked for: kept
    monkeypatch.setitem(AUTO_BF16, "torch", True)
    assert _names(_with(auto, precision="fp32")) == ["torch fp32", "openvino fp32"]
    assert _names(_with(auto, layer="stages")) == ["torch fp32", "torch bf16"]  # OpenVINO: pre-logits only
    with pytest.raises(PTMError, match="--runtime torch for cuda"):
        candidates(_with(auto, runtime="openvino"), torch.device("cuda"))
    with pytest.raises(PTMError, match="Unknown runtime 'fast'"):
        candidates(_with(auto, runtime="fast"), torch.device("cpu"))
    monkeypatch.setattr(openvino_runtime, "available", lambda: False)
    assert _names(_with(auto, precision="fp32")) == ["torch fp32"]
    with pytest.raises(PTMError, match="pip install openvino"):
        candidates(_with(auto, runtime="openvino"), torch.device("cpu"))


def _with(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)

"""Fine-tuning on the tiny model: split, trainable sets per mode, LP-FT head, curves, stop, checkpoint."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import load_file
from sklearn.datasets import make_blobs
from torch import nn

from ptm_core.base.configs import FinetuneConfig
from ptm_core.data import load_dataset
from ptm_core.base.errors import Cancelled, PTMError
from ptm_core.finetune.finetuning import (build_model, finetune, finetune_split, finetuned_features, init_head_from_probe,
                               load_finetuned, probe_head_weights, set_trainable)
from ptm_core.probes.linear import LinearProbe, split_indices
from ptm_core.finetune.training import loss_window, make_scheduler, planned_validations, train_mode, val_interval

FAST = FinetuneConfig(mode="full", epochs=1, batch_size=16, image_size=32)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data120(tiny):
    return dataclasses.replace(tiny.data(), limit=120)


def test_split_is_the_probe_split_with_validation_carved_from_train():
    labels = np.repeat(np.arange(4), 30)
    fit, val, test = finetune_split(labels, FinetuneConfig(val_size=0.25))
    train, probe_test = split_indices(labels, 0.2, 0)
    np.testing.assert_array_equal(test, probe_test)
    np.testing.assert_array_equal(np.union1d(fit, val), train)
    assert np.intersect1d(fit, val).size == 0 and len(val) == 24
    _, no_val, _ = finetune_split(labels, FinetuneConfig(val_size=0.0))
    assert no_val.size == 0
    with pytest.raises(PTMError, match="inside"):
        finetune_split(labels, FinetuneConfig(), train_subset=test[:4])


def _trainable(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_trainable_parameters_per_mode(tiny):
    model, _ = build_model(tiny.backbone(), FAST, num_classes=10)
    assert model.get_classifier().out_features == 10
    everything = {name for name, _ in model.named_parameters()}
    for mode in ("full", "lp-ft", "scratch"):
        set_trainable(model, mode)
        assert _trainable(model) == everything
    n_blocks = len(model.blocks)
    set_trainable(model, "last-n", last_n=2)
    last = (f"blocks.{n_blocks - 2}.", f"blocks.{n_blocks - 1}.")
    expected = {n for n in everything if n.startswith(last) or n.startswith(("conv_head", "bn2", "classifier"))}
    assert _trainable(model) == expected
    assert any(n.startswith("blocks.0.") for n in everything - expected) and "conv_stem.weight" not in expected
    train_mode(model)  # frozen batch norms keep their running statistics
    assert not model.bn1.training and not model.blocks[0].training
    assert model.blocks[-1].training and model.bn2.training
    train_mode(model, freeze_bn_stats=True)  # lp-ft's default: the probe head was fit under these statistics
    assert not any(m.training for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    assert model.blocks[-1].training
    with pytest.raises(PTMError, match="last-n"):
        set_trainable(model, "last-n", last_n=n_blocks + 1)


def test_probe_head_weights_fold_the_scaler_binary_and_multiclass():
    for centers in (2, 4):
        X, y = make_blobs(n_samples=200, centers=centers, n_features=6, cluster_std=3.0, random_state=0)
        X = X * np.arange(1, 7) + 5  # unequal scales and offsets, so the scaler matters
        probe = LinearProbe(Cs=(1.0,)).fit(X, y)
        weight, bias = probe_head_weights(probe, centers)
        logits = X @ weight.T.astype(np.float64) + bias
        np.testing.assert_array_equal(logits.argmax(axis=1), probe.predict(X))
        proba = np.exp(logits - logits.max(axis=1, keepdims=True))
        np.testing.assert_allclose(proba / proba.sum(axis=1, keepdims=True), probe.predict_proba(X), atol=1e-4)


def test_lp_ft_head_reproduces_the_probe_on_frozen_features(tiny, data120):
    """Before any training step, the model with its probe-initialised head predicts what the probe does."""
    from timm.data import create_transform

    from ptm_core.features.extraction import data_config, extract

    features = extract(data120, tiny.backbone(), tiny.extraction())
    probe = LinearProbe().fit(features.features, features.labels)
    model, _ = build_model(tiny.backbone(), dataclasses.replace(FAST, mode="lp-ft"), num_classes=10)
    init_head_from_probe(model, probe, 10)
    dataset = load_dataset(data120)
    transform = create_transform(**data_config(model, tiny.image_size), is_training=False)
    with torch.inference_mode():
        logits = model.eval()(torch.stack([transform(dataset.image(i)) for i in range(len(dataset))]))
    np.testing.assert_array_equal(logits.argmax(dim=1).numpy(), probe.predict(features.features))
    np.testing.assert_allclose(logits.softmax(dim=1).numpy(), probe.predict_proba(features.features), atol=1e-3)


def test_scheduler_warms_up_then_decays():
    optimizer = torch.optim.AdamW([{"params": [nn.Parameter(torch.zeros(1))], "lr": 1e-3},
                                   {"params": [nn.Parameter(torch.zeros(1))], "lr": 1e-4}])
    scheduler = make_scheduler(optimizer, total_steps=100, warmup_fraction=0.1)
    lrs = []
    for step in range(1, 101):
        scheduler.step_update(num_updates=step)
        lrs.append([g["lr"] for g in optimizer.param_groups])
    head = np.array(lrs)[:, 0]
    assert np.all(np.diff(head[:10]) > 0) and head[9] == pytest.approx(1e-3)
    assert np.all(np.diff(head[10:]) <= 0) and head[-1] < 1e-5
    assert lrs[9][1] == pytest.approx(1e-4)  # each group follows its own base learning rate


def test_finetune_emits_curves_and_writes_a_loadable_checkpoint(tiny, data120, _isolated_data_dir):
    records = []
    config = dataclasses.replace(FAST, mode="lp-ft", epochs=2)
    result = finetune(data120, tiny.backbone(), config, on_step=records.append, device="cpu")
    train = [r for r in records if r["phase"] == "train"]
    vals = [r for r in records if r["phase"] == "validate"]
    assert records[0]["phase"] == "linear-probe" and result.lp_test_accuracy is not None
    assert {"epoch", "step", "total_steps", "train_loss", "val_accuracy", "lr_head", "lr_backbone"} <= set(train[0])
    assert [r["step"] for r in train] == list(range(1, train[-1]["total_steps"] + 1))
    total = train[-1]["total_steps"]
    assert total == 8  # 2 epochs of 4 steps: a short run validates every step (at least MIN_VALIDATIONS times)
    assert [r["step"] for r in vals] == list(range(1, total + 1))
    assert [r["epoch"] for r in vals if r["step"] % 4 == 0] == [1, 2] and all(0 <= r["val_accuracy"] <= 1 for r in vals)
    window = loss_window(total)
    for i, r in enumerate(train):  # the smoothed loss is the exact trailing mean of the raw losses
        assert r["train_loss"] == pytest.approx(np.mean([t["loss"] for t in train[max(0, i + 1 - window):i + 1]]))
    lp = [r for r in records if r["phase"] == "linear-probe"]
    assert len(lp) > 3 and lp[-1]["fraction"] == 1.0  # the probe stage reports its own moving progress
    fractions = [r["run_fraction"] for r in records]
    assert fractions == sorted(fractions) and 0 < lp[-1]["run_fraction"] < train[0]["run_fraction"] < fractions[-1] < 1
    assert [r["step"] for r in result.train_curve] == [r["step"] for r in train] and not result.stopped_early
    assert [r["val_accuracy"] for r in result.val_curve] == [r["val_accuracy"] for r in vals]
    assert result.best_epoch in (1, 2) and result.best_val_accuracy == max(r["val_accuracy"] for r in vals)
    best = next(r for r in vals if r["val_accuracy"] == result.best_val_accuracy)  # the first best is kept
    assert (result.best_step, result.best_epoch) == (best["step"], best["epoch"])
    assert result.n_train + result.n_val + result.n_test == 120 and len(result.predictions) == result.n_test
    assert result.test_accuracy == pytest.approx(np.mean(result.predictions == load_dataset(data120).labels[result.test_indices]))
    assert result.checkpoint.startswith(str(_isolated_data_dir / "checkpoints"))
    model = timm.create_model(tiny.model, num_classes=10)
    model.load_state_dict(load_file(result.checkpoint))
    loaded, meta = load_finetuned(result.checkpoint)
    assert meta["mode"] == "lp-ft" and int(meta["num_classes"]) == 10
    features = finetuned_features(result.checkpoint, data120, device="cpu")
    assert features.features.shape == (120, model.num_features)
    assert finetuned_features(result.checkpoint, data120, device="cpu").key == features.key  # cached


def test_short_runs_validate_at_least_five_times_long_runs_every_val_every_steps():
    assert val_interval(10_000, 200) == 200 and val_interval(20, 200) == 4 and val_interval(3, 200) == 1
    assert val_interval(20, 0) == 4  # val_every_steps 0: only the short-run rule
    for total, per_epoch in ((5, 5), (8, 4), (20, 20), (24, 8), (50, 10), (999, 333)):
        assert planned_validations(total, per_epoch, val_interval(total, 200)) >= 5
    assert planned_validations(12, 4, 3) == 6  # epoch ends 4, 8, 12; mid-epoch 3, 6, 9 (12 is an epoch end)
    assert loss_window(10) == 3 and loss_window(200) == 20 and loss_window(10_000) == 50


def test_stop_keeps_a_checkpoint_and_still_tests(tiny, data120):
    records = []
    stop_after = 2
    config = dataclasses.replace(FAST, mode="last-n", epochs=3)
    result = finetune(data120, tiny.backbone(), config, on_step=records.append, device="cpu",
                      cancelled=lambda: sum(r["phase"] == "train" for r in records) >= stop_after)
    assert result.stopped_early and len(result.train_curve) == stop_after
    assert len(result.val_curve) == 1  # the quick validation on stop, as none had run yet
    assert result.best_epoch == 1 and 0 <= result.test_accuracy <= 1
    model = timm.create_model(tiny.model, num_classes=10)
    model.load_state_dict(load_file(result.checkpoint))


def test_cancel_during_the_linear_probe_stage_raises(tiny, data120):
    with pytest.raises(Cancelled):
        finetune(data120, tiny.backbone(), dataclasses.replace(FAST, mode="lp-ft"), cancelled=lambda: True, device="cpu")


def test_bad_configs_are_one_line_errors(tiny, data120):
    with pytest.raises(PTMError, match="mode"):
        finetune(data120, tiny.backbone(), dataclasses.replace(FAST, mode="sideways"))
    with pytest.raises(PTMError, match="epochs"):
        finetune(data120, tiny.backbone(), dataclasses.replace(FAST, epochs=0))


def test_lp_ft_job_shows_its_probe_stage_moving_then_training(tiny, data120, monkeypatch, wait_until):
    from ptm_core.runs.jobs import DONE, JobContext, JobManager
    from ptm_core.base.configs import Source
    from ptm_core.flows.lab import LP_STAGE, run_finetune

    seen = []
    original = JobContext.progress

    def progress(ctx, fraction, message="", step_end=1.0):
        seen.append((fraction, message, step_end))
        original(ctx, fraction, message, step_end)
    monkeypatch.setattr(JobContext, "progress", progress)
    source = Source(data120, tiny.backbone(), tiny.extraction())
    job = JobManager().submit("lpft", "lpft", lambda ctx: run_finetune(source, dataclasses.replace(FAST, mode="lp-ft"), ctx))
    assert wait_until(lambda: job.finished is not None, 120.0) and job.status == DONE, job.error
    probe = [(f, e) for f, m, e in seen if m.startswith(LP_STAGE)]
    training = [f for f, m, _ in seen if m.startswith("epoch")]
    assert len({f for f, _ in probe}) > 3 and 0 < probe[-1][0] < training[0]  # it moves, and not at 0 %
    assert all(e < 1.0 for _, e in probe)  # its pace is not taken for the training's in the time left
    assert any(LP_STAGE in line for line in job.log) and any("fine-tuning: training" in line for line in job.log)

"""Fine-tuning a timm backbone on the probes' train/test split: full, last-n, lp-ft or scratch.

LP-FT (Kumar et al., 2022) first fits the linear probe on frozen features and starts the new
head from it, so fine-tuning does not begin by back-propagating a random head's gradients
into pretrained features.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import timm
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from PIL import Image
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader

from ptm_core.base.messages import M_
from ptm_core.base.files import file_sha256, write_atomically

from ptm_core.runs.artifacts import artifact_dir
from ptm_core.base.configs import (FINETUNE_MODES, BackboneConfig, DatasetConfig, ExtractionConfig, FinetuneConfig,
                              stable_hash)
from ptm_core.data import Dataset, load_dataset
from ptm_core.data.types import ItemUnreadable
from ptm_core.base import checks
from ptm_core.base.stats import accuracy_interval
from ptm_core.base.errors import Cancelled, PTMError
from ptm_core.features.extraction import (CancelFn, FeatureSet, ProgressFn, data_config, extract, extract_features,
                                 inference_model, resolve_device)
from ptm_core.models.precision import BatchTransform, check_precision
from ptm_core.finetune.progress import PROBE_FEATURES_SHARE, plan_run, probe_reporter, with_run_fraction
from ptm_core.probes.linear import LinearProbe, check_splittable, split_indices, sweep_message
from ptm_core.finetune.training import Trainer, predict_proba, training_precision
from ptm_core.models.weights import load_backbone, load_state_dict_strict

StepFn = Callable[[dict], None]


@dataclass
class FinetuneResult:
    test_accuracy: float
    best_epoch: int  # epoch whose validation was best; 0: the weights before any step
    best_val_accuracy: float | None
    train_curve: list[dict]  # one dict per step: epoch, step, train_loss (trailing mean), loss (raw), lr_head, ...
    val_curve: list[dict]  # one dict per validation: epoch, step, val_accuracy
    seconds: float
    checkpoint: str
    stopped_early: bool
    n_train: int
    n_val: int
    n_test: int
    test_indices: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray
    lp_test_accuracy: float | None = None  # lp-ft only: the initial probe head on the test split
    lp_predictions: np.ndarray | None = None  # lp-ft only: that head's prediction of each test image
    test_labels: np.ndarray | None = None  # the true class of each test image (for paired tests)
    best_step: int = 0  # step of the kept weights (validations also run mid-epoch)
    config: dict = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # the dataset's unusable files, with reasons
    precision: str = "fp32"  # the one that ran (config.precision resolved on this device)
    train_images_per_s: float | None = None  # the training loop (loading + steps): no validation, test or checkpoint
    precision_choice: str = ""  # how `precision` was chosen: the only candidate, or measured img/s of each

    def summary(self) -> dict:
        keys = ("test_accuracy", "best_epoch", "best_step", "best_val_accuracy", "seconds", "checkpoint", "stopped_early",
                "n_train", "n_val", "n_test", "lp_test_accuracy", "config", "precision", "train_images_per_s",
                "precision_choice")
        return ({k: getattr(self, k) for k in keys} | {"test_accuracy_ci95": list(self.test_accuracy_ci95)}
                | {"steps": len(self.train_curve), "val_curve": self.val_curve})

    @property
    def test_accuracy_ci95(self) -> tuple[float, float]:
        """Wilson's 95 % interval of `test_accuracy` on these n_test images."""
        return accuracy_interval(self.test_accuracy, self.n_test)


def finetune_split(labels: np.ndarray, config: FinetuneConfig,
                   train_subset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fit, val, test): the probes' train/test split, validation carved from train (or from train_subset)."""
    train, test = split_indices(labels, config.test_size, config.split_seed)
    if train_subset is not None:
        train_subset = np.sort(np.asarray(train_subset, dtype=np.int64))
        if not np.isin(train_subset, train).all():
            raise PTMError("The fine-tuning subset must lie inside the probes' train split.")
        train = train_subset
    if config.val_size <= 0:
        return train, np.array([], dtype=np.int64), test
    check_splittable(labels[train], config.val_size, "train/validation")
    fit, val = train_test_split(train, test_size=config.val_size, stratify=labels[train], random_state=config.split_seed)
    return np.sort(fit), np.sort(val), test


def block_groups(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Top-level blocks in forward order: efficientnet/vit `blocks`, convnext `stages`, swin `layers`, resnet layerN."""
    for attr in ("blocks", "stages", "layers"):
        container = getattr(model, attr, None)
        if isinstance(container, (nn.Sequential, nn.ModuleList)) and len(container):
            return [(f"{attr}.{i}", module) for i, module in enumerate(container)]
    layers = [(name, module) for name, module in model.named_children() if re.fullmatch(r"layer\d+", name)]
    if layers:
        return layers
    raise PTMError(f"last-n fine-tuning cannot find the blocks of {type(model).__name__}; use full or lp-ft.")


def set_trainable(model: nn.Module, mode: str, last_n: int = 2) -> list[str]:
    """Set requires_grad for `mode`; returns the names of the trainable parameters.

    last-n trains the last N block groups, everything after them (e.g. conv_head, final norm)
    and the classifier. Parameters are registered in forward order in timm models, so "from the
    first parameter of block -N on" is exactly that set.
    """
    if mode not in FINETUNE_MODES:
        raise PTMError(f"Unknown fine-tuning mode '{mode}'; use one of {', '.join(FINETUNE_MODES)}.")
    if mode != "last-n":
        model.requires_grad_(True)
        return [name for name, _ in model.named_parameters()]
    groups = block_groups(model)
    if not 1 <= last_n <= len(groups):
        raise PTMError(f"--last-n must be between 1 and {len(groups)} for {type(model).__name__}, got {last_n}.")
    first = groups[-last_n][0] + "."
    head = {id(p) for p in model.get_classifier().parameters()}
    reached = False
    for name, param in model.named_parameters():
        reached = reached or name.startswith(first)
        param.requires_grad_(reached or id(param) in head)
    return [name for name, param in model.named_parameters() if param.requires_grad]


def probe_head_weights(probe: LinearProbe, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight C x D, bias C) of one Linear equal to the probe's StandardScaler + LogisticRegression.

    logits = W (x - mu) / sigma + b = (W / sigma) x + (b - (W / sigma) mu).
    """
    scaler, logreg = probe.pipeline_[0], probe.pipeline_[-1]
    coef = logreg.coef_ / scaler.scale_
    bias = logreg.intercept_ - coef @ scaler.mean_
    if coef.shape[0] == 1:  # binary: sklearn's one score s is the softmax of logits (0, s)
        coef, bias = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, bias[0]])
    weight = np.zeros((num_classes, coef.shape[1]))
    full_bias = np.full(num_classes, bias.min() - 10.0)  # classes the probe never saw: never predicted
    weight[probe.classes_], full_bias[probe.classes_] = coef, bias
    return weight.astype(np.float32), full_bias.astype(np.float32)


def init_head_from_probe(model: nn.Module, probe: LinearProbe, num_classes: int) -> None:
    head = model.get_classifier()
    if not isinstance(head, nn.Linear):
        raise PTMError(f"lp-ft needs a linear classifier; {type(model).__name__} has {type(head).__name__}.")
    weight, bias = probe_head_weights(probe, num_classes)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))


def build_model(backbone_config: BackboneConfig, config: FinetuneConfig, num_classes: int) -> tuple[nn.Module, str]:
    """The backbone with a fresh `num_classes` head (seeded), and its weights' identity."""
    source = dataclasses.replace(backbone_config, weights="random") if config.mode == "scratch" else backbone_config
    loaded = load_backbone(source)
    torch.manual_seed(config.seed)
    loaded.model.reset_classifier(num_classes)
    return loaded.model, loaded.identity


def fit_probe_head(model: nn.Module, dataset_config: DatasetConfig, backbone_config: BackboneConfig,
                   config: FinetuneConfig, fit: np.ndarray, test: np.ndarray, device: str,
                   cancelled: CancelFn | None = None, progress: ProgressFn | None = None) -> np.ndarray:
    """LP stage of LP-FT: probe the frozen (cached) features of `fit`, copy it into the head; returns its predictions
    of the `test` images (so that the frozen probe and the adapted network can be compared image by image).

    `progress(fraction, message)` follows the extraction (up to PROBE_FEATURES_SHARE) and then the probe's C sweep.
    """
    report = progress or (lambda fraction, message="": None)
    share = PROBE_FEATURES_SHARE
    features = extract(dataset_config, backbone_config,
                       ExtractionConfig(config.image_size, config.batch_size, device, precision=config.precision),
                       progress=lambda f, m="": report(share * f, M_("features for the probe: {step}", step=m)),
                       cancelled=cancelled)
    # The head LP-FT starts from is the best fit on validation (argmax), not the one-SE rule's smallest C: on
    # separable data that rule keeps shrinking C (to 1e-6), and a near-zero head is no head start at all.
    probe = LinearProbe(random_state=config.split_seed, c_rule="best").fit(
        features.features[fit], features.labels[fit], cancelled=cancelled,
        callback=lambda done, total: report(share + (1 - share) * done / total, sweep_message(done, total)))
    init_head_from_probe(model, probe, model.get_classifier().out_features)
    return probe.predict(features.features[test])


class TrainingImages(torch.utils.data.Dataset):
    def __init__(self, dataset: Dataset, indices: np.ndarray, transform):
        self.dataset, self.indices, self.transform = dataset, indices, transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        j = int(self.indices[i])
        try:
            image = self.dataset.image(j, getattr(self.transform, "resize_side", None))
        except ItemUnreadable as exc:
            # As in extraction: one file that went bad since loading (or would resize too large) must not end
            # the run; a blank stand-in keeps the test rows aligned, and the result lists it as skipped.
            self.dataset.unreadable[j] = exc.reason
            image = Image.new("RGB", (32, 32))
        return self.transform(image), int(self.dataset.labels[j])


def _loader(dataset: Dataset, indices: np.ndarray, transform, batch_size: int, seed: int | None = None) -> DataLoader:
    # num_workers=0: jobs run on threads inside the app's server process, where worker processes misbehave.
    shuffle = seed is not None
    return DataLoader(TrainingImages(dataset, indices, transform), batch_size=batch_size, shuffle=shuffle, num_workers=0,
                      collate_fn=getattr(transform, "collate", None),  # a BatchTransform normalises per batch
                      drop_last=shuffle and len(indices) > batch_size,  # a batch of one breaks batch norm
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)


def save_checkpoint(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """safetensors written to a temp file and renamed, so a reader never sees half a checkpoint."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:  # a diverged run must never leave a "best" checkpoint behind
        raise PTMError(f"Training produced non-finite weights ({bad[0]}); nothing was saved. Lower the learning rates.")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: save_file({k: v.contiguous() for k, v in state.items()}, tmp,
                                                 metadata=metadata))
    return path


def load_finetuned(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """A fine-tuned model (eval mode) and its metadata from a checkpoint written by `finetune`."""
    path = Path(path)
    if not path.is_file():
        raise PTMError(f"Checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception as exc:  # SafetensorError, a damaged header
        raise PTMError(f"{path.name} is not a readable safetensors checkpoint ({type(exc).__name__}); "
                       f"fine-tune again to write a new one.") from None
    if "architecture" not in meta or not str(meta.get("num_classes", "")).isdecimal():
        raise PTMError(f"{path.name} is not a PTM Explorer fine-tuning checkpoint (no architecture or class count "
                       f"in its metadata).")
    model = timm.create_model(meta["architecture"], pretrained=False, num_classes=int(meta["num_classes"]))
    load_state_dict_strict(model, load_file(str(path)), path.name)
    return model.eval(), meta


def finetuned_features(checkpoint: str | os.PathLike, dataset_config: DatasetConfig, batch_size: int = 64,
                       device: str = "auto", progress: ProgressFn | None = None,
                       cancelled: CancelFn | None = None) -> FeatureSet:
    """Pooled pre-logit features of a dataset under fine-tuned weights (cached), for before/after drift maps."""
    model, meta = load_finetuned(checkpoint)
    dataset = load_dataset(dataset_config)
    cfg = data_config(model, int(meta["image_size"]))
    key = stable_hash(["finetuned", file_sha256(Path(checkpoint)), dataset.fingerprint, int(meta["image_size"])])
    path = artifact_dir("features") / f"{key}.npz"
    cached = FeatureSet.from_npz(path, key)
    if cached is not None:
        return cached
    model, _ = inference_model(model, cfg["input_size"])
    features = extract_features(model, dataset, BatchTransform(cfg), batch_size, resolve_device(device), progress,
                                cancelled)
    result = FeatureSet(features, dataset.labels, dataset.class_names, dataset.ids, key,
                        {"key": key, "checkpoint": str(checkpoint), "finetune_mode": meta.get("mode")})
    result.to_npz(path)
    return result


def check_config(config: FinetuneConfig) -> None:
    if config.mode not in FINETUNE_MODES:
        raise PTMError(f"Unknown fine-tuning mode '{config.mode}'; use one of {', '.join(FINETUNE_MODES)}.")
    check_precision(config.precision)
    checks.whole("--epochs", config.epochs, 1, checks.MAX_EPOCHS)
    checks.whole("--batch-size", config.batch_size, 1, checks.MAX_BATCH)
    checks.image_size(config.image_size)
    if not 0 <= config.val_size < 1 or not 0 <= config.warmup_fraction < 1:
        raise PTMError("val_size and warmup_fraction must lie in [0, 1).")
    checks.number("head learning rate (--lr-head)", config.lr_head, 0, 10, lo_open=True)
    checks.number("backbone learning rate (--lr-backbone)", config.lr_backbone, 0, 10)
    checks.number("weight decay", config.weight_decay, 0, 10)
    checks.seed("seed (--seed)", config.seed)
    checks.seed("split seed", config.split_seed)


def finetune(dataset_config: DatasetConfig, backbone_config: BackboneConfig, config: FinetuneConfig = FinetuneConfig(),
             on_step: StepFn | None = None, cancelled: CancelFn | None = None, *, device: str = "auto",
             train_subset: np.ndarray | None = None) -> FinetuneResult:
    """Fine-tune on the probes' train split, keep the best-on-validation weights, evaluate once on test.

    `cancelled()` turning true stops training early: the best weights so far are kept (validating
    the current ones if no validation ran yet) and still tested. Cancelling during the LP stage of
    lp-ft raises Cancelled, as there is nothing trained to keep yet.

    `on_step(record)` gets a dict after every optimiser step ("phase": "train": epoch, step,
    total_steps, train_loss (trailing mean of `loss`), loss (this step's), lr_head, lr_backbone,
    elapsed_s, val_accuracy (latest or None), best_val_accuracy), after every validation ("phase":
    "validate", with a new val_accuracy), and as the LP stage of lp-ft goes ("phase": "linear-probe",
    fraction of that stage, message). Every record has run_fraction: the whole run's progress.
    `train_subset` (indices inside the probes' train split) trains on fewer labels.
    """
    check_config(config)
    started = time.perf_counter()
    dataset = load_dataset(dataset_config)
    fit, val, test = finetune_split(dataset.labels, config, train_subset)
    model, identity = build_model(backbone_config, config, len(dataset.class_names))
    train_tf, eval_tf = _transforms(data_config(model, config.image_size), config.augment)
    train_loader = _loader(dataset, fit, train_tf, config.batch_size, config.seed)
    plan = plan_run(lp_ft=config.mode == "lp-ft", n_images=len(dataset), batch_size=config.batch_size,
                    steps_per_epoch=len(train_loader), epochs=config.epochs, n_val=len(val), n_test=len(test),
                    val_every_steps=config.val_every_steps)
    lp_predictions = None
    if config.mode == "lp-ft":
        lp_predictions = fit_probe_head(model, dataset_config, backbone_config, config, fit, test, device, cancelled,
                                     progress=probe_reporter(on_step, plan))
        if cancelled is not None and cancelled():
            raise Cancelled()
    set_trainable(model, config.mode, config.last_n)
    torch_device = resolve_device(device)
    precision, precision_choice = training_precision(model, backbone_config.name, config, torch_device)
    trainer = Trainer(model, config, torch_device, train_loader,
                      _loader(dataset, val, eval_tf, config.batch_size) if len(val) else None,
                      with_run_fraction(on_step, plan), cancelled, precision=precision)
    trainer.run()
    probabilities = predict_proba(model, _loader(dataset, test, eval_tf, config.batch_size), torch_device,
                                  precision=precision)
    predictions = np.argmax(probabilities, axis=1)
    subset_key = None if train_subset is None else fit.tolist()
    key = stable_hash(["finetune", dataset.fingerprint, identity, backbone_config.name, config.key(), subset_key,
                       precision])
    checkpoint = save_checkpoint(artifact_dir("checkpoints") / f"{key}.safetensors", trainer.best_state,
                                 _checkpoint_metadata(backbone_config.name, dataset, config, identity))
    return FinetuneResult(
        test_accuracy=float(np.mean(predictions == dataset.labels[test])), best_epoch=trainer.best_epoch,
        best_val_accuracy=trainer.best_val, train_curve=trainer.train_curve, val_curve=trainer.val_curve,
        seconds=time.perf_counter() - started, checkpoint=str(checkpoint), stopped_early=trainer.stopped_early,
        n_train=len(fit), n_val=len(val), n_test=len(test), test_indices=test, predictions=predictions,
        probabilities=probabilities, lp_predictions=lp_predictions,
        lp_test_accuracy=None if lp_predictions is None else float(np.mean(lp_predictions == dataset.labels[test])),
        test_labels=dataset.labels[test], best_step=trainer.best_step, config=config.to_dict(),
        skipped=list(dataset.skipped) + [(dataset.ids[i], r) for i, r in sorted(dataset.unreadable.items())],
        precision=precision, train_images_per_s=trainer.images_per_s(),
        precision_choice=precision_choice)


def _transforms(cfg: dict, augment: bool) -> tuple:
    """(train, eval) batch transforms: random resized crop and flip for training when `augment`."""
    eval_tf = BatchTransform(cfg)
    if not augment:
        return eval_tf, eval_tf
    return BatchTransform(cfg, is_training=True, scale=(0.5, 1.0), hflip=0.5, color_jitter=None), eval_tf


def _checkpoint_metadata(architecture: str, dataset: Dataset, config: FinetuneConfig, identity: str) -> dict[str, str]:
    return {"architecture": architecture, "num_classes": str(len(dataset.class_names)),
            "class_names": json.dumps(dataset.class_names), "image_size": str(config.image_size),
            "mode": config.mode, "config": json.dumps(config.to_dict()), "weights": identity}

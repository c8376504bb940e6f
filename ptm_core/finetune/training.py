"""The fine-tuning loop: AdamW with head/backbone learning rates, per-step warm-up + cosine, best-on-val weights."""
from __future__ import annotations

import copy
import functools
import time
from collections import deque
from typing import Callable

import numpy as np
import torch
from timm.scheduler import CosineLRScheduler
from torch import nn
from torch.utils.data import DataLoader

from ptm_core.models import calibration
from ptm_core.models.calibration import Pair
from ptm_core.base.configs import FinetuneConfig
from ptm_core.base.errors import PTMError
from ptm_core.models.precision import autocast, precisions_to_try

StepFn = Callable[[dict], None]
CancelFn = Callable[[], bool]
MIN_VALIDATIONS = 5  # a short run validates this often, so even one epoch draws a validation curve


def loss_window(total_steps: int) -> int:
    """Steps in the trailing mean of the reported train loss: a tenth of the run, 3 to 50 steps."""
    return int(np.clip(total_steps // 10, 3, 50))


def planned_validations(total_steps: int, steps_per_epoch: int, interval: int) -> int:
    """Validations a full run makes: one per epoch, plus one every `interval` steps that is not an epoch end."""
    mid = sum(1 for s in range(interval, total_steps + 1, interval) if s % max(steps_per_epoch, 1) != 0)
    return total_steps // max(steps_per_epoch, 1) + mid


def val_interval(total_steps: int, val_every_steps: int) -> int:
    """Steps between validations: every `val_every_steps`, or more often when that gives under MIN_VALIDATIONS."""
    short = max(1, total_steps // MIN_VALIDATIONS)
    return min(val_every_steps, short) if val_every_steps else short


def make_optimizer(model: nn.Module, config: FinetuneConfig) -> torch.optim.AdamW:
    """Two groups: the classifier at lr_head, every other trainable parameter at lr_backbone."""
    head = {id(p) for p in model.get_classifier().parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) in head], "lr": config.lr_head, "name": "head"},
              {"params": [p for p in trainable if id(p) not in head], "lr": config.lr_backbone, "name": "backbone"}]
    return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float) -> CosineLRScheduler:
    """Linear warm-up over the first steps, then cosine to zero, updated every step (not per epoch)."""
    warmup = int(round(warmup_fraction * total_steps))
    return CosineLRScheduler(optimizer, t_initial=max(total_steps - warmup, 1), warmup_t=warmup,
                             warmup_lr_init=1e-7, warmup_prefix=True, t_in_epochs=False)


def training_precision(model: nn.Module, model_name: str, config: FinetuneConfig,
                       device: torch.device) -> tuple[str, str]:
    """The precision fine-tuning runs in, and how it was chosen (for the result and the UI).

    An explicit one is kept. For 'auto' on hardware with native bf16, a few training steps in each (forward and
    backward on a copy of `model`, trainable parts as set) are timed, once per machine, model, size and mode:
    bf16 autocast pays on some machines and not on others (on a 2-core AVX512_BF16 EPYC it trained no faster).
    """
    pairs = [Pair("torch", precision) for precision in precisions_to_try(config.precision, device)]
    if len(pairs) == 1:
        return pairs[0].precision, calibration.describe({}, pairs[0], "")
    shape = [config.image_size, min(config.batch_size, TRAINING_CALIBRATION_BATCH), config.mode, config.last_n]
    rates, how = calibration.calibrated("train", model_name, shape, pairs,
                                        functools.partial(_training_runs, model, config, device, pairs))
    chosen = calibration.choose(rates)
    return chosen.precision, calibration.describe(rates, chosen, how)


TRAINING_CALIBRATION_BATCH = 16


def _training_runs(model: nn.Module, config: FinetuneConfig, device: torch.device,
                   pairs: list[Pair]) -> tuple[dict[Pair, Callable], int]:
    probe = copy.deepcopy(model).to(device=device, memory_format=torch.channels_last).train()
    n = min(config.batch_size, TRAINING_CALIBRATION_BATCH)
    images = torch.randn(n, 3, config.image_size, config.image_size, generator=torch.Generator().manual_seed(0))
    images = images.to(device).contiguous(memory_format=torch.channels_last)
    labels = torch.zeros(n, dtype=torch.int64, device=device)

    def step(precision: str) -> None:
        with autocast(precision, device):
            loss = nn.functional.cross_entropy(probe(images).float(), labels)
        loss.backward()
        probe.zero_grad(set_to_none=True)
        float(loss.detach())  # waits for a GPU's work, so the timing holds all of it
    return {pair: functools.partial(step, pair.precision) for pair in pairs}, n


def predict_proba(model: nn.Module, loader: DataLoader, device: torch.device,
                  cancelled: CancelFn | None = None, precision: str = "fp32") -> np.ndarray | None:
    """Softmax outputs in loader order; None when `cancelled` turns true part-way."""
    model.eval()
    out = []
    with torch.inference_mode(), autocast(precision, device):
        for images, _ in loader:
            if cancelled is not None and cancelled():
                return None
            images = images.to(device).contiguous(memory_format=torch.channels_last)
            out.append(model(images).float().softmax(dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def train_mode(model: nn.Module, freeze_bn_stats: bool = False) -> None:
    """model.train(), but fully frozen parts (and with `freeze_bn_stats`, every batch norm) stay in eval mode.

    Their batch norms keep the pretrained running statistics (train mode would overwrite them
    with this dataset's batch statistics), and their dropout / drop-path stays off.
    """
    model.train()
    for module in model.modules():
        params = list(module.parameters())
        frozen = bool(params) and not any(p.requires_grad for p in params)
        if frozen or (freeze_bn_stats and isinstance(module, nn.modules.batchnorm._BatchNorm)):
            module.eval()


def _cpu_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class Trainer:
    """Runs the epochs; afterwards `model` holds the best weights (by validation accuracy, else the last)."""

    def __init__(self, model: nn.Module, config: FinetuneConfig, device: torch.device, train_loader: DataLoader,
                 val_loader: DataLoader | None, on_step: StepFn | None = None, cancelled: CancelFn | None = None,
                 precision: str = "fp32"):
        self.model = model.to(device=device, memory_format=torch.channels_last)
        self.config, self.device, self.on_step, self.cancelled = config, device, on_step, cancelled
        self.precision = precision  # resolved: fp32, or bf16 autocast (no loss scaling needed, unlike fp16)
        self.train_seconds, self.train_images = 0.0, 0  # the training loop (loading + steps, no validation)
        self.freeze_bn_stats = config.mode == "lp-ft" if config.freeze_bn_stats is None else config.freeze_bn_stats
        self.train_loader, self.val_loader = train_loader, val_loader
        self.steps_per_epoch = len(train_loader)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.optimizer = make_optimizer(model, config)
        self.scheduler = make_scheduler(self.optimizer, self.total_steps, config.warmup_fraction)
        self.loss_fn = nn.CrossEntropyLoss()
        self.train_curve: list[dict] = []
        self.val_curve: list[dict] = []
        self.best_val: float | None = None
        self.best_epoch = 0
        self.best_step = 0  # validations run mid-epoch too, so the epoch alone does not say which weights
        self.best_state: dict[str, torch.Tensor] = {}
        self.stopped_early = False
        self.step, self.epoch = 0, 0
        # A trailing mean is exact from the first step; a bias-corrected EMA over-weights the first,
        # high losses of warm-up, which showed as a rise of the smoothed curve.
        self._recent_losses: deque[float] = deque(maxlen=loss_window(self.total_steps))
        self.val_interval = val_interval(self.total_steps, config.val_every_steps)
        self._started = time.perf_counter()

    def _emit(self, record: dict) -> None:
        if self.on_step is not None:
            self.on_step(dict(record, total_steps=self.total_steps, elapsed_s=time.perf_counter() - self._started,
                              val_accuracy=self.val_curve[-1]["val_accuracy"] if self.val_curve else None,
                              best_val_accuracy=self.best_val))

    def _stop_requested(self) -> bool:
        return self.cancelled is not None and bool(self.cancelled())

    def images_per_s(self) -> float | None:
        return self.train_images / self.train_seconds if self.train_seconds > 0 else None

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        images = images.to(self.device).contiguous(memory_format=torch.channels_last)
        with autocast(self.precision, self.device):
            loss = self.loss_fn(self.model(images).float(), labels.to(self.device))
        if not torch.isfinite(loss):
            raise PTMError(f"Training diverged at step {self.step + 1} (loss {loss.item()}); lower the learning rates.")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        self.scheduler.step_update(num_updates=self.step)
        return float(loss.item())

    def _train_epoch(self) -> bool:
        """One pass over the training data; False when stopped."""
        train_mode(self.model, self.freeze_bn_stats)
        tick = time.perf_counter()  # throughput counts loading + step, as a plain loop's would; not validation
        for images, labels in self.train_loader:
            if self._stop_requested():
                return False
            lrs = {f"lr_{g['name']}": g["lr"] for g in self.optimizer.param_groups}
            loss = self._train_step(images, labels)
            self.train_seconds += time.perf_counter() - tick
            self.train_images += len(images)
            self._recent_losses.append(loss)
            record = {"phase": "train", "epoch": self.epoch, "step": self.step, "loss": loss,
                      "train_loss": float(np.mean(self._recent_losses)), **lrs}
            self.train_curve.append(record)
            self._emit(record)
            if (self.val_loader is not None and self.step % self.val_interval == 0
                    and self.step % self.steps_per_epoch != 0):  # the end-of-epoch validation follows anyway
                if not self.validate():
                    return False
                train_mode(self.model, self.freeze_bn_stats)
            tick = time.perf_counter()
        return True

    def validate(self, cancellable: bool = True) -> bool:
        """Score the current weights on validation and keep them if best; False when stopped part-way."""
        probabilities = predict_proba(self.model, self.val_loader, self.device, self.cancelled if cancellable else None,
                                      self.precision)
        if probabilities is None:
            return False
        images = self.val_loader.dataset
        accuracy = float(np.mean(np.argmax(probabilities, axis=1) == images.dataset.labels[images.indices]))
        epoch = self.epoch if self.step else 0
        record = {"phase": "validate", "epoch": epoch, "step": self.step, "val_accuracy": accuracy}
        self.val_curve.append(record)
        if self.best_val is None or accuracy > self.best_val:
            self.best_val, self.best_epoch, self.best_state = accuracy, epoch, _cpu_copy(self.model)
            self.best_step = self.step
        self._emit(record)
        return True

    def run(self) -> None:
        for epoch in range(1, self.config.epochs + 1):
            self.epoch = epoch
            if not self._train_epoch() or (self.val_loader is not None and not self.validate()):
                self.stopped_early = True
                break
        if self.val_loader is None:
            self.best_epoch, self.best_state = (self.epoch if self.step else 0), _cpu_copy(self.model)
            self.best_step = self.step
        elif self.best_val is None:  # stopped before any validation: score what there is
            self.validate(cancellable=False)
        self.model.load_state_dict(self.best_state)

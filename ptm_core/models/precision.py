"""What makes inference and training fast without changing results: batched preprocessing, folded batch norms,
and bf16 autocast where the hardware runs bf16 natively.

Per-image ToTensor + Normalize cost as much as the forward on a busy machine (small tensor ops pay the thread
pool's start-up each time); one batched normalisation does not. Folding each eval batch norm into the
convolution before it skips a memory pass per layer (features equal to 1e-5). bf16 autocast is emulated by
oneDNN without AVX512_BF16/AMX, several times slower than fp32: which precision a run uses is measured
(ptm_core/models/calibration.py) among those the hardware runs natively (ptm_core/base/capabilities.py).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math

import numpy as np
import torch
from timm.data import create_transform
from timm.layers import BatchNormAct2d
from torch import nn

from ptm_core.models.calibration import AUTO_BF16
from ptm_core.base.capabilities import capabilities
from ptm_core.base.configs import PRECISIONS
from ptm_core.base.errors import PTMError

log = logging.getLogger(__name__)
PRECISION_LABELS = {"fp32": "fp32", "bf16": "bf16 autocast"}  # PyTorch's; OpenVINO's say "fp32/bf16, OpenVINO"


def check_precision(name: str) -> str:
    if name not in PRECISIONS:
        raise PTMError(f"Unknown precision '{name}'; use one of {', '.join(PRECISIONS)}.")
    return name


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware (see ptm_core.base.capabilities, and its PTM_NATIVE_BF16 override)."""
    return capabilities().native_bf16(device)


def resolve_precision(name: str, device: torch.device) -> str:
    """For work on machines this process cannot measure (a Ray cluster's workers): 'auto' is fp32 there (bf16
    pays on some hardware and is emulated, slowly, on other); an explicit choice is kept.

    An explicit bf16 on hardware without it still runs (slowly, emulated), so features made on a
    bf16 machine can be reproduced anywhere; it is logged.
    """
    check_precision(name)
    if name == "auto":
        return "fp32"
    if name == "bf16" and not native_bf16(device):
        log.warning("bf16 asked for on %s without native bf16: emulated, expect it slower than fp32", device)
    return name


def precisions_to_try(name: str, device: torch.device, runtime: str = "torch") -> list[str]:
    """The precisions a run on `runtime` may use: an explicit one, or for 'auto' fp32 and, where `device` runs bf16
    natively and the runtime's accuracy gate allows it (calibration.AUTO_BF16), bf16 too; calibration picks."""
    if name != "auto":
        return [resolve_precision(name, device)]  # checked, and logged where bf16 runs emulated
    return ["fp32", "bf16"] if AUTO_BF16.get(runtime, False) and native_bf16(device) else ["fp32"]


@torch.inference_mode()
def pre_logits(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The features a backbone gives: its pooled pre-logit vector, as float32."""
    return model.forward_head(model.forward_features(batch), pre_logits=True).flatten(1).float()


def autocast(precision: str, device: torch.device):
    """bf16 autocast for 'bf16' (matmuls and convolutions in bf16, reductions in fp32); nothing for 'fp32'."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resize_side(cfg: dict) -> int:
    """The most that timm's eval transform for `cfg` scales an image's shorter side to (input / crop_pct):
    what bounds the pixels a resize makes; a training crop is resized to the input size, which is less."""
    return math.floor(max(cfg["input_size"][1:]) / (cfg.get("crop_pct") or 0.875))


class BatchTransform:
    """timm's preprocessing split the way its own PrefetchLoader splits it: per image, the PIL resize/crop
    (or random crop/flip) ending in a uint8 tensor (`use_prefetcher=True`); per batch, one float conversion
    and normalisation, laid out channels-last. Same values as the standard transform up to float rounding."""

    def __init__(self, cfg: dict, is_training: bool = False, **train_options):
        self.image_transform = create_transform(**cfg, is_training=is_training, use_prefetcher=True, **train_options)
        self.resize_side = resize_side(cfg)
        self.mean = torch.tensor([255 * m for m in cfg["mean"]]).view(1, -1, 1, 1)
        self.std = torch.tensor([255 * s for s in cfg["std"]]).view(1, -1, 1, 1)

    def __call__(self, image) -> torch.Tensor:
        return torch.as_tensor(np.asarray(self.image_transform(image)))

    def stack(self, images: list[torch.Tensor], device: torch.device | None = None) -> torch.Tensor:
        """N x C x H x W float32 (channels-last), normalised; uint8 travels to `device` first (4x less to copy)."""
        batch = torch.stack(images)
        if device is not None:
            batch = batch.to(device)
        batch = batch.to(dtype=torch.float32, memory_format=torch.channels_last)
        return batch.sub_(self.mean.to(batch.device)).div_(self.std.to(batch.device))

    def collate(self, samples: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """DataLoader collate_fn for (image, label) samples."""
        images, labels = zip(*samples)
        return self.stack(list(images)), torch.tensor(labels, dtype=torch.int64)


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    # Exact types only: a batch-norm subclass with its own forward could do more than normalise and act.
    return (isinstance(conv, nn.Conv2d) and type(norm) in (nn.BatchNorm2d, BatchNormAct2d)
            and norm.track_running_stats and norm.running_mean is not None
            and conv.out_channels == norm.num_features)


def _foldable_pairs(model: nn.Module) -> list[tuple[nn.Module, str, str]]:
    """(parent, conv name, norm name) for every Conv2d directly followed, as siblings, by its batch norm."""
    pairs = []
    for parent in model.modules():
        children = list(parent.named_children())
        pairs += [(parent, conv_name, norm_name) for (conv_name, conv), (norm_name, norm) in zip(children, children[1:])
                  if _foldable(conv, norm)]
    return pairs


def _fold(parent: nn.Module, conv_name: str, norm_name: str) -> None:
    norm = getattr(parent, norm_name)
    setattr(parent, conv_name, torch.nn.utils.fusion.fuse_conv_bn_eval(getattr(parent, conv_name), norm))
    rest = nn.Sequential(norm.drop, norm.act) if isinstance(norm, BatchNormAct2d) else nn.Identity()
    setattr(parent, norm_name, rest)  # what the norm did after normalising stays


def check_finite_weights(state: dict[str, torch.Tensor], source: str) -> None:
    """One line when a checkpoint holds NaN or infinite weights: every feature would be NaN."""
    bad = [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise PTMError(f"{source} holds NaN or infinite weights ({len(bad)} tensor(s), e.g. {bad[0]}); no features "
                       f"can be computed from it. Use another checkpoint.")


@torch.no_grad()
def fold_batchnorms(model: nn.Module, forward, input_size: tuple[int, ...]) -> tuple[nn.Module, int]:
    """An eval-mode copy of `model` with batch norms folded into their convolutions, and how many were.

    Sibling order stands in for data flow (timm registers modules in forward order), so the copy is
    checked against the original on a random batch through `forward(model, batch)`; if they differ,
    the original is returned unchanged with 0.
    """
    if not _foldable_pairs(model):  # a transformer, say: no copy needed
        return model, 0
    fused = copy.deepcopy(model).eval()
    pairs = _foldable_pairs(fused)
    for parent, conv_name, norm_name in pairs:
        _fold(parent, conv_name, norm_name)
    probe = torch.randn(2, *input_size, generator=torch.Generator().manual_seed(0))
    expected, got = forward(model.eval(), probe), forward(fused, probe)
    if not torch.isfinite(expected).all():  # allclose's tolerance from a NaN max raised a RuntimeError here
        raise PTMError(f"{type(model).__name__} gives NaN or infinite outputs: its weights hold NaN or infinite "
                       f"values. Use another checkpoint.")
    if expected.shape != got.shape or not torch.allclose(got, expected, rtol=1e-3,
                                                         atol=1e-3 * float(expected.abs().max()) + 1e-6):
        log.warning("batch-norm folding changed %s's output; running it unfolded", type(model).__name__)
        return model, 0
    return fused, len(pairs)

"""Weights from another framework's layout into a PyTorch model: Keras kernel layouts to PyTorch's, and a strict
load that uses every converted tensor exactly once and fills every tensor the model has.

Keras stores a convolution kernel as (height, width, in, out) ("HWIO"), a depthwise kernel as
(height, width, channels, multiplier) and a dense kernel as (in, out); PyTorch wants (out, in, height, width),
(channels * multiplier, 1, height, width) and (out, in).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ptm_core.base.errors import PTMError
from ptm_core.models.precision import check_finite_weights


def conv_kernel(kernel: np.ndarray) -> torch.Tensor:
    """A Keras Conv2D kernel (H, W, I, O) as a PyTorch Conv2d weight (O, I, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(kernel, dtype=np.float32).transpose(3, 2, 0, 1)))


def depthwise_kernel(kernel: np.ndarray) -> torch.Tensor:
    """A Keras DepthwiseConv2D kernel (H, W, C, M) as a grouped PyTorch Conv2d weight (C * M, 1, H, W)."""
    h, w, c, m = kernel.shape
    return torch.from_numpy(np.ascontiguousarray(np.asarray(kernel, dtype=np.float32).reshape(h, w, c * m, 1)
                                                 .transpose(2, 3, 0, 1)))


def dense_kernel(kernel: np.ndarray) -> torch.Tensor:
    """A Keras Dense kernel (I, O) as a PyTorch Linear weight (O, I)."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(kernel, dtype=np.float32).T))


def vector(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(values, dtype=np.float32)))


def load_converted(model: nn.Module, state: dict[str, torch.Tensor], source: str,
                   skip: tuple[str, ...] = ("num_batches_tracked",)) -> None:
    """Load `state` into `model` only if it names every model tensor (but those ending in `skip`, counters that
    weights do not carry), nothing else, each with the model's shape and finite; otherwise one line that names
    the first offenders, and the model is left as it was."""
    own = {k: v for k, v in model.state_dict().items() if not k.endswith(skip)}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                 if k in state and state[k].shape != own[k].shape]
    problems = [f"{len(keys)} {label}: " + ", ".join(keys[:3]) + (" ..." if len(keys) > 3 else "")
                for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped))
                if keys]
    if problems:
        raise PTMError(f"{source} does not fit {type(model).__name__}: " + "; ".join(problems))
    check_finite_weights(state, source)
    model.load_state_dict(state, strict=False)  # strict by the checks above; the skipped counters keep their values

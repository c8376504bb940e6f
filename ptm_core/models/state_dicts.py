"""Putting tensors into a model: strictly by name, or one-to-one in order for a checkpoint that names them its own way.

Below both the weight sources (weights.py) and the bundled zoo (bundled.py), so that a converter of packaged
weights can import it without importing the sources that list the zoo.
"""
from __future__ import annotations

import torch
from torch import nn

from ptm_core.base.errors import PTMError
from ptm_core.models.precision import check_finite_weights


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load, reporting every missing, unexpected or mis-shaped key by name."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [k for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)):
        if keys:
            shown = ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")
            problems.append(f"{len(keys)} {label}: {shown}")
    if problems:
        raise PTMError(f"{source} does not match {type(model).__name__}: " + "; ".join(problems))
    check_finite_weights(state, source)
    model.load_state_dict(state)


def load_in_order(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a checkpoint whose keys use another naming scheme but whose tensors line up one-to-one, in order,
    with the model's own: the count must match and every shape is checked by `load_state_dict_strict`."""
    own = model.state_dict()
    if len(state) != len(own):
        raise PTMError(f"{source} has {len(state)} tensors, {type(model).__name__} expects {len(own)}.")
    load_state_dict_strict(model, dict(zip(own.keys(), state.values())), source)

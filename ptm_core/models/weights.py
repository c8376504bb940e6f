"""Weight sources behind one interface: `hub`, `bundled`, `random`, or a local file path.

Each source is a function registered with `@weight_source(name)` that builds a timm model and
returns it with an identity string; the identity goes into feature-cache keys, so two loads
that yield the same tensors share a cache entry.
"""
from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import timm
import torch
from torch import nn

from ptm_core.base.files import file_sha256
from ptm_core.base.configs import BackboneConfig
from ptm_core.base import checks
from ptm_core.data.files import within
from ptm_core.data.ingest import ROOTS_ENV, allowed_roots, check_packed_file
from ptm_core.base.errors import PTMError
from ptm_core.base.messages import M_
from ptm_core.models.bundled import bundled_entry, bundled_names, load_bundled
from ptm_core.models.state_dicts import load_state_dict_strict

CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def offline_choices() -> tuple[str, str]:
    """(CLI, UI) wording of what works without the hub."""
    names = ", ".join(bundled_names())
    return (f"offline choices: --weights bundled ({names}), --weights random, "
            f"or --weights PATH to a local .safetensors/.pth file",
            f"offline, pick Weights: Bundled (offline ImageNet) for {names}, Random init, or Local file")


@dataclass
class LoadedBackbone:
    model: nn.Module
    identity: str  # what the weights are, for cache keys and run records
    notes: list[str]


_SOURCES: dict[str, Callable[[BackboneConfig], LoadedBackbone]] = {}


def weight_source(name: str):
    def decorator(fn: Callable[[BackboneConfig], LoadedBackbone]):
        _SOURCES[name] = fn
        return fn

    return decorator


def weight_source_names() -> list[str]:
    return list(_SOURCES)


def check_model_name(name: str) -> None:
    if not timm.is_model(name):
        raise PTMError(f"Unknown model '{name}'. List models with: python -m ptm_core models --filter '*{name.split('.')[0]}*'")
    arch, _, tag = name.partition(".")
    if tag and name not in timm.list_pretrained(name):  # is_model checks the architecture only
        raise PTMError(f"Unknown pretrained tag '{tag}' for {arch}. List its tags with: python -m ptm_core models "
                       f"--filter '{arch}.*'")


def _looks_like_safetensors(path: Path) -> bool:
    """Whether the content is safetensors, whatever the name: an 8-byte little-endian header length, then the
    JSON header ('{'). A torch zip starts 'PK' and a legacy pickle 0x80: those go to torch.load even when named
    .safetensors; only content that is neither falls back on the name, so a broken file's message fits it."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError:
        head = b""
    if len(head) == 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size:
        return True
    if head.startswith((b"PK", b"\x80")):
        return False
    return path.suffix == ".safetensors"


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a checkpoint without ever running pickled code, bounded in size like an upload."""
    check_packed_file(path, "Checkpoint")
    if _looks_like_safetensors(path):  # by content: a safetensors file named .pth is still safetensors
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # SafetensorError, header JSON errors, truncated data
            raise PTMError(f"{path.name} is not a readable safetensors file ({type(exc).__name__}); "
                           f"check the download or save it again with safetensors.torch.save_file.") from None
    try:
        with open(path, "rb") as handle:  # a handle, not the name: torch reads a .safetensors name as safetensors
            state = torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError and friends; torch's own text carries ANSI codes
        raise PTMError(f"Refused to load {path.name}: it is not a plain tensor checkpoint ({type(exc).__name__}). "
                       f"Pickled Python objects are never loaded, as they could run code; save the weights with "
                       f"torch.save(model.state_dict(), path) or as .safetensors.") from None
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise PTMError(f"{path.name} holds a {type(state).__name__}, not a state dict.")
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _create(name: str, **kwargs) -> nn.Module:
    check_model_name(name)
    return timm.create_model(name, **kwargs)


@weight_source("random")
def _random(config: BackboneConfig) -> LoadedBackbone:
    check_model_name(config.name)
    checks.seed("init seed (--init-seed)", config.seed)
    torch.manual_seed(config.seed)
    model = _create(config.name, pretrained=False)
    return LoadedBackbone(model, f"random:seed={config.seed}", [])


@weight_source("bundled")
def _bundled(config: BackboneConfig) -> LoadedBackbone:
    if bundled_entry(config.name) is not None:
        check_model_name(config.name)  # a bundled architecture with a tag timm does not know is still unknown
    model, identity = load_bundled(config.name)
    return LoadedBackbone(model, identity, [])


def _hub_host() -> str:
    return urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    # A thread bounds the DNS look-up too, which socket timeouts do not cover.
    reached = threading.Event()

    def connect() -> None:
        try:
            with socket.create_connection((_hub_host(), 443), timeout=timeout):
                reached.set()
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return reached.is_set()


def cached_hub_file(name: str) -> Path | None:
    """The weights file for `name` if it already sits in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or not cfg.hf_hub_id:
        return None
    repo, _, revision = cfg.hf_hub_id.partition("@")
    for filename in filter(None, (cfg.hf_hub_filename, "model.safetensors", "pytorch_model.bin")):
        found = try_to_load_from_cache(repo, filename, revision=revision or None)
        if isinstance(found, str):
            return Path(found)
    return None


@weight_source("hub")
def _hub(config: BackboneConfig) -> LoadedBackbone:
    check_model_name(config.name)
    cached = cached_hub_file(config.name)
    if cached is None and not hub_reachable():
        why = f"Cannot download weights for '{config.name}': the Hugging Face hub is unreachable and they are not cached"
        raise PTMError(*(f"{why}; {choices}." for choices in offline_choices()))
    try:
        if cached is not None and not hub_reachable(timeout=1.0):
            # Offline with a warm cache: skip the hub's HEAD retries (about a minute) and read the file.
            model = _create(config.name, pretrained=True, pretrained_cfg_overlay={"file": str(cached)})
        else:
            model = _create(config.name, pretrained=True)
    except PTMError:
        raise
    except Exception as exc:
        why = f"Could not load hub weights for '{config.name}' ({type(exc).__name__})"
        raise PTMError(*(f"{why}; {choices}." for choices in offline_choices())) from exc
    cfg = model.pretrained_cfg
    return LoadedBackbone(model, f"hub:{cfg.get('hf_hub_id') or cfg.get('url') or config.name}", [])


def checkpoint_path(weights: str) -> Path:
    """The resolved checkpoint file, under the same allowed roots as datasets.

    The UI restores `weights_path` from its URL, so a link could otherwise probe the server's disk:
    a path outside the roots and a missing file get the very same message.
    """
    path = Path(weights).expanduser()
    if path.suffix not in CHECKPOINT_SUFFIXES:  # lexical: says nothing about the disk
        raise PTMError(f"Weights '{weights}' are neither {', '.join(_SOURCES)} nor a checkpoint path "
                       f"({', '.join(CHECKPOINT_SUFFIXES)}).")
    try:
        resolved = path.resolve()
        usable = within(resolved, allowed_roots()) and resolved.is_file()
    except (OSError, RuntimeError, ValueError):  # symlink loops, names the OS refuses
        usable = False
    if not usable:
        raise PTMError(f"Weights file '{weights}' is not allowed or not found: it must be an existing file "
                       f"inside the allowed folders ({ROOTS_ENV}).")
    return resolved


def _local_file(config: BackboneConfig) -> LoadedBackbone:
    path = checkpoint_path(config.weights)
    model = _create(config.name, pretrained=False)
    load_state_dict_strict(model, read_state_dict(path), path.name)
    return LoadedBackbone(model, f"file:{file_sha256(path)[:16]}", [])


def load_backbone(config: BackboneConfig) -> LoadedBackbone:
    """The model in eval mode with the requested weights."""
    source = _SOURCES.get(config.weights, _local_file)
    loaded = source(config)
    loaded.model.eval()
    return loaded


def weights_availability(name: str) -> str:
    """Where weights for `name` can come from right now: bundled, cached, or download needed."""
    if bundled_entry(name) is not None:
        return M_("bundled")
    if timm.models.get_pretrained_cfg(name) is not None and cached_hub_file(name) is not None:
        return M_("in local hub cache")
    return M_("download needed")

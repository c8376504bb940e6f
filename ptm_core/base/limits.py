"""Size limits on what users bring, each overridable from the environment (read at call time)."""
from __future__ import annotations

import os

from ptm_core.base.errors import PTMError

FILE_BYTES_ENV = "PTM_MAX_FILE_BYTES"
LOAD_BYTES_ENV = "PTM_MAX_LOAD_BYTES"
CACHE_BYTES_ENV = "PTM_CACHE_MAX_BYTES"
DEFAULT_FILE_BYTES = 256 * 1024**2  # one image or labels CSV, read whole into memory
DEFAULT_LOAD_BYTES = 4 * 1024**3  # a checkpoint or features npz, as unpacked in memory
DEFAULT_CACHE_BYTES = 5 * 1024**3
MAX_RATIO = 200  # deflate rarely beats ~20:1 on real images or float tensors; 200:1 is a crafted bomb


def env_int(name: str, default: int) -> int:
    """A positive integer from the environment, read at call time so tests and users can change it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except (ValueError, OverflowError):
        raise PTMError(f"{name} must be a positive integer, got {raw!r}.") from None
    if value < 1:
        raise PTMError(f"{name} must be a positive integer, got {raw!r}.")
    return value


def max_file_bytes() -> int:
    return env_int(FILE_BYTES_ENV, DEFAULT_FILE_BYTES)


def max_load_bytes() -> int:
    return env_int(LOAD_BYTES_ENV, DEFAULT_LOAD_BYTES)


def cache_max_bytes() -> int:
    return env_int(CACHE_BYTES_ENV, DEFAULT_CACHE_BYTES)


def mb(n: int) -> str:
    return f"{n / 1024**2:.3g}"

"""Where PTM Explorer keeps its caches: `$PTM_DATA_DIR`, else `~/.cache/ptm-explorer`."""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "PTM_DATA_DIR"


def data_dir() -> Path:
    root = Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "ptm-explorer").expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission, a read-only disk
        from ptm_core.errors import PTMError

        raise PTMError(f"The data folder {root} cannot be used ({exc.strerror or exc}); point {ENV_VAR} "
                       f"(or --data-dir) at a folder that exists or can be created.") from None
    return root


def set_data_dir(path: str | os.PathLike) -> Path:
    os.environ[ENV_VAR] = str(Path(path).expanduser().resolve())
    return data_dir()

"""Where PTM Explorer keeps its caches: `$PTM_DATA_DIR`, else `~/.cache/ptm-explorer`."""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "PTM_DATA_DIR"


NAME_MAX = 255  # bytes in one path component on the usual file systems (ext4, xfs, btrfs, APFS, NTFS)
PATH_MAX = 4096


def check_path_text(path: str | os.PathLike, what: str) -> None:
    """Refuse a path no file system takes, before the OS is asked: a NUL (Python raises ValueError) or a
    component over NAME_MAX bytes (ENAMETOOLONG), each said in one line naming `what` ("--out", "Folder")."""
    from ptm_core.base.errors import PTMError
    from ptm_core.base.messages import M_

    text = os.fspath(path)
    text = text if isinstance(text, str) else os.fsdecode(text)
    if "\x00" in text:
        raise PTMError(M_("{what} contains a NUL character, which no file or folder name can hold.", what=what))
    longest = max(text.replace(os.sep, "/").split("/"), key=lambda part: len(os.fsencode(part)))
    if len(os.fsencode(longest)) > NAME_MAX:
        raise PTMError(f"{what} has a name of {len(os.fsencode(longest))} bytes ('{longest[:20]}…'); file systems "
                       f"take at most {NAME_MAX} per folder or file name.")
    if len(os.fsencode(text)) > PATH_MAX:
        raise PTMError(f"{what} is {len(os.fsencode(text))} bytes long; file systems take at most {PATH_MAX}.")


def data_dir() -> Path:
    from ptm_core.base.errors import PTMError

    raw = os.environ.get(ENV_VAR) or Path.home() / ".cache" / "ptm-explorer"
    check_path_text(raw, f"The data folder ({ENV_VAR} or --data-dir)")
    root = Path(raw).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission, a read-only disk
        raise PTMError(f"The data folder {root} cannot be used ({exc.strerror or exc}); point {ENV_VAR} "
                       f"(or --data-dir) at a folder that exists or can be created.") from None
    if not os.access(root, os.W_OK | os.X_OK):  # a read-only mount says so even to root (EROFS)
        raise PTMError(f"The data folder {root} is read-only; PTM Explorer keeps its caches there. Point {ENV_VAR} "
                       f"(or --data-dir) at a folder it can write.")
    return root


def set_data_dir(path: str | os.PathLike) -> Path:
    check_path_text(path, "--data-dir")
    os.environ[ENV_VAR] = str(Path(path).expanduser().resolve())
    return data_dir()

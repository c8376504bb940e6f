"""Where library chatter goes: the log file in the data dir, or stderr with PTM_DEBUG=1.

A successful CLI run must leave stderr to our own messages; Pillow, sklearn, torch and timm
warnings are still worth keeping for a bug report, so they are logged rather than dropped.
"""
from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Iterator

from ptm_core.base.paths import data_dir

LOG_NAME = "ptm.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_installed: list[logging.Handler] = []


def log_path():
    return data_dir() / LOG_NAME


def route_warnings_to_log(early: list[warnings.WarningMessage] | None = None) -> None:
    """Send Python warnings and library log records to the log (stderr under PTM_DEBUG=1); once per process.

    `early`: warnings recorded before the log could be opened (the data dir was not known yet).
    """
    if _installed:
        return
    logging.captureWarnings(True)
    handler: logging.Handler
    if os.environ.get("PTM_DEBUG"):
        handler = logging.StreamHandler(sys.stderr)
    else:
        try:
            handler = logging.FileHandler(log_path(), encoding="utf-8", delay=True)
        except OSError:
            handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if os.environ.get("PTM_DEBUG") else logging.INFO)
    _installed.append(handler)
    for w in early or []:
        logging.getLogger("py.warnings").warning(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))


@contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 to the log, for the duration; our own lines keep stderr.

    Ray's C++ core (and the processes it starts, which inherit the descriptor) write notices straight to fd 2,
    past Python's logging. `sys.stderr` is pointed at a copy of the real stderr meanwhile, so progress and
    error lines still reach the user. Under PTM_DEBUG=1 nothing is redirected.
    """
    if os.environ.get("PTM_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    ours = sys.stderr
    try:
        with open(log_path(), "ab") as log:
            os.dup2(log.fileno(), 2)
        encoding = getattr(ours, "encoding", None) or "utf-8"
        sys.stderr = io.TextIOWrapper(io.FileIO(os.dup(saved), "w"), encoding=encoding, errors="backslashreplace",
                                      line_buffering=True)
    except OSError:
        os.close(saved)
        yield
        return
    try:
        yield
    finally:
        sys.stderr.close()
        sys.stderr = ours
        os.dup2(saved, 2)
        os.close(saved)

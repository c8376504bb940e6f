"""Where library chatter goes: the log file in the data dir, or stderr with PTM_DEBUG=1.

A successful CLI run must leave stderr to our own messages; Pillow, sklearn, torch and timm
warnings are still worth keeping for a bug report, so they are logged rather than dropped.
"""
from __future__ import annotations

import logging
import os
import sys
import warnings

from ptm_core.paths import data_dir

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

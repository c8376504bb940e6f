"""Locks held while a thread is inside a native call (PyTorch's or OpenVINO's thread pools), and the one exit handler
that waits for them.

A process that exits while a thread is inside such a call aborts in the library's C++ threads ("terminate called
without an active exception"), so at exit each lock is taken, which lets a call under way finish and holds any later
one off. The order matters: a timed calibration call (models/calibration) may enter OpenVINO (models/openvino), so
the outer lock must be taken first. Two handlers, one per module, ran innermost first (atexit runs the last
registered first): the inner lock taken, the timed call then blocked on it while holding the outer one, and the exit
waited out the whole timeout (a server's stop took 32 s instead of about 2).
"""
from __future__ import annotations

import atexit
import threading

EXIT_WAIT_S = 30.0  # per lock: a native call takes a second at most; past this the process exits anyway
_LOCKS: list[tuple[int, threading.Lock]] = []


def native_lock(depth: int) -> threading.Lock:
    """A lock to hold around native calls; `depth` 0 for the outermost (a call under it may take deeper ones)."""
    lock = threading.Lock()
    _LOCKS.append((depth, lock))
    return lock


@atexit.register
def quiesce() -> None:
    """Take every native lock, outermost first (see the module docstring)."""
    for _depth, lock in sorted(_LOCKS, key=lambda entry: entry[0]):
        lock.acquire(timeout=EXIT_WAIT_S)

"""Hostile conditions around what the app stores: racing writers, full disks, other sessions' data, half-removed
extractions, and cached answers that belong to another dataset. Issue "Hostile input, third round"; each case
names its item."""
from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from ptm_core import artifacts
from ptm_core.artifacts import load_npz, npz_intact, save_npz

# --------------------------------------------------------------------------- 11: racing writers


def test_11_racing_writers_of_one_key_always_leave_a_valid_entry(tmp_path):
    path = tmp_path / "features" / "k.npz"
    rounds, failures = 60, []

    def writer(value: float) -> None:
        for _ in range(rounds):
            save_npz(path, meta={"writer": value}, features=np.full((64, 32), value, np.float32))
            loaded = load_npz(path, discard_invalid=False)
            if loaded is None:  # a pair of one writer's data and the other's checksum
                failures.append(value)

    threads = [threading.Thread(target=writer, args=(v,)) for v in (1.0, 2.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    arrays, meta = load_npz(path)
    assert not failures and npz_intact(path)
    assert float(arrays["features"][0, 0]) == meta["writer"]  # data and meta from the same writer
    assert [p.name for p in path.parent.iterdir()] == ["k.npz"]  # no sidecar, no temp file


def test_11_a_damaged_entry_is_refused_and_an_old_sidecar_entry_still_reads(tmp_path):
    path = save_npz(tmp_path / "a.npz", features=np.arange(1000, dtype=np.float32))
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF
    path.write_bytes(bytes(data))
    assert load_npz(path) is None and not path.exists()  # a cache entry: gone, to be recomputed
    old = tmp_path / "old.npz"  # written before checksums were embedded: npz + .sha256 sidecar
    np.savez(old, meta=np.array("{}"), features=np.ones(3))
    old.with_name("old.npz.sha256").write_text(artifacts.file_sha256(old))
    assert npz_intact(old) and load_npz(old)[0]["features"].tolist() == [1, 1, 1]

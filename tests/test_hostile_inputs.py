"""Hostile and careless input, data side: zips, folders, files swapped under us, npz files, the run store.

Every fixture is built here, in tmp_path (small images, no network); each case names the issue-10 item
it guards. The CLI, numeric options and messages are in test_hostile_cli.py.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ingest_helpers import datasets_dir, encode, load, make_folder, make_zip, png_bytes, skip_map, write
from ptm_core.data import ingest
from ptm_core.data.ingest import RATIO_MIN_BYTES, check_packed_file, extract_zip, ingest_upload
from ptm_core.base.errors import PTMError

ZEROS = zipfile.ZIP_DEFLATED


def _photo_jpeg(size: int = 48) -> bytes:
    return encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)), "JPEG")


def _broken_idat_png() -> bytes:
    """A PNG whose chunk CRCs are right but whose compressed pixels are garbage: verify() passes it."""
    import struct
    import zlib

    data = png_bytes(90, size=(32, 32))
    start = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[start:start + 4])[0]
    body = bytes(length)  # zeros are not a valid zlib stream
    chunk = struct.pack(">I", length) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    return data[:start] + chunk + data[start + 12 + length:]


# --------------------------------------------------------------------------- 1, 17: zip bombs and leftovers

@pytest.mark.parametrize("entries", [
    {f"a/{i}.bin": bytes(RATIO_MIN_BYTES) for i in range(4)},  # exactly at the per-entry floor
    {f"a/{i}.bin": bytes(1024**2) for i in range(4)},  # the reported 1 MiB entries
    {f"a/{i}.bin": bytes(RATIO_MIN_BYTES - 1) for i in range(120)},  # each harmless, the whole a bomb
])
def test_1_zip_bombs_are_refused_from_path_and_upload(entries, tmp_path):
    path = make_zip(tmp_path / "bomb.zip", entries)
    with pytest.raises(PTMError, match="zip bomb"):
        load(f"zip:{path}")
    with pytest.raises(PTMError, match="zip bomb"):
        ingest_upload(path.read_bytes(), "bomb.zip")
    assert not datasets_dir().exists() or not any(datasets_dir().iterdir())


def test_1_whole_archive_ratio_is_counted_while_streaming(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "check_members", lambda *args: None)  # headers can lie
    path = make_zip(tmp_path / "liar.zip", {f"a/{i}.bin": bytes(RATIO_MIN_BYTES - 1) for i in range(120)})
    with pytest.raises(PTMError, match="as a whole"):
        extract_zip(path)


def test_1_refused_dataset_leaves_no_extraction(tmp_path):
    path = make_zip(tmp_path / "notes.zip", {"a/x.txt": b"hello", "b/y.txt": b"world"})
    with pytest.raises(PTMError, match="No usable images"):
        load(f"zip:{path}")
    assert not any(p for p in datasets_dir().iterdir() if not p.name.startswith("."))


def test_1_extracted_datasets_are_under_the_cache_cap(tmp_path, monkeypatch):
    first = make_zip(tmp_path / "one.zip", {"a/1.png": png_bytes(1), "b/2.png": png_bytes(2)})
    second = make_zip(tmp_path / "two.zip", {"a/1.png": png_bytes(3), "b/2.png": png_bytes(4)})
    load(f"zip:{first}")
    old = time.time() - 7200  # unused for two hours: past the eviction grace
    for p in datasets_dir().iterdir():
        os.utime(p, (old, old))
    monkeypatch.setenv("PTM_CACHE_MAX_BYTES", "1")
    load(f"zip:{second}")
    assert len([p for p in datasets_dir().iterdir() if not p.name.startswith(".")]) == 1


def test_17_stale_extraction_temp_folders_are_removed(tmp_path):
    stale = datasets_dir() / ".0123456789ab-999999999-x"  # its pid is not a live process
    write(stale / "half.bin", bytes(1000))
    path = make_zip(tmp_path / "ok.zip", {"a/1.png": png_bytes(1), "b/2.png": png_bytes(2)})
    load(f"zip:{path}")
    assert not stale.exists()


# --------------------------------------------------------------------------- 2, 11, 12, 15, 23: folders

def _outside(tmp_path_factory) -> Path:
    secret = tmp_path_factory.mktemp("outside") / "secret.png"
    secret.write_bytes(png_bytes(7))
    return secret


@pytest.mark.parametrize("target", ["outside", "inside"])
def test_2_a_file_swapped_for_a_symlink_after_listing_is_not_read(target, tmp_path, tmp_path_factory):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    ds = load(f"folder:{root}")
    victim = root / "a" / "a0.png"
    other = _outside(tmp_path_factory) if target == "outside" else write(tmp_path / "other.png", png_bytes(9))
    victim.unlink()
    victim.symlink_to(other)
    with pytest.raises(PTMError, match="outside the allowed folders" if target == "outside" else "changed since"):
        ds.image(ds.ids.index("a/a0.png"))


def test_2_a_file_rewritten_after_listing_is_not_read(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    ds = load(f"folder:{root}")
    write(root / "b" / "b1.png", png_bytes(200, size=(9, 9)))
    with pytest.raises(PTMError, match="changed since the dataset was loaded"):
        ds.image(ds.ids.index("b/b1.png"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_11_a_named_pipe_in_a_class_folder_is_skipped_without_blocking(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    os.mkfifo(root / "a" / "pipe.png")
    result: list = []
    worker = threading.Thread(target=lambda: result.append(load(f"folder:{root}")), daemon=True)
    worker.start()
    worker.join(20)
    assert result, "loading a folder with a named pipe hung"
    assert "named pipe" in skip_map(result[0])["a/pipe.png"]


@pytest.mark.parametrize("name, data", [
    ("truncated.jpg", _photo_jpeg()[:1500]),
    ("broken-idat.png", _broken_idat_png()),
    ("empty.png", b""),
    ("text.png", b"not an image at all"),
])
def test_12_images_that_fail_at_decode_time_are_skipped_at_load(name, data, tmp_path):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    write(root / "a" / name, data)
    ds = load(f"folder:{root}")
    assert f"a/{name}" in skip_map(ds) and len(ds) == 4


def test_15_a_huge_sparse_image_is_skipped_before_reading(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    with open(root / "a" / "huge.png", "wb") as handle:
        handle.truncate(300 * 1024**2)  # sparse: no disk used, but read_bytes() would take 300 MB
    ds = load(f"folder:{root}")
    assert "too large" in skip_map(ds)["a/huge.png"] and "PTM_MAX_FILE_BYTES" in skip_map(ds)["a/huge.png"]


def test_15_the_file_limit_is_env_configurable(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    write(root / "a" / "big.png", png_bytes(5, size=(200, 200)))
    monkeypatch.setenv("PTM_MAX_FILE_BYTES", "400")
    assert "too large" in skip_map(load(f"folder:{root}"))["a/big.png"]


def test_23_two_csvs_and_an_empty_class_folder_are_explained(tmp_path):
    root = tmp_path / "flat"
    for i in range(2):
        write(root / f"{i}.png", png_bytes(i))
    write(root / "labels.csv", b"filename,label\n0.png,x\n1.png,y\n")
    write(root / "notes.csv", b"whatever\n")
    with pytest.raises(PTMError, match="one of 2 CSV files"):
        load(f"folder:{root}")
    nested = make_folder(tmp_path / "nested", {"a": 2, "b": 2})
    (nested / "c").mkdir()
    assert "empty class folder" in skip_map(load(f"folder:{nested}"))["c/"]


def test_23_a_linked_sub_folder_is_reported_not_dropped_silently(tmp_path, tmp_path_factory):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    elsewhere = make_folder(tmp_path_factory.mktemp("more"), {"x": 2})
    (root / "a" / "more").symlink_to(elsewhere / "x", target_is_directory=True)
    assert skip_map(load(f"folder:{root}"))["a/more"] == "a link to a folder (not followed)"


def test_19_a_labels_csv_over_the_field_limit_is_one_line(tmp_path):
    root = tmp_path / "flat"
    write(root / "0.png", png_bytes(1))
    write(root / "labels.csv", b"filename,label\n0.png," + b"x" * 200_000 + b"\n")
    with pytest.raises(PTMError, match=r"labels.csv line \d+ is not valid CSV"):
        load(f"folder:{root}")


# --------------------------------------------------------------------------- 4: terminal escapes

@pytest.mark.parametrize("control", ["\x1b[2J", "\x1b]0;owned\x07", "\r", "\u202e"])
def test_4_control_characters_in_zip_names_are_escaped(control, tmp_path):
    path = make_zip(tmp_path / "evil.zip", {f"../{control}x.png": png_bytes(1)})
    with pytest.raises(PTMError) as info:
        load(f"zip:{path}")
    text = str(info.value)
    assert control not in text and ("\\x1b" in text or "\\x0d" in text or "\\u202e" in text)
    with pytest.raises(PTMError) as info:
        load(f"folder:{tmp_path / (control + 'missing')}")
    assert control not in str(info.value)


# --------------------------------------------------------------------------- 6, 19, 20, 25: npz files

def _npz(path: Path, **arrays) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _good(n: int = 8) -> dict:
    return {"features": np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32),
            "labels": np.arange(n) % 2, "class_names": np.array(["a", "b"]), "ids": np.array([str(i) for i in range(n)])}


@pytest.mark.parametrize("change, message", [
    ({"labels": np.arange(5) % 2}, "'labels' has 5 entries but 'features' has 8 rows"),
    ({"labels": np.array([-1, 0, 1, 0, 1, 0, 1, 0])}, "contains -1"),
    ({"labels": (np.arange(8) % 2).astype(np.float64) + 0.5}, "must be integer class indices"),
    ({"labels": np.arange(8) % 3}, "class 2 but 'class_names' lists only 2"),
    ({"features": np.arange(8.0)}, "2-D array"),
    ({"features": np.full((8, 4), np.nan)}, "NaN or infinite"),
    ({"ids": np.array(["x"])}, "'ids' has 1 entries"),
    ({"labels": None}, "has no 'labels' array"),
    ({"features": np.zeros((0, 4)), "labels": np.zeros(0, int), "ids": np.array([], str)}, "has no rows"),
    ({"labels": np.full(8, 10**12), "class_names": None}, "no 'class_names'"),
])
def test_6_features_npz_is_validated_by_content(change, message, tmp_path):
    from ptm_core.features.user_files import read_features_file

    arrays = {k: v for k, v in {**_good(), **change}.items() if v is not None}
    with pytest.raises(PTMError, match=message):
        read_features_file(_npz(tmp_path / "f.npz", **arrays))


def test_6_a_features_file_without_sidecar_loads(tmp_path):
    from ptm_core.features.user_files import read_features_file

    features = read_features_file(_npz(tmp_path / "f.npz", **_good()))
    assert features.features.shape == (8, 4) and features.class_names == ["a", "b"]


@pytest.mark.parametrize("content, message", [
    (b"just some text, named .npz", "not an npz archive"),
    (None, "holds Python objects"),  # an object array: needs pickle
    (b"PK\x03\x04" + bytes(100), "damaged or not an npz"),
])
def test_20_odd_npz_files_get_plain_advice(content, message, tmp_path):
    from ptm_core.features.user_files import read_features_file

    path = tmp_path / "odd.npz"
    if content is None:
        np.savez(path, features=np.array([{"a": 1}], dtype=object), labels=np.arange(1))
    else:
        path.write_bytes(content)
    with pytest.raises(PTMError, match=message) as info:
        read_features_file(path)
    assert "allow_pickle" not in str(info.value)


def test_25_a_small_file_that_expands_hugely_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", ZEROS) as zf:
        zf.writestr("features.npy", bytes(20 * 1024**2))
    with pytest.raises(PTMError, match="compression bomb"):
        check_packed_file(path, "--features")
    monkeypatch.setenv("PTM_MAX_LOAD_BYTES", "1000")
    with pytest.raises(PTMError, match="PTM_MAX_LOAD_BYTES"):
        check_packed_file(_npz(tmp_path / "big.npz", **_good(64)), "--features")


# --------------------------------------------------------------------------- 13: the run store

def _corrupt(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(3000))


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE cookies (name TEXT)")


def _folder(path: Path) -> None:
    path.mkdir()


def _other_runs_table(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE runs (id TEXT)")


@pytest.mark.parametrize("breaker", [_corrupt, _foreign, _folder, _other_runs_table])
def test_13_a_broken_store_is_moved_aside_and_a_fresh_one_started(breaker, tmp_path):
    from ptm_core.runs.store import RunStore

    path = tmp_path / "runs.sqlite"
    breaker(path)
    store = RunStore(path)
    assert store.recovered_note and "moved aside" in store.recovered_note
    assert store.moved_to.exists(), "the broken store must be kept"
    store.save({"id": "r", "key": "k", "kind": "x", "title": "t", "status": "done", "created": 1.0})
    assert store.get("r")["status"] == "done" and store.runs()


def test_13_a_locked_store_never_blocks_for_long(tmp_path, monkeypatch):
    from ptm_core.runs import store as store_module
    from ptm_core.runs.store import RunStore

    monkeypatch.setattr(store_module, "LOCK_WAIT_S", 0.2)
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing for a long time
    started = time.monotonic()
    store.save({"id": "r", "key": "k", "kind": "x", "title": "t", "status": "running", "created": 1.0})
    assert store.get("r")["status"] == "running"  # held in memory meanwhile
    assert time.monotonic() - started < 3
    holder.execute("ROLLBACK")
    store.save({"id": "r", "status": "done"})
    assert store.get("r")["status"] == "done" and store._pending == {}
    store.close()
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")  # now not even readers get in
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        late = RunStore(path)
        assert "locked by another process" in late.recovered_note and time.monotonic() - started < 5
        late.save({"id": "m", "key": "k", "kind": "x", "title": "t", "status": "done", "created": 1.0})
        assert late.get("m")["status"] == "done"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_13_a_broken_store_that_cannot_be_moved_falls_back_to_memory(tmp_path, monkeypatch):
    from ptm_core.runs import store as store_module

    def refuse(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(store_module, "_move_aside", refuse)
    path = tmp_path / "runs.sqlite"
    _corrupt(path)
    store = store_module.RunStore(path)
    assert "nor replaced" in store.recovered_note and path.exists()
    store.save({"id": "r", "key": "k", "kind": "x", "title": "t", "status": "done", "created": 1.0})
    assert store.get("r")["status"] == "done"


def test_13_a_row_with_broken_json_is_shown_not_fatal(tmp_path):
    from ptm_core.runs.store import RunStore

    store = RunStore(tmp_path / "runs.sqlite")
    store.save({"id": "r", "key": "k", "kind": "x", "title": "t", "status": "done", "created": 1.0})
    store._db.execute("UPDATE runs SET metrics = '{not json' WHERE id = 'r'")
    assert store.get("r")["metrics"] is None and store.runs()[0]["id"] == "r" and "r" in store.metrics_csv()


def test_13_a_store_damaged_mid_session_keeps_the_app_up(tmp_path):
    from ptm_core.runs.store import RunStore

    class Damaged:
        def execute(self, *args):
            raise sqlite3.DatabaseError("database disk image is malformed")

        def close(self):
            pass

    store = RunStore(tmp_path / "runs.sqlite")
    store._db = Damaged()
    assert store.runs() == [] and store.get("x") is None and store.latest("k") is None
    assert "cannot be read" in store.recovered_note


# --------------------------------------------------------------------------- the data package

def test_data_is_one_package_without_the_old_modules():
    import importlib.util

    for old in ("datasets", "tv_datasets", "ingest", "layouts", "imaging", "synthetic"):
        assert importlib.util.find_spec(f"ptm_core.{old}") is None
    from ptm_core.data import Dataset, load_dataset  # noqa: F401  (the one public entry point)

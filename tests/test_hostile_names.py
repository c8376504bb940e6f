"""Hostile input, third round, items 9 and 10: names and wrong reasons. A zip entry that is merely unusable (a name
over 255 bytes, a NUL, a password, corrupt data, a clash) is skipped and listed while the rest of the zip works;
a hostile one still refuses the zip. Every refusal says its true reason: a folder named "a: apples" is a name, an
encrypted entry is encrypted (no ZipInfo repr), a safetensors file named .pth is safetensors, a read-only run
store is read-only, not locked.
"""
from __future__ import annotations

import sqlite3
import warnings
import zipfile

import pytest
import torch

from ingest_helpers import load, make_zip, png_bytes, skip_map, write
from ptm_core.data.ingest import SKIPPED_FILE, ingest_upload
from ptm_core.base.errors import PTMError

LONG = "x" * 300 + ".png"
GOOD = {"a/1.png": png_bytes(1), "a/2.png": png_bytes(2), "b/1.png": png_bytes(3), "b/2.png": png_bytes(4)}


def _zip_with(tmp_path, extra: dict, name: str = "odd.zip"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
        return make_zip(tmp_path / name, {**GOOD, **extra}, compression=zipfile.ZIP_STORED)


def _patch(path, old: bytes, new: bytes) -> None:
    """Rewrite bytes in a zip (names are in the local header and the central directory; neither has a CRC)."""
    data = path.read_bytes()
    assert old in data and len(old) == len(new)
    path.write_bytes(data.replace(old, new))


def test_unusable_zip_entries_are_skipped_and_listed_the_rest_loads(tmp_path):
    path = _zip_with(tmp_path, {f"a/{LONG}": png_bytes(5), "b/nulQ.png": png_bytes(6), "b/crc.png": png_bytes(7),
                                SKIPPED_FILE: b'[["a/1.png", "forged"]]'})
    _patch(path, b"b/nulQ.png", b"b/nul\x00.png")
    data = path.read_bytes()
    at = data.index(b"b/crc.png") + len(b"b/crc.png") + 40  # inside its stored pixels: the CRC no longer matches
    path.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:])
    ds = load(f"zip:{path}")
    skipped = skip_map(ds)
    assert sorted(ds.ids) == ["a/1.png", "a/2.png", "b/1.png", "b/2.png"]
    long_entry = next(name for name in skipped if name.startswith("a/xxx"))
    assert skipped[long_entry] == "a name over 255 bytes, more than a file system holds" and "(306 characters)" in long_entry
    assert skipped["b/nul\\x00.png"] == "its name holds a NUL byte"
    assert skipped["b/crc.png"].startswith("unreadable in the zip (Bad CRC-32")
    assert "keeps for its own" in skipped[SKIPPED_FILE] and "forged" not in skipped.values()
    ds_again = load(f"zip:{path}")  # from the kept extraction: the same list
    assert skip_map(ds_again) == skipped
    ingest_upload(path.read_bytes(), "odd.zip")  # an upload is not refused for them either


def test_a_duplicate_entry_name_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "dup.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")
        for name, data in {**GOOD, "a/1.png": png_bytes(9)}.items():
            zf.writestr(name, data)
        zf.writestr("a/1.png", png_bytes(8))
    ds = load(f"zip:{path}")
    assert len(ds) == 4 and skip_map(ds)["a/1.png"] == "another entry has the same name"


def test_a_folder_with_a_colon_is_a_name_not_an_absolute_path(tmp_path):
    path = _zip_with(tmp_path, {"a: apples/1.png": png_bytes(10), "a: apples/2.png": png_bytes(11)})
    ds = load(f"zip:{path}")
    assert "a: apples" in ds.class_names and len(ds) == 6


def test_encrypted_entries_are_skipped_with_the_reason_not_a_zipinfo_repr(tmp_path):
    path = _zip_with(tmp_path, {"a/secret.png": png_bytes(12)})
    data = path.read_bytes()
    # Set the "encrypted" flag of that entry in both headers (local: offset 6, central: offset 8).
    infos = {i.filename: i for i in zipfile.ZipFile(path).infolist()}
    start = infos["a/secret.png"].header_offset
    central = data.rindex(b"PK\x01\x02", 0, data.rindex(b"a/secret.png"))
    buf = bytearray(data)
    buf[start + 6] |= 1
    buf[central + 8] |= 1
    path.write_bytes(bytes(buf))
    ds = load(f"zip:{path}")
    reason = skip_map(ds)["a/secret.png"]
    assert reason.startswith("encrypted (password-protected)") and "ZipInfo" not in reason and len(ds) == 4


def test_hostile_entries_still_refuse_the_whole_zip(tmp_path):
    with pytest.raises(PTMError, match="climbs out"):
        load(f"zip:{_zip_with(tmp_path, {'../x.png': b'x'}, 'evil.zip')}")


def test_a_safetensors_file_named_pth_loads_by_content(tmp_path):
    from safetensors.torch import save_file

    from ptm_core.models.weights import read_state_dict

    save_file({"w": torch.ones(2)}, str(tmp_path / "weights.pth"))
    assert torch.equal(read_state_dict(tmp_path / "weights.pth")["w"], torch.ones(2))
    torch.save({"w": torch.zeros(2)}, tmp_path / "torch.safetensors")  # and the other way round
    assert torch.equal(read_state_dict(tmp_path / "torch.safetensors")["w"], torch.zeros(2))


@pytest.mark.parametrize("how, reason", [
    ("read-only file", "the file is read-only"),
    ("read-only folder", "its folder is read-only"),
    ("cannot open", "it cannot be opened (unable to open database file)"),
])
def test_a_read_only_run_store_says_so_not_locked(how, reason, tmp_path, monkeypatch):
    import os

    from ptm_core.runs import store

    path = tmp_path / "runs.sqlite"
    store.RunStore(path).close()
    real_access = os.access
    if how == "read-only file":
        monkeypatch.setattr(store.os, "access", lambda p, mode: real_access(p, mode) and str(p) != str(path))
    elif how == "read-only folder":
        monkeypatch.setattr(store.os, "access", lambda p, mode: real_access(p, mode) and str(p) != str(tmp_path))
    else:
        def refuse(*args, **kwargs):
            raise sqlite3.OperationalError("unable to open database file")

        real_connect = sqlite3.connect
        monkeypatch.setattr(store.sqlite3, "connect", lambda p, *a, **k: refuse() if str(p) == str(path)
                            else real_connect(p, *a, **k))
    runs = store.RunStore(path)
    assert reason in runs.recovered_note and "locked" not in runs.recovered_note
    assert "\n" not in runs.recovered_note and runs.moved_to is None and path.exists()
    runs.save({"id": "r1", "key": "k", "kind": "extract", "title": "t", "status": "done", "created": 1.0})
    assert runs.get("r1")["status"] == "done"  # the session goes on, in memory


def test_a_store_made_read_only_mid_session_keeps_the_run(tmp_path, monkeypatch):
    from ptm_core.runs import store

    runs = store.RunStore(tmp_path / "runs.sqlite")

    class ReadOnly:
        def __getattr__(self, name):
            return getattr(runs_db, name)

        def execute(self, sql, *args):
            if sql.lstrip().upper().startswith(("UPDATE", "INSERT")):
                raise sqlite3.OperationalError("attempt to write a readonly database")
            return runs_db.execute(sql, *args)

    runs_db, runs._db = runs._db, ReadOnly()
    runs.save({"id": "r1", "key": "k", "kind": "extract", "title": "t", "status": "done", "created": 1.0})
    assert runs.get("r1")["status"] == "done" and "became read-only" in runs.recovered_note

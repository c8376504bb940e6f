"""Zip datasets: the layouts they may hold and the hostile archives that must be refused."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ingest_helpers import datasets_dir, encode, load, make_folder, make_zip, png_bytes, skip_map, write
from ptm_core.data import ingest
from ptm_core.base.files import file_sha256
from ptm_core.base.errors import PTMError
from ptm_core.data.ingest import extract_zip, ingest_upload


# --------------------------------------------------------------------------- zip layouts

def test_per_class_zip_under_one_top_level_folder(tmp_path):
    entries = {f"pets/{cls}/{i}.png": png_bytes(30 * i + n) for n, cls in enumerate(["cat", "dog"]) for i in range(3)}
    entries.update({"pets/dog/readme.txt": b"hi", "__MACOSX/pets/._cat": b"junk", "pets/": b""})
    path = make_zip(tmp_path / "pets.zip", entries)
    ds = load(f"zip:{path}")
    assert ds.name == f"zip:{path}"
    assert ds.class_names == ["cat", "dog"] and ds.class_counts() == {"cat": 3, "dog": 3}
    assert ds.ids[0] == "cat/0.png" and skip_map(ds) == {"dog/readme.txt": "not an image file (.txt)"}
    assert np.asarray(ds.image(0)).shape == (8, 8, 3)
    extracted = datasets_dir() / file_sha256(path)
    assert (extracted / "pets" / "cat" / "0.png").is_file()
    assert [p.name for p in datasets_dir().iterdir()] == [extracted.name]  # no temp dirs left


def test_csv_labelled_flat_zip(tmp_path):
    entries = {f"img_{i}.png": png_bytes(10 * i) for i in range(6)}
    rows = ["filename,label"] + [f"img_{i}.png,{'10' if i % 2 else '2'}" for i in range(5)]
    rows += ["missing.png,2", "../../etc/passwd,10", "img_0.png,10", ",2"]
    entries["labels.csv"] = "\n".join(rows).encode()
    ds = load(f"zip:{make_zip(tmp_path / 'flat.zip', entries)}")
    assert ds.class_names == ["2", "10"]  # numeric labels in numeric order
    assert ds.class_counts() == {"2": 3, "10": 2}
    assert ds.labels[ds.ids.index("img_1.png")] == 1 and ds.labels[ds.ids.index("img_4.png")] == 0
    skips = skip_map(ds)
    assert skips["img_5.png"] == "not in the labels CSV"
    assert "not found" in skips["missing.png (labels.csv line 7)"]
    assert "not found" in skips["../../etc/passwd (labels.csv line 8)"]
    assert "twice" in skips["img_0.png (labels.csv line 9)"]
    assert "empty" in skips["labels.csv line 10"]


def test_csv_zip_with_images_in_a_subfolder_and_a_top_level_folder(tmp_path):
    entries = {f"set/images/{i}.jpg": encode(Image.new("RGB", (8, 8), (i * 40, 0, 0)), "JPEG") for i in range(4)}
    entries["set/labels.csv"] = b"\xef\xbb\xbfFilename, Label\nimages/0.jpg,cat\n1.jpg,dog\nimages/2.jpg,cat\n3.jpg,dog\n"
    ds = load(f"zip:{make_zip(tmp_path / 'sub.zip', entries)}")
    assert ds.class_counts() == {"cat": 2, "dog": 2} and ds.skipped == []
    assert ds.ids == ["images/0.jpg", "images/1.jpg", "images/2.jpg", "images/3.jpg"]


def test_a_stray_csv_next_to_class_folders_does_not_change_the_layout(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    write(root / "notes.csv", b"id,comment\n1,shot on a phone\n")
    ds = load(f"folder:{root}")
    assert ds.class_names == ["a", "b"] and skip_map(ds) == {"notes.csv": "not inside a class folder"}
    write(root / "notes.csv", b"filename,label\na/a0.png,x\nb/b0.png,y\n")  # now it is a labels file
    assert load(f"folder:{root}").class_counts() == {"x": 1, "y": 1}


def test_csv_layout_through_a_path_with_dots_and_a_symlinked_root(tmp_path):
    root = tmp_path / "flat"
    write(root / "sub" / "a.png", png_bytes(1))
    write(root / "b.png", png_bytes(2))
    write(root / "labels.csv", b"filename,label\nsub/a.png,x\nb.png,y\n")
    (tmp_path / "alias").symlink_to(root, target_is_directory=True)
    for spec in (f"folder:{tmp_path / 'flat' / 'sub' / '..'}", f"folder:{tmp_path / 'alias'}"):
        ds = load(spec)
        assert ds.ids == ["sub/a.png", "b.png"] and ds.class_names == ["x", "y"], spec


def test_csv_without_the_expected_columns_is_a_ptm_error(tmp_path):
    path = make_zip(tmp_path / "bad.zip", {"a.png": png_bytes(), "b.png": png_bytes(), "labels.csv": b"name,class\na.png,x\n"})
    with pytest.raises(PTMError, match="needs a header row with columns filename,label; found name,class"):
        load(f"zip:{path}")


def test_one_class_zip_is_a_ptm_error(tmp_path):
    path = make_zip(tmp_path / "one.zip", {"top/only/1.png": png_bytes(1), "top/only/2.png": png_bytes(2)})
    with pytest.raises(PTMError, match="at least two classes|No images"):
        load(f"zip:{path}")
    flat = make_zip(tmp_path / "flat1.zip", {"1.png": png_bytes(1), "2.png": png_bytes(2), "l.csv": b"filename,label\n1.png,x\n2.png,x\n"})
    with pytest.raises(PTMError, match="needs at least two classes; found only 'x'"):
        load(f"zip:{flat}")


def test_an_extracted_zip_is_reused(tmp_path, monkeypatch):
    path = make_zip(tmp_path / "d.zip", {"a/1.png": png_bytes(1), "b/2.png": png_bytes(2)})
    first = load(f"zip:{path}")
    assert extract_zip(path) == datasets_dir() / file_sha256(path)

    def must_not_extract(*args):
        raise AssertionError("re-extracted an already extracted zip")

    monkeypatch.setattr(ingest, "_unzip_into", must_not_extract)
    again = load(f"zip:{path}")
    assert again.fingerprint == first.fingerprint and again.ids == first.ids
    copy = tmp_path / "copy.zip"
    copy.write_bytes(path.read_bytes())  # same bytes elsewhere: same extraction
    assert load(f"zip:{copy}").fingerprint == first.fingerprint


def test_not_a_zip_and_missing_zip(tmp_path):
    with pytest.raises(PTMError, match="not a valid zip"):
        load(f"zip:{write(tmp_path / 'fake.zip', b'PK but not really')}")
    with pytest.raises(PTMError, match="not found"):
        load(f"zip:{tmp_path / 'nope.zip'}")
    with pytest.raises(PTMError, match="zip needs a path"):
        load("zip")


# --------------------------------------------------------------------------- hostile zips

def _assert_nothing_extracted(tmp_path: Path, *outside: Path) -> None:
    for path in outside:
        assert not path.exists(), path
    assert not datasets_dir().exists() or list(datasets_dir().iterdir()) == []


@pytest.mark.parametrize("evil, message", [
    ("../evil.txt", r"climbs out with '\.\.'"),
    ("a/../../evil.txt", r"climbs out"),
    ("..\\evil.txt", r"climbs out"),
    ("C:/evil.txt", "absolute path"),
    ("C:\\evil.txt", "absolute path"),
    ("ABSOLUTE", "absolute path"),
])
def test_zip_entries_escaping_the_target_reject_the_whole_zip(evil, message, tmp_path):
    if evil == "ABSOLUTE":
        evil = str(tmp_path / "evil.txt")
    path = make_zip(tmp_path / "zips" / "evil.zip", {"a/1.png": png_bytes(1), "b/2.png": png_bytes(2), evil: b"pwned"})
    with pytest.raises(PTMError, match=message) as info:
        load(f"zip:{path}")
    assert "evil.zip rejected" in str(info.value) and "\n" not in str(info.value)
    _assert_nothing_extracted(tmp_path, tmp_path / "evil.txt", tmp_path / "zips" / "evil.txt",
                              Path(os.environ["PTM_DATA_DIR"]) / "evil.txt")
    with pytest.raises(PTMError, match=message):  # an upload is refused up front too
        ingest_upload(path.read_bytes(), "evil.zip")


def test_symlink_entries_are_rejected(tmp_path):
    link = zipfile.ZipInfo("a/link.png")
    link.create_system = 3
    link.external_attr = (0o120777 << 16)
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/1.png", png_bytes(1))
        zf.writestr("b/1.png", png_bytes(2))
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(PTMError, match="symbolic link"):
        load(f"zip:{path}")
    _assert_nothing_extracted(tmp_path)


def test_zip_bomb_by_compression_ratio(tmp_path):
    path = make_zip(tmp_path / "bomb.zip", {"a/1.png": png_bytes(1), "b/1.png": png_bytes(2), "a/zeros.png": bytes(3 * 1024**2)})
    info = zipfile.ZipFile(path).getinfo("a/zeros.png")
    assert info.file_size / info.compress_size > 200
    with pytest.raises(PTMError, match=r"zeros.png' expands [\d,]+:1 \(zip bomb\?\)"):
        load(f"zip:{path}")
    _assert_nothing_extracted(tmp_path)


def test_zip_limits_on_files_and_bytes_from_the_env(tmp_path, monkeypatch):
    path = make_zip(tmp_path / "many.zip", {f"{c}/{i}.png": png_bytes(i) for c in "ab" for i in range(3)})
    monkeypatch.setenv("PTM_ZIP_MAX_FILES", "5")
    with pytest.raises(PTMError, match="6 entries, over the 5 limit \\(PTM_ZIP_MAX_FILES\\)"):
        load(f"zip:{path}")
    monkeypatch.setenv("PTM_ZIP_MAX_FILES", "6")
    monkeypatch.setenv("PTM_ZIP_MAX_BYTES", "200")
    with pytest.raises(PTMError, match="over the .* MB limit \\(PTM_ZIP_MAX_BYTES\\)"):
        load(f"zip:{path}")
    _assert_nothing_extracted(tmp_path)
    monkeypatch.delenv("PTM_ZIP_MAX_BYTES")
    assert len(load(f"zip:{path}")) == 6


@pytest.mark.parametrize("env, entries, message", [
    ({"PTM_ZIP_MAX_BYTES": "1000"}, {"a/1.bin": b"x" * 600, "b/2.bin": b"y" * 600}, "unpacks to over"),
    ({"PTM_ZIP_MAX_FILES": "1"}, {"a/1.bin": b"x", "b/2.bin": b"y"}, "over 1 files"),
    ({}, {"a/zeros.bin": bytes(3 * 1024**2)}, "expands (beyond|over)"),
])
def test_limits_are_enforced_while_streaming_too(env, entries, message, tmp_path, monkeypatch):
    """Headers can lie: with the up-front check disabled, the bytes written still hit the limits."""
    monkeypatch.setattr(ingest, "check_members", lambda *args: None)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = make_zip(tmp_path / "liar.zip", entries)
    with pytest.raises(PTMError, match=message):
        extract_zip(path)
    _assert_nothing_extracted(tmp_path)

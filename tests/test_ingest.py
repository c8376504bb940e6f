"""Bad input never breaks a load: odd images, corrupt files, hostile zips, oversize uploads, paths."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ptm_core.base.uploads import upload_name
from PIL import Image

from ingest_helpers import MODE_CASES, datasets_dir, encode, load, make_folder, make_zip, png_bytes, skip_map, write
from ptm_core.base.errors import PTMError
from ptm_core.data.imaging import ImageRejected, open_rgb, to_rgb
from ptm_core.data.ingest import allowed_roots, ingest_upload


# --------------------------------------------------------------------------- image modes

@pytest.mark.parametrize("case", sorted(MODE_CASES))
def test_every_mode_decodes_to_rgb_uint8(case, tmp_path):
    data, expected = MODE_CASES[case]
    path = write(tmp_path / "img.bin", data)
    for source in (path, data):
        img = open_rgb(source)
        assert img.mode == "RGB"
        pixels = np.asarray(img)
        assert pixels.dtype == np.uint8
        for x, rgb in enumerate(expected):
            assert np.abs(pixels[0, x].astype(int) - rgb).max() <= 2, (case, x, pixels[0, x], rgb)


def test_in_memory_high_bit_depth_modes_are_scaled_not_clipped():
    as_int = Image.fromarray(np.array([[0, 65535, 1000]], dtype=np.int32), "I")
    assert np.asarray(to_rgb(as_int))[0, :, 0].tolist() == [0, 255, 4]  # 16-bit data in an "I" image
    eight_bit_in_int = Image.fromarray(np.array([[0, 200]], dtype=np.int32), "I")
    assert np.asarray(to_rgb(eight_bit_in_int))[0, :, 0].tolist() == [0, 200]
    unit_float = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert np.asarray(to_rgb(unit_float))[0, :, 0].tolist() == [0, 128, 255]


def test_folder_of_mixed_modes_all_come_back_rgb(tmp_path):
    root = tmp_path / "mixed"
    for i, case in enumerate(sorted(MODE_CASES)):
        suffix = ".jpg" if "jpeg" in case else ".tif" if "tiff" in case else ".png"
        write(root / ("odd" if i % 2 else "even") / f"{i}{suffix}", MODE_CASES[case][0])
    ds = load(f"folder:{root}")
    assert len(ds) == len(MODE_CASES) and ds.skipped == []
    for i in range(len(ds)):
        img = ds.image(i)
        assert img.mode == "RGB" and np.asarray(img).dtype == np.uint8


# --------------------------------------------------------------------------- corrupt / non-image files

def test_corrupt_images_are_skipped_and_listed(tmp_path):
    root = make_folder(tmp_path / "data", {"cat": 2, "dog": 2})
    write(root / "cat" / "garbage.png", os.urandom(300))
    write(root / "dog" / "half.png", png_bytes(99, size=(32, 32))[:60])  # header fine, chunks cut off
    write(root / "dog" / "empty.jpg", b"")
    ds = load(f"folder:{root}")
    assert len(ds) == 4 and ds.class_counts() == {"cat": 2, "dog": 2}
    skips = skip_map(ds)
    assert set(skips) == {"cat/garbage.png", "dog/half.png", "dog/empty.jpg"}
    assert "not an image" in skips["cat/garbage.png"]
    assert all(reason and "\n" not in reason for reason in skips.values())


def test_non_image_files_among_images_are_skipped_and_listed(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    write(root / "a" / "notes.txt", b"hello")
    write(root / "b" / "looks_like.png", b"just text, not a png")
    write(root / "b" / "Thumbs.db", b"\x00" * 10)
    write(root / "stray.png", png_bytes())  # not inside a class folder
    write(root / "a" / "._a0.png", b"macOS resource fork")  # tool debris: ignored silently
    ds = load(f"folder:{root}")
    assert len(ds) == 4
    skips = skip_map(ds)
    assert set(skips) == {"a/notes.txt", "b/looks_like.png", "b/Thumbs.db", "stray.png"}
    assert "not an image file (.txt)" in skips["a/notes.txt"]
    assert "class folder" in skips["stray.png"]


def test_truncated_image_is_skipped_at_load_and_a_later_change_is_a_one_line_error(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    photo = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    jpeg = encode(Image.fromarray(photo), "JPEG")
    write(root / "a" / "truncated.jpg", jpeg[:2000])
    write(root / "a" / "good.jpg", jpeg)
    ds = load(f"folder:{root}")
    assert "corrupt image" in dict(ds.skipped)["a/truncated.jpg"]
    write(root / "a" / "good.jpg", jpeg[:2000])  # truncated after the load
    with pytest.raises(PTMError, match="Could not read image a/good.jpg: changed since") as info:
        ds.image(ds.ids.index("a/good.jpg"))
    assert "\n" not in str(info.value)


def test_nothing_usable_is_a_ptm_error(tmp_path):
    root = tmp_path / "junk"
    write(root / "a" / "x.png", b"nope")
    write(root / "b" / "y.png", b"nope")
    with pytest.raises(PTMError, match="No usable images .* all 2 entries were skipped"):
        load(f"folder:{root}")


def test_one_class_is_a_ptm_error(tmp_path):
    with pytest.raises(PTMError, match="needs at least two classes; found only 'solo'"):
        load(f"folder:{make_folder(tmp_path / 'one', {'solo': 3})}")
    # a second class whose every file is unusable does not count
    root = make_folder(tmp_path / "two", {"good": 3})
    write(root / "broken" / "b.png", b"not a png")
    with pytest.raises(PTMError, match="at least two classes"):
        load(f"folder:{root}")


# --------------------------------------------------------------------------- decompression bombs

@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_images_are_skipped_with_the_limit_read_at_call_time(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})  # 8x8 = 64 pixels each
    write(root / "a" / "warn_zone.png", png_bytes(size=(12, 12)))  # 144 px: Pillow only warns (1x-2x)
    write(root / "b" / "error_zone.png", png_bytes(size=(40, 40)))  # 1600 px: Pillow raises (> 2x)
    assert load(f"folder:{root}").skipped == []  # default limit: all fine
    monkeypatch.setenv("PTM_MAX_IMAGE_PIXELS", "100")
    ds = load(f"folder:{root}")
    assert len(ds) == 4
    skips = skip_map(ds)
    assert set(skips) == {"a/warn_zone.png", "b/error_zone.png"}
    assert all("too many pixels" in r and "PTM_MAX_IMAGE_PIXELS" in r for r in skips.values())
    with pytest.raises(ImageRejected, match="too many pixels"):
        open_rgb(root / "b" / "error_zone.png")
    monkeypatch.setenv("PTM_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(PTMError, match="PTM_MAX_IMAGE_PIXELS must be a positive integer"):
        open_rgb(root / "a" / "a0.png")


# --------------------------------------------------------------------------- allowed roots

def test_folder_outside_the_allowed_roots_is_refused(tmp_path, monkeypatch):
    allowed = tmp_path / "allowed"
    inside = make_folder(allowed / "data", {"a": 2, "b": 2})
    outside = make_folder(tmp_path / "elsewhere", {"a": 2, "b": 2})
    monkeypatch.setenv("PTM_ALLOWED_ROOTS", str(allowed))
    assert len(load(f"folder:{inside}")) == 4
    with pytest.raises(PTMError, match="outside the allowed folders.*PTM_ALLOWED_ROOTS") as info:
        load(f"folder:{outside}")
    assert str(outside) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(PTMError, match="outside the allowed"):  # a missing path outside says nothing more
        load(f"folder:{tmp_path / 'elsewhere' / 'missing'}")
    monkeypatch.setenv("PTM_ALLOWED_ROOTS", os.pathsep.join([str(allowed), str(tmp_path / "elsewhere")]))
    assert len(load(f"folder:{outside}")) == 4


def test_symlinks_are_judged_by_where_they_point(tmp_path, monkeypatch):
    allowed = tmp_path / "allowed"
    outside = make_folder(tmp_path / "elsewhere", {"a": 2, "b": 2})
    inside = make_folder(allowed / "data", {"a": 2, "b": 2})
    (allowed / "link").symlink_to(outside, target_is_directory=True)
    (inside / "a" / "sneaky.png").symlink_to(outside / "a" / "a0.png")
    monkeypatch.setenv("PTM_ALLOWED_ROOTS", str(allowed))
    with pytest.raises(PTMError, match="outside the allowed"):
        load(f"folder:{allowed / 'link'}")
    ds = load(f"folder:{inside}")
    assert len(ds) == 4 and "outside the allowed" in skip_map(ds)["a/sneaky.png"]


def test_csv_layout_symlinks_are_judged_too(tmp_path, monkeypatch):
    allowed = tmp_path / "allowed"
    secret = write(tmp_path / "elsewhere" / "secret.png", png_bytes(5))
    root = allowed / "flat"
    for name in ("a.png", "b.png", "c.png"):
        write(root / name, png_bytes(9))
    (root / "s.png").symlink_to(secret)
    write(root / "labels.csv", b"filename,label\na.png,x\nb.png,y\nc.png,y\ns.png,x\n")
    monkeypatch.setenv("PTM_ALLOWED_ROOTS", str(allowed))
    ds = load(f"folder:{root}")
    assert len(ds) == 3 and "outside the allowed" in skip_map(ds)["s.png"]


def test_default_roots_are_the_data_dir_and_the_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("PTM_ALLOWED_ROOTS")
    monkeypatch.chdir(tmp_path)
    roots = allowed_roots()
    assert Path(os.environ["PTM_DATA_DIR"]).resolve() in roots and Path.cwd().resolve() in roots
    with pytest.raises(PTMError, match="outside"):
        load("folder:/etc")


def test_zip_outside_the_allowed_roots_is_refused(tmp_path, monkeypatch):
    path = make_zip(tmp_path / "elsewhere" / "d.zip", {"a/1.png": png_bytes(1), "b/2.png": png_bytes(2)})
    monkeypatch.setenv("PTM_ALLOWED_ROOTS", str(tmp_path / "allowed"))
    with pytest.raises(PTMError, match="outside the allowed folders.*PTM_ALLOWED_ROOTS"):
        load(f"zip:{path}")
    assert not datasets_dir().exists()


# --------------------------------------------------------------------------- uploads

def test_upload_over_the_size_limit(monkeypatch):
    monkeypatch.setenv("PTM_UPLOAD_MAX_BYTES", str(1024**2))
    with pytest.raises(PTMError, match=r"big.zip: upload is 2 MB, over the 1 MB limit \(PTM_UPLOAD_MAX_BYTES\)"):
        ingest_upload(b"\0" * (2 * 1024**2), "big.zip")
    assert not (Path(os.environ["PTM_DATA_DIR"]) / "uploads").exists()


def test_upload_is_saved_by_content_and_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("PTM_ALLOWED_ROOTS", str(tmp_path / "nowhere"))  # the data dir is always allowed
    data = make_zip(tmp_path / "up.zip", {"x/1.png": png_bytes(1), "y/2.png": png_bytes(2)}).read_bytes()
    spec = ingest_upload(data, "my photos.zip")
    saved = Path(spec.removeprefix("zip:"))
    assert spec.startswith("zip:") and saved.parent == Path(os.environ["PTM_DATA_DIR"]) / "uploads"
    assert saved.read_bytes() == data and ingest_upload(data, "again.zip") == spec
    # The zip and the sidecar that keeps the name it was uploaded under (the latest); no temp files left.
    assert sorted(p.name for p in saved.parent.iterdir()) == sorted([saved.name, f".{saved.stem}.json"])
    assert upload_name(saved) == "again.zip"
    ds = load(spec)
    assert ds.class_names == ["x", "y"] and len(ds) == 2
    with pytest.raises(PTMError, match="notes.txt is not a zip file"):
        ingest_upload(b"plain text", "notes.txt")


def test_limit_subset_keeps_the_skip_list(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 4, "b": 4})
    write(root / "a" / "bad.png", b"nope")
    ds = load(f"folder:{root}", limit=4)
    assert len(ds) == 4 and skip_map(ds) == {"a/bad.png": "not an image Pillow can read"}

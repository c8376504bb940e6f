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

from ptm_core.base import files
from ptm_core.runs import artifacts
from ptm_core.runs.artifacts import load_npz, npz_intact, save_npz

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
    old.with_name("old.npz.sha256").write_text(files.file_sha256(old))
    assert npz_intact(old) and load_npz(old)[0]["features"].tolist() == [1, 1, 1]


# --------------------------------------------------------------------------- 4: a shared cache entry, own identity

def _twin_folders(tmp_path: Path) -> tuple[Path, Path]:
    """Two folders with the same 12 usable images and a different broken file each."""
    from ingest_helpers import make_folder, write

    alpha, beta = make_folder(tmp_path / "alpha", {"a": 6, "b": 6}), make_folder(tmp_path / "beta", {"a": 6, "b": 6})
    write(alpha / "a" / "broken-alpha.png", b"not a png")
    write(beta / "b" / "broken-beta.jpg", b"not a jpeg either")
    return alpha, beta


def test_4_a_cached_extraction_reports_its_own_dataset_and_skip_list(tmp_path, tiny, one_torch_thread):
    from ptm_core.base.configs import DatasetConfig
    from ptm_core.data.types import Dataset, ItemUnreadable
    from ptm_core.features.featureset import FeatureSet
    from ptm_core.features.extraction import extract

    alpha, beta = _twin_folders(tmp_path)
    real_image = Dataset.image

    def b0_fails_to_decode(self, i, *args, **kwargs):  # fails at decode in both folders alike: the same bytes
        if self.ids[i] == "b/b0.png":
            raise ItemUnreadable(self.ids[i], "truncated pixel data")
        return real_image(self, i, *args, **kwargs)

    Dataset.image = b0_fails_to_decode
    try:
        first = extract(DatasetConfig(f"folder:{alpha}"), tiny.backbone(), tiny.extraction())
    finally:
        Dataset.image = real_image
    second = extract(DatasetConfig(f"folder:{beta}"), tiny.backbone(), tiny.extraction())
    assert second.meta["cache_hit"] and second.key == first.key and len(second.ids) == 11
    assert second.meta["dataset"] == f"folder:{beta}"
    assert dict(map(tuple, second.meta["skipped"])) == {"b/broken-beta.jpg": "not an image Pillow can read",
                                                        "b/b0.png": "truncated pixel data"}
    assert second.meta["n_skipped"] == 2
    assert first.meta["dataset"] == f"folder:{alpha}" and "a/broken-alpha.png" in dict(map(tuple, first.meta["skipped"]))
    out = tmp_path / "beta.npz"
    second.to_npz(out)
    assert FeatureSet.from_npz(out).meta["dataset"] == f"folder:{beta}"  # what the npz says, too


# --------------------------------------------------------------------------- 6: a cache that cannot be written

def test_6_a_full_disk_still_delivers_the_features_and_says_they_were_not_cached(tmp_path, tiny, capsys, monkeypatch):
    from ptm_core.cli import commands as cli
    from ptm_core.features import featureset
    from ptm_core.features.featureset import FeatureSet

    data_dir = Path(os.environ["PTM_DATA_DIR"]).resolve()
    real_save = featureset.save_npz

    def full_data_disk(path, *args, **kwargs):
        if Path(path).resolve().is_relative_to(data_dir):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(featureset, "save_npz", full_data_disk)
    out = tmp_path / "elsewhere" / "f.npz"
    out.parent.mkdir()
    code = cli.main(["extract", "--backbone", tiny.model, "--weights", "random", "--dataset", "digits", "--limit",
                     "30", "--image-size", "32", "--device", "cpu", "--precision", "fp32", "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert err.strip().startswith("warning: the features could not be cached (No space left on device)")
    assert len(err.strip().splitlines()) == 1
    saved = FeatureSet.from_npz(out, discard_invalid=False)
    assert saved is not None and saved.features.shape[0] == 30 and saved.meta["cached"] is False
    assert not list((data_dir / "features").glob("*.npz"))


def test_6_when_neither_cache_nor_out_can_be_written_the_message_does_not_promise_the_cache(tmp_path):
    from ptm_core.cli import commands as cli
    from ptm_core.base.errors import PTMError

    def fails(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(PTMError, match="could not be cached either") as info:
        cli._write_output(tmp_path / "x.npz", fails, "abc", cached=False)
    assert "kept in the cache" not in str(info.value)


# --------------------------------------------------------------------------- 3: the app's storage is no one's folder

def _uploaded(tmp_path: Path) -> tuple[str, Path]:
    """An upload as the app stores it, loaded once: its zip under uploads/, its extraction under datasets/."""
    from ingest_helpers import load, make_zip, png_bytes
    from ptm_core.data import ingest_upload

    data = make_zip(tmp_path / "mine.zip", {"cats/1.png": png_bytes(1), "dogs/2.png": png_bytes(2)}).read_bytes()
    spec = ingest_upload(data, "mine.zip")
    load(spec)
    (extracted,) = [p for p in (Path(os.environ["PTM_DATA_DIR"]) / "datasets").iterdir() if not p.name.startswith(".")]
    return spec, extracted


@pytest.mark.parametrize("spelling", ["datasets", "extraction", "data", "dotdot", "symlink", "uploads"])
def test_3_another_sessions_uploads_cannot_be_listed_or_loaded_as_a_folder(spelling, tmp_path):
    from ingest_helpers import load
    from ptm_core.base.errors import PTMError

    _, extracted = _uploaded(tmp_path)
    data = Path(os.environ["PTM_DATA_DIR"])
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(data / "datasets")
    root = {"datasets": data / "datasets", "extraction": extracted, "data": data, "uploads": data / "uploads",
            "dotdot": tmp_path / "elsewhere" / ".." / data.name / "datasets" / extracted.name,
            "symlink": tmp_path / "link" / extracted.name}[spelling]
    with pytest.raises(PTMError, match="own data folder") as info:
        load(f"folder:{root}")
    assert extracted.name not in str(info.value).replace(str(root), "")  # says nothing of what is in there


def test_3_uploads_still_load_and_nothing_else_in_the_data_folder_does(tmp_path):
    from ingest_helpers import load, make_zip, png_bytes
    from ptm_core.base.errors import PTMError

    spec, extracted = _uploaded(tmp_path)
    assert load(spec).class_names == ["cats", "dogs"]  # the app's own zip: path as ingest_upload gave it
    planted = make_zip(Path(os.environ["PTM_DATA_DIR"]) / "features" / "other.zip",
                       {"a/1.png": png_bytes(1), "b/2.png": png_bytes(2)})
    with pytest.raises(PTMError, match="own data folder"):
        load(f"zip:{planted}")


def test_3_a_user_folder_that_contains_or_links_into_the_data_folder_never_reads_it(tmp_path):
    from ingest_helpers import load, make_folder, skip_map

    _, extracted = _uploaded(tmp_path)
    make_folder(tmp_path, {"a": 2, "b": 2})  # tmp_path is an allowed root and holds the data folder, ptm-data/
    (tmp_path / "a" / "stolen.png").symlink_to(extracted / "cats" / "1.png")
    ds = load(f"folder:{tmp_path}")
    assert ds.class_names == ["a", "b"] and len(ds) == 4
    skipped = skip_map(ds)
    assert "own data folder" in skipped["ptm-data/"] and "own data folder" in skipped["a/stolen.png"]


# --------------------------------------------------------------------------- 5: an extraction is complete or not used

def _sixteen(tmp_path: Path) -> Path:
    from ingest_helpers import make_zip, png_bytes

    return make_zip(tmp_path / "d.zip", {f"{c}/{i}.png": png_bytes(10 * i + (c == "b")) for c in "ab" for i in range(8)})


@pytest.mark.parametrize("damage", ["five files gone", "no marker (an older extraction)"])
def test_5_an_extraction_missing_files_is_extracted_again(damage, tmp_path):
    from ingest_helpers import load
    from ptm_core.data.completion import MARKER

    path = _sixteen(tmp_path)
    assert len(load(f"zip:{path}")) == 16
    (extracted,) = [p for p in (Path(os.environ["PTM_DATA_DIR"]) / "datasets").iterdir() if not p.name.startswith(".")]
    if damage == "five files gone":  # what a clean-up killed half-way leaves
        for victim in sorted(extracted.rglob("*.png"))[:5]:
            victim.unlink()
    else:
        (extracted / MARKER).unlink()
    assert len(load(f"zip:{path}")) == 16
    assert [p.name for p in extracted.parent.iterdir()] == [extracted.name]  # nothing set aside left behind


def test_5_a_reused_extraction_meets_todays_zip_limits(tmp_path, monkeypatch):
    from ingest_helpers import load
    from ptm_core.base.errors import PTMError

    path = _sixteen(tmp_path)
    load(f"zip:{path}")
    monkeypatch.setenv("PTM_ZIP_MAX_FILES", "10")
    with pytest.raises(PTMError, match="PTM_ZIP_MAX_FILES"):
        load(f"zip:{path}")
    assert not [p for p in (Path(os.environ["PTM_DATA_DIR"]) / "datasets").iterdir()]  # refused: not kept

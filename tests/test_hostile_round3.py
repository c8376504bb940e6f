"""Hostile input, third round (item 8): what used to be a traceback or a foreign message is one line of ours.

The CLI runs in-process, as in test_hostile_cli.py; the app side is tests/test_markup_escape.py.
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ingest_helpers import make_folder, make_zip, png_bytes
from ptm_core import data
from ptm_core.base.files import file_sha256
from ptm_core.base.configs import DatasetConfig
from ptm_core.base.errors import PTMError
from test_hostile_cli import _features_npz, one_line_error, run

LONG = "n" * 300


def _npz_with_header(path: Path, shape: tuple, descr: str = "<f8", stored: bytes = b"\0" * 64) -> Path:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    labels = io.BytesIO()
    np.save(labels, np.zeros(3, np.int64))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("features.npy", header.getvalue() + stored)
        zf.writestr("labels.npy", labels.getvalue())
    return path


@pytest.mark.parametrize("spec", [f"folder:{{tmp}}/{LONG}", f"zip:{{tmp}}/{LONG}.zip", "folder:{tmp}/a\x00b",
                                  "zip:{tmp}/a\x00b.zip"])
def test_impossible_dataset_paths_are_one_line(spec, tmp_path):
    with pytest.raises(PTMError, match="NUL character|at most 255"):
        data.load_dataset(DatasetConfig(spec.format(tmp=tmp_path)))


@pytest.mark.parametrize("argv", [("probe", "--features", f"{{tmp}}/{LONG}.npz"),
                                  ("map", "--features", "{tmp}/f.npz", "--out", f"{{tmp}}/{LONG}.csv"),
                                  ("extract", "--backbone", "b", "--dataset", "digits", "--out", f"{{tmp}}/{LONG}.npz"),
                                  ("probe", "--features", f"{{tmp}}/{LONG}/f.npz")])
def test_a_300_character_name_in_features_or_out_is_one_line(argv, tmp_path, capsys):
    _features_npz(tmp_path / "f.npz")
    code, _, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert "at most 255" in one_line_error(code, err) and "Errno" not in err


def test_features_outside_the_allowed_roots_are_refused(tmp_path_factory, capsys):
    outside = _features_npz(tmp_path_factory.mktemp("elsewhere") / "f.npz")
    code, _, err = run(capsys, "probe", "--features", str(outside))
    assert "outside the allowed folders" in one_line_error(code, err)


def test_a_read_only_data_dir_is_one_line(tmp_path, capsys, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == tmp_path / "ro" else real_access(p, mode))
    code, _, err = run(capsys, "--data-dir", str(tmp_path / "ro"), "datasets")
    assert "is read-only" in one_line_error(code, err)


def test_a_file_where_an_extraction_belongs_is_replaced(tmp_path):
    archive = make_zip(tmp_path / "d.zip", {f"{c}/{c}{i}.png": png_bytes(40 * i + 10) for c in "ab" for i in range(3)})
    blocker = Path(os.environ["PTM_DATA_DIR"]) / "datasets" / file_sha256(archive)
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    for _ in range(2):  # failed on every later run
        assert len(data.load_dataset(DatasetConfig(f"zip:{archive}"))) == 6
    assert blocker.is_dir()


def test_a_file_where_the_extractions_folder_belongs_is_one_line(tmp_path):
    archive = make_zip(tmp_path / "d.zip", {f"{c}/{c}{i}.png": png_bytes(40 * i + 10) for c in "ab" for i in range(3)})
    blocker = Path(os.environ["PTM_DATA_DIR"]) / "datasets"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("in the way")
    with pytest.raises(PTMError, match="is a file, where PTM Explorer keeps unpacked zips"):
        data.load_dataset(DatasetConfig(f"zip:{archive}"))


def test_a_bogus_pretrained_tag_is_one_line(capsys):
    code, _, err = run(capsys, "extract", "--backbone", "resnet18.bogus_tag", "--weights", "random", "--dataset",
                       "shapes:n=20,classes=2,size=32", "--out", "x.npz")
    assert "Unknown pretrained tag 'bogus_tag' for resnet18" in one_line_error(code, err)


def test_mps_without_mps_is_one_line(monkeypatch):
    from ptm_core.features.extraction import resolve_device

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(PTMError, match="no Apple GPU"):
        resolve_device("mps")


def test_a_checkpoint_of_nan_weights_is_one_line(tiny, tmp_path, capsys):
    import timm
    from safetensors.torch import save_file

    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
             for k, v in timm.create_model("resnet10t", pretrained=False).state_dict().items()}
    save_file(state, tmp_path / "nan.safetensors")
    code, _, err = run(capsys, "extract", "--backbone", "resnet10t", "--weights", str(tmp_path / "nan.safetensors"),
                       "--dataset", f"folder:{make_folder(tmp_path / 'img', {'a': 4, 'b': 4})}", "--image-size", "32",
                       "--out", str(tmp_path / "o.npz"))
    assert "holds NaN or infinite weights" in one_line_error(code, err)


def test_batch_norm_folding_of_a_nan_model_is_one_line():
    from ptm_core.models.precision import fold_batchnorms
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    torch.nn.init.constant_(model[0].weight, float("nan"))
    with pytest.raises(PTMError, match="NaN or infinite outputs"):
        fold_batchnorms(model, lambda m, x: m(x).flatten(1), (3, 8, 8))


def test_an_npz_header_declaring_a_terabyte_is_refused_before_allocating(tmp_path, capsys):
    path = _npz_with_header(tmp_path / "huge.npz", (2**31, 64))
    code, _, err = run(capsys, "probe", "--features", str(path))
    assert "declares" in one_line_error(code, err) and "MemoryError" not in err


def test_an_npz_declaring_more_than_the_load_limit_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PTM_MAX_LOAD_BYTES", "1000")
    path = _npz_with_header(tmp_path / "big.npz", (100, 2), stored=b"\0" * 1600)
    code, _, err = run(capsys, "probe", "--features", str(path))
    assert "over the" in one_line_error(code, err) and "PTM_MAX_LOAD_BYTES" in err


def test_float64_features_beyond_float32_are_said_in_our_words(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "f64.npz", features=rng.normal(size=(24, 4)) * 1e300, labels=np.arange(24) % 2)
    code, _, err = run(capsys, "probe", "--features", str(tmp_path / "f64.npz"))
    assert "beyond float32" in one_line_error(code, err)

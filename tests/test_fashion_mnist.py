"""`fashion-mnist`: Debian's dataset-fashion-mnist read from its idx files, torchvision's copy as the fallback, and
one line (how to get it) where neither is here.

Tests that read the real files skip where the package is not installed, and fail instead under PTM_REQUIRE_FASHION=1
(.ci/run sets it where its install worked), so a CI run never passes by skipping them.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ptm_core.base.configs import DatasetConfig
from ptm_core.base.errors import PTMError
from ptm_core.data import list_datasets, load_dataset
from ptm_core.data import fashion

REPO_ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz")


@pytest.fixture()
def installed() -> Path:
    """The real files (Debian's package), or a skip that says how to get them; a failure under PTM_REQUIRE_FASHION."""
    directory = fashion.fashion_dir()
    if not fashion.installed(directory):
        if os.environ.get("PTM_REQUIRE_FASHION"):
            pytest.fail(f"Fashion-MNIST is required here (PTM_REQUIRE_FASHION) but not in {directory}")
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return directory


@pytest.fixture()
def absent(tmp_path, monkeypatch) -> Path:
    """No Debian files, no torchvision copy (the data dir is the test's own, empty), and no network."""
    from ptm_core.data import tv

    missing = tmp_path / "no-fashion-here"
    monkeypatch.setenv(fashion.DIR_ENV, str(missing))
    monkeypatch.setattr(tv, "reachable", lambda host, *a, **k: False)
    return missing


def idx_bytes(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    """An idx file read independently of the loader: struct for the header, numpy for the data."""
    raw = gzip.decompress(path.read_bytes())
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype == 0x08
    dims = struct.unpack(f">{ndim}I", raw[4: 4 + 4 * ndim])
    return dims, np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def copy_files(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for name in FILES:
        shutil.copyfile(source / name, target / name)
    return target


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message, message
    return message


# --------------------------------------------------------------------------- the real files

def test_a_limit_of_500_is_a_stratified_subset_of_28px_grey_clothes(installed):
    ds = load_dataset(DatasetConfig("fashion-mnist", limit=500, seed=0))
    assert len(ds) == 500 and ds.class_names == CLASSES
    assert ds.class_counts() == {name: 50 for name in CLASSES}  # 7,000 of each in the whole: 50 each in 500
    assert len(set(ds.ids)) == 500
    assert all(i.split("/")[0] in ("train", "test") for i in ds.ids)
    assert {i.split("/")[0] for i in ds.ids} == {"train", "test"}  # drawn from all 70,000
    for k in (0, 250, 499):
        pixels = np.asarray(ds.image(k))
        assert ds.image(k).size == (28, 28) and pixels.shape == (28, 28, 3)
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()  # grey
    again = load_dataset(DatasetConfig("fashion-mnist", limit=500, seed=0))
    other = load_dataset(DatasetConfig("fashion-mnist", limit=500, seed=1))
    assert again.ids == ds.ids and again.fingerprint == ds.fingerprint
    assert other.ids != ds.ids and other.fingerprint != ds.fingerprint


def test_labels_and_pixels_are_the_idx_files(installed):
    ds = load_dataset(DatasetConfig("fashion-mnist", limit=300, seed=3))
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        dims, labels = idx_bytes(installed / f"{prefix}-labels-idx1-ubyte.gz")
        _, images = idx_bytes(installed / f"{prefix}-images-idx3-ubyte.gz")
        arrays[split] = labels, images
    assert len(arrays["train"][0]) == 60_000 and len(arrays["test"][0]) == 10_000
    for k, item_id in enumerate(ds.ids):
        split, index = item_id.split("/")
        labels, images = arrays[split]
        assert ds.labels[k] == labels[int(index)], item_id
        assert (np.asarray(ds.image(k))[..., 0] == images[int(index)]).all(), item_id
    first = load_dataset(DatasetConfig("fashion-mnist:train"))
    assert first.class_names[first.labels[0]] == "Ankle boot"  # the repo's README: the first training image


def test_the_whole_set_and_each_split(installed):
    started = time.perf_counter()
    whole = load_dataset(DatasetConfig("fashion-mnist"))
    seconds = time.perf_counter() - started
    assert len(whole) == 70_000 and whole.class_counts() == {name: 7_000 for name in CLASSES}
    assert len(set(whole.ids)) == 70_000 and whole.ids[0] == "train/00000" and whole.ids[-1] == "test/09999"
    assert seconds < 60, seconds  # about 1 s here; a hang or a per-image decode would show
    test = load_dataset(DatasetConfig("fashion-mnist:test"))
    assert len(test) == 10_000 and all(i.startswith("test/") for i in test.ids)
    assert test.fingerprint != whole.fingerprint and len(whole.fingerprint) == 16
    assert [e.unavailable() for e in list_datasets() if e.name == "fashion-mnist"] == [None]


def test_an_unknown_split_is_one_line():
    with pytest.raises(PTMError, match="splits all, train, test") as excinfo:
        load_dataset(DatasetConfig("fashion-mnist:validation"))
    one_line_error(excinfo)


def test_a_truncated_copy_is_refused_in_one_line(installed, tmp_path, monkeypatch):
    copy = copy_files(installed, tmp_path / "fashion")
    images = copy / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    monkeypatch.setenv(fashion.DIR_ENV, str(copy))
    with pytest.raises(PTMError) as excinfo:
        load_dataset(DatasetConfig("fashion-mnist", limit=500))
    message = one_line_error(excinfo)
    assert str(images) in message and "damaged" in message and "--reinstall dataset-fashion-mnist" in message
    assert load_dataset(DatasetConfig("fashion-mnist:test", limit=100)).class_names == CLASSES  # the intact split


@pytest.mark.slow
def test_torchvisions_copy_is_read_when_the_package_is_not_and_gives_the_same_data(installed, tmp_path, monkeypatch):
    from ptm_core.data import tv

    debian = load_dataset(DatasetConfig("fashion-mnist:test"))
    monkeypatch.setenv(fashion.DIR_ENV, str(tmp_path / "no-fashion-here"))
    raw = tv.tv_root() / "FashionMNIST" / "raw"  # where torchvision keeps its download, unzipped
    raw.mkdir(parents=True)
    for name in FILES:
        (raw / name.removesuffix(".gz")).write_bytes(gzip.decompress((installed / name).read_bytes()))
    monkeypatch.setattr(tv, "reachable", lambda *a, **k: pytest.fail("a download was attempted"))
    assert [e.unavailable() for e in list_datasets() if e.name == "fashion-mnist"] == [None]
    via_torchvision = load_dataset(DatasetConfig("fashion-mnist:test"))
    assert via_torchvision.fingerprint == debian.fingerprint and via_torchvision.ids == debian.ids
    assert (via_torchvision.labels == debian.labels).all()


# --------------------------------------------------------------------------- damaged files, without the real ones

def gz(path: Path, header: bytes, body: bytes = b"") -> None:
    path.write_bytes(gzip.compress(header + body, compresslevel=1))


def fake_set(directory: Path) -> Path:
    """Four files in the right places; each test spoils what it checks."""
    directory.mkdir()
    for name in FILES:
        (directory / name).write_bytes(b"")
    return directory


@pytest.mark.parametrize("header, body_bytes, reason", [
    (struct.pack(">4I", 0x0801, 60_000, 28, 28), 0, "magic number 0x00000801"),
    (struct.pack(">4I", 0x0803, 59_999, 28, 28), 0, "sizes (59999, 28, 28)"),
    (struct.pack(">4I", 0x0803, 60_000, 28, 28), 1000, "bytes missing"),
    (struct.pack(">4I", 0x0803, 60_000, 28, 28), 60_000 * 784 + 1, "trailing bytes"),
    (b"\x00\x00", 0, "shorter than its header"),
], ids=["magic", "sizes", "short", "trailing", "header"])
def test_a_damaged_idx_file_is_refused_in_one_line(tmp_path, monkeypatch, header, body_bytes, reason):
    directory = fake_set(tmp_path / "fake")
    gz(directory / "train-images-idx3-ubyte.gz", header, bytes(body_bytes))
    monkeypatch.setenv(fashion.DIR_ENV, str(directory))
    with pytest.raises(PTMError) as excinfo:
        load_dataset(DatasetConfig("fashion-mnist:train"))
    message = one_line_error(excinfo)
    assert reason in message and "train-images-idx3-ubyte.gz" in message, message


def test_a_file_that_is_not_gzip_and_a_label_out_of_range_are_refused(tmp_path, monkeypatch):
    directory = fake_set(tmp_path / "fake")
    (directory / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    monkeypatch.setenv(fashion.DIR_ENV, str(directory))
    with pytest.raises(PTMError, match="t10k-images-idx3-ubyte.gz is damaged") as excinfo:
        load_dataset(DatasetConfig("fashion-mnist:test"))
    one_line_error(excinfo)
    gz(directory / "t10k-images-idx3-ubyte.gz", struct.pack(">4I", 0x0803, 10_000, 28, 28), bytes(10_000 * 784))
    gz(directory / "t10k-labels-idx1-ubyte.gz", struct.pack(">2I", 0x0801, 10_000), bytes(9_999) + b"\x0a")
    with pytest.raises(PTMError, match="label 10, expected 0-9"):
        load_dataset(DatasetConfig("fashion-mnist:test"))


# --------------------------------------------------------------------------- absent: how to get it, in one line

def test_absent_it_says_how_to_get_it_in_one_line(absent):
    entry = next(e for e in list_datasets() if e.name == "fashion-mnist")
    assert entry.unavailable() == fashion.INSTALL_HINT
    assert "`apt-get install dataset-fashion-mnist`" in fashion.INSTALL_HINT and "torchvision" in fashion.INSTALL_HINT
    with pytest.raises(PTMError) as excinfo:
        load_dataset(DatasetConfig("fashion-mnist", limit=500))
    message = one_line_error(excinfo)
    assert message.startswith(fashion.INSTALL_HINT) and str(absent) in message and "offline?" in message
    others = {e.name: e.unavailable() for e in list_datasets() if e.name != "fashion-mnist"}
    assert set(others.values()) == {None}  # only optional data is ever marked missing


def test_absent_the_cli_probe_exits_with_that_line(absent, tmp_path, monkeypatch, capsys):
    from ptm_core.cli import commands as cli

    code = cli.main(["--data-dir", str(tmp_path / "data"), "probe", "--backbone", "tf_efficientnet_lite0",
                     "--weights", "bundled", "--dataset", "fashion-mnist", "--limit", "500", "--image-size", "32"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1, err
    assert err[0].startswith(f"error: {fashion.INSTALL_HINT}"), err


def test_absent_the_datasets_command_lists_it_with_the_hint(tmp_path):
    env = dict(os.environ, PTM_DATA_DIR=str(tmp_path / "data"), PYTHONDONTWRITEBYTECODE="1")
    env[fashion.DIR_ENV] = str(tmp_path / "missing")
    proc = subprocess.run([sys.executable, "-m", "ptm_core", "datasets", "--json"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["fashion-mnist"]["unavailable"] == fashion.INSTALL_HINT
    assert rows["digits"]["unavailable"] is None


def test_the_sidebar_marks_it_not_installed_and_says_how_to_get_it(absent):
    from test_app import _app

    at = _app()
    picker = at.selectbox(key="w_dataset")
    assert "fashion-mnist (not installed)" in picker.options and "digits" in picker.options
    assert not any(fashion.INSTALL_HINT.split(":")[0] in c.value for c in at.caption)
    picker.set_value("fashion-mnist").run()
    assert any("apt-get install dataset-fashion-mnist" in c.value for c in at.caption)
    at.switch_page("pages/datasets.py").run()
    assert not at.exception, at.exception
    line = next(m.value for m in at.markdown if "`fashion-mnist:ARG`" in m.value)
    assert "not installed" in line and "apt-get install dataset-fashion-mnist" in line


# --------------------------------------------------------------------------- a real run

@pytest.mark.slow
def test_a_probe_with_the_bundled_backbone_on_500_images(installed, tmp_path):
    env = dict(os.environ, PTM_DATA_DIR=str(tmp_path / "data"), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-m", "ptm_core", "probe", "--backbone", "tf_efficientnet_lite0",
                           "--weights", "bundled", "--dataset", "fashion-mnist", "--limit", "500", "--image-size",
                           "32", "--json"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["test_accuracy"] > 0.5, result  # chance is 0.1
    assert result["n_train"] + result["n_test"] == 500, result

"""tv:NAME[:SPLIT] torchvision datasets: local copies load offline, absent ones fail fast and clearly.

Nothing here touches the network: the connectivity probe is replaced, and the "present
locally" cases write tiny fakes in torchvision's own on-disk formats (MNIST raw idx files,
which torchvision only checks for existence; CIFAR-10 pickles, whose md5 check is patched).
"""
from __future__ import annotations

import inspect
import os
import pickle
import struct
import time
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torchvision.datasets as tvd

from ptm_core.data import tv as tv_datasets
from ptm_core.base.configs import DatasetConfig
from ptm_core.data import LazyItems, list_datasets, load_dataset
from ptm_core.base.errors import PTMError
from ptm_core.data.tv import SOURCES, parse_tv_arg, reachable, tv_root


def _load(spec: str, **kwargs):
    return load_dataset(DatasetConfig(spec, **kwargs))


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything probes the network; returns the list of probed hosts."""
    probed: list[str] = []

    def probe(host, *args, **kwargs):
        probed.append(host)
        return False

    monkeypatch.setattr(tv_datasets, "reachable", probe)
    return probed


# --------------------------------------------------------------------------- fakes on disk

def _idx_images(path: Path, images: np.ndarray) -> None:
    n, rows, cols = images.shape
    path.write_bytes(struct.pack(">IIII", 0x0803, n, rows, cols) + images.astype(np.uint8).tobytes())


def _idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes())


def _fake_mnist(n_train: int = 30, n_test: int = 10) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    raw = tv_root() / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    made = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        _idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        _idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
        made[split] = (images, labels)
    return made


def _fake_cifar10(per_batch: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder = tv_root() / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    made = {"train": ([], []), "test": ([], [])}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        data = rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8)
        labels = [(b + i) % 10 for i in range(per_batch)]
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": data, "labels": labels}, handle)
        split = "test" if name == "test_batch" else "train"
        made[split][0].append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        made[split][1].extend(labels)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer",
                                     "dog", "frog", "horse", "ship", "truck"]}, handle)
    return {k: (np.concatenate(v[0]), np.array(v[1])) for k, v in made.items()}


# --------------------------------------------------------------------------- offline failures

def test_absent_dataset_offline_fails_fast_with_a_clear_message(no_network, monkeypatch):
    def no_download(self):
        raise AssertionError("download attempted although the host was unreachable")

    monkeypatch.setattr(tvd.CIFAR10, "download", no_download)
    started = time.perf_counter()
    with pytest.raises(PTMError) as info:
        _load("tv:cifar10")
    message = str(info.value)
    assert time.perf_counter() - started < 5
    assert message.startswith(f"CIFAR10 is not in {tv_root()} and could not be downloaded (offline?")
    assert "mnist5k/digits/shapes/folder:PATH" in message and "\n" not in message
    assert no_network == ["www.cs.toronto.edu"]


def test_download_failure_after_a_good_probe_is_a_ptm_error(monkeypatch):
    monkeypatch.setattr(tv_datasets, "reachable", lambda host, *a, **k: True)

    def failing_download(self):
        raise URLError("connection reset by peer")

    monkeypatch.setattr(tvd.MNIST, "download", failing_download)
    with pytest.raises(PTMError, match=r"MNIST is not in .* could not be downloaded \(.*connection reset by peer.*\)"):
        _load("tv:mnist:test")


def test_the_connectivity_probe_is_bounded():
    started = time.perf_counter()
    assert reachable("192.0.2.1", 443, timeout=0.3) is False  # TEST-NET-1: never answers
    assert reachable("host.invalid", 443, timeout=0.3) is False  # reserved TLD: never resolves
    assert time.perf_counter() - started < 3


# --------------------------------------------------------------------------- present locally

def test_local_mnist_in_torchvisions_raw_format_loads_offline(no_network):
    made = _fake_mnist()
    ds = _load("tv:mnist")
    assert no_network == []  # found locally: no probe, no download
    assert ds.name == "tv:mnist:train" and len(ds) == 30 and isinstance(ds.items, LazyItems)
    np.testing.assert_array_equal(ds.labels, made["train"][1])
    assert ds.class_names[0] == "0 - zero" and len(ds.class_names) == 10
    img = ds.image(7)
    assert img.mode == "RGB" and img.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(img)[..., 0], made["train"][0][7])
    test = _load("tv:mnist:test")
    assert len(test) == 10 and test.fingerprint != ds.fingerprint
    assert _load("tv:mnist:train").fingerprint == ds.fingerprint


def test_a_limited_torchvision_dataset_stays_lazy_and_matches_the_full_one(no_network):
    made = _fake_mnist(n_train=40)
    full = _load("tv:mnist")
    sub = _load("tv:mnist", limit=20, seed=3)
    assert len(sub) == 20 and isinstance(sub.items, LazyItems)
    assert sub.class_counts() == {name: 2 for name in full.class_names}
    for j in (0, 11, 19):
        i = full.ids.index(sub.ids[j])
        assert sub.labels[j] == made["train"][1][i]
        np.testing.assert_array_equal(np.asarray(sub.image(j)), np.asarray(full.image(i)))
    nested = sub.subset(np.array([1, 0]))
    assert isinstance(nested.items, LazyItems) and nested.ids == [sub.ids[1], sub.ids[0]]


def test_local_cifar10_pickles_load_with_the_md5_check_patched(no_network, monkeypatch):
    # Real CIFAR files are md5-checked by torchvision; a fake cannot match, so only that check is patched.
    monkeypatch.setattr(tvd.cifar, "check_integrity", lambda *args, **kwargs: True)
    made = _fake_cifar10()
    ds = _load("tv:cifar10:test")
    assert no_network == [] and ds.name == "tv:cifar10:test"
    assert len(ds) == 4 and ds.class_names[:2] == ["airplane", "automobile"]
    np.testing.assert_array_equal(ds.labels, made["test"][1])
    np.testing.assert_array_equal(np.asarray(ds.image(2)), made["test"][0][2])
    train = _load("tv:cifar10")
    assert len(train) == 20 and train.name == "tv:cifar10:train"


# --------------------------------------------------------------------------- specs

@pytest.mark.parametrize("arg, message", [
    (None, "tv needs a dataset name"),
    ("imagenet", "NAME in cifar10, cifar100"),
    ("cifar10:validation", "tv:cifar10 has splits train, test; got 'validation'"),
    ("svhn:unlabeled", "splits train, test, extra"),
])
def test_bad_tv_specs(arg, message):
    with pytest.raises(PTMError, match=message):
        parse_tv_arg(arg)


def test_tv_spec_parsing_defaults_and_aliases():
    assert parse_tv_arg("CIFAR10")[2] == "train"
    assert parse_tv_arg("cifar100:test")[2] == "test"
    assert parse_tv_arg("oxfordiiitpet")[2] == "trainval"
    assert parse_tv_arg("oxfordiiitpet:train")[2] == "trainval"
    assert parse_tv_arg("flowers102:val")[2] == "val"
    assert {"tv", "zip", "folder"} <= {e.name for e in list_datasets()}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_sources_match_torchvision(name):
    source = SOURCES[name]
    cls = getattr(tvd, source.cls_name)
    assert source.host in inspect.getsource(cls), "probe host must be where torchvision downloads from"
    params = inspect.signature(cls.__init__).parameters
    assert source.split_arg in params and "download" in params
    if source.split_arg == "split":
        # every split we accept is one torchvision accepts (it validates with verify_str_arg)
        text = inspect.getsource(cls)
        assert all(f'"{s}"' in text or f"'{s}'" in text for s in source.splits)


def test_data_dir_holds_the_torchvision_root(tmp_path):
    assert tv_root() == Path(os.environ["PTM_DATA_DIR"]) / "torchvision"

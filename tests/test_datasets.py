"""Dataset registry, spec parsing, built-in datasets, folders and seeded stratified subsets."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ptm_core.base.configs import DatasetConfig
from ptm_core.data import list_datasets, load_dataset, parse_spec, stratified_subset
from ptm_core.base.errors import PTMError


# --------------------------------------------------------------------------- registry / specs

def test_registry_lists_the_builtin_datasets():
    entries = {e.name: e for e in list_datasets()}
    assert {"mnist5k", "digits", "shapes", "folder"} <= set(entries)
    assert entries["folder"].takes_argument and entries["shapes"].takes_argument
    assert not entries["mnist5k"].takes_argument and not entries["digits"].takes_argument
    assert all(e.description for e in entries.values())


@pytest.mark.parametrize("spec, name, arg", [
    ("mnist5k", "mnist5k", None),
    ("shapes", "shapes", None),
    ("shapes:", "shapes", None),
    ("shapes:n=10,classes=2", "shapes", "n=10,classes=2"),
    ("folder:/some/where:with:colons", "folder", "/some/where:with:colons"),
])
def test_parse_spec(spec, name, arg):
    entry, parsed = parse_spec(spec)
    assert entry.name == name
    assert parsed == arg


@pytest.mark.parametrize("spec", ["imagenet", "", "nope:arg", "MNIST5K"])
def test_unknown_spec_is_a_ptm_error(spec):
    with pytest.raises(PTMError, match="Unknown dataset"):
        parse_spec(spec)
    with pytest.raises(PTMError):
        load_dataset(DatasetConfig(spec))


# --------------------------------------------------------------------------- built-in datasets

def test_mnist5k_is_real_mnist_5000_images():
    ds = load_dataset(DatasetConfig("mnist5k"))
    assert len(ds) == 5000
    assert ds.class_names == [str(d) for d in range(10)]
    assert ds.class_counts() == {str(d): 500 for d in range(10)}
    img = ds.image(0)
    assert isinstance(img, Image.Image)
    assert img.mode == "RGB" and img.size == (28, 28)
    pixels = np.asarray(img)
    assert pixels.dtype == np.uint8 and pixels.max() > 100 and pixels.min() == 0  # a digit on black
    assert len(set(ds.ids)) == 5000 and len(ds.fingerprint) == 16


def test_digits():
    ds = load_dataset(DatasetConfig("digits"))
    assert len(ds) == 1797
    assert ds.class_names == [str(d) for d in range(10)]
    assert sorted(np.unique(ds.labels).tolist()) == list(range(10))
    img = ds.image(5)
    assert img.mode == "RGB" and img.size == (8, 8)
    assert np.asarray(img).max() <= 255 and np.asarray(img).max() > 200  # 0-16 scaled to 0-255
    # fingerprints are stable across loads
    assert load_dataset(DatasetConfig("digits")).fingerprint == ds.fingerprint


# --------------------------------------------------------------------------- shapes

SHAPES = "shapes:n=24,classes=3,size=32,seed={seed}"


def _pixels(ds):
    return np.stack([np.asarray(ds.image(i)) for i in range(len(ds))])


def test_shapes_same_seed_same_images():
    a = load_dataset(DatasetConfig(SHAPES.format(seed=1)))
    b = load_dataset(DatasetConfig(SHAPES.format(seed=1)))
    assert a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(_pixels(a), _pixels(b))
    np.testing.assert_array_equal(a.labels, b.labels)


def test_shapes_other_seed_differs():
    a = load_dataset(DatasetConfig(SHAPES.format(seed=1)))
    b = load_dataset(DatasetConfig(SHAPES.format(seed=2)))
    assert a.fingerprint != b.fingerprint
    assert not np.array_equal(_pixels(a), _pixels(b))


def test_shapes_options():
    ds = load_dataset(DatasetConfig(SHAPES.format(seed=0)))
    assert len(ds) == 24
    assert ds.class_names == ["circle", "square", "triangle"]
    assert ds.class_counts() == {"circle": 8, "square": 8, "triangle": 8}
    img = ds.image(0)
    assert img.mode == "RGB" and img.size == (32, 32)
    five = load_dataset(DatasetConfig("shapes:n=10,classes=5,size=16"))
    assert len(five.class_names) == 5 and len(five) == 10


@pytest.mark.parametrize("arg", [
    "n=abc", "foo=1", "n", "n=-5", "classes=1", "classes=9", "size=8", "n=2,classes=3", "n=10;classes=2",
])
def test_shapes_bad_option_is_a_ptm_error(arg):
    with pytest.raises(PTMError):
        load_dataset(DatasetConfig(f"shapes:{arg}"))


# --------------------------------------------------------------------------- folder:PATH

def _png(path, value, mode="RGB", size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    array = np.full((size[1], size[0], channels), value, dtype=np.uint8).squeeze()
    Image.fromarray(array, mode=mode).save(path)


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "images"
    # created out of order on purpose: classes must come back sorted
    _png(root / "zebra" / "z1.png", 10)
    _png(root / "zebra" / "z0.png", 20)
    _png(root / "apple" / "a0.png", 30)
    _png(root / "apple" / "a1.png", 40, mode="L")  # greyscale still comes back RGB
    _png(root / "apple" / "a2.png", 50)
    _png(root / "mango" / "m0.png", 60)
    _png(root / "mango" / "m1.png", 70)
    (root / "apple" / "notes.txt").write_text("not an image")
    _png(root / ".hidden" / "h0.png", 80)  # hidden folders are not classes
    return root


def test_folder_dataset(image_folder):
    ds = load_dataset(DatasetConfig(f"folder:{image_folder}"))
    assert ds.class_names == ["apple", "mango", "zebra"]
    assert len(ds) == 7
    assert ds.class_counts() == {"apple": 3, "mango": 2, "zebra": 2}
    expected = {"apple/a0.png": 0, "apple/a1.png": 0, "apple/a2.png": 0,
                "mango/m0.png": 1, "mango/m1.png": 1, "zebra/z0.png": 2, "zebra/z1.png": 2}
    got = {i.replace("\\", "/"): int(label) for i, label in zip(ds.ids, ds.labels)}
    assert got == expected
    for i in range(len(ds)):
        img = ds.image(i)
        assert img.mode == "RGB" and img.size == (12, 10)
    a1 = ds.ids.index(next(i for i in ds.ids if i.endswith("a1.png")))
    assert np.asarray(ds.image(a1))[0, 0].tolist() == [40, 40, 40]


def test_folder_fingerprint_follows_file_bytes(image_folder):
    before = load_dataset(DatasetConfig(f"folder:{image_folder}")).fingerprint
    assert load_dataset(DatasetConfig(f"folder:{image_folder}")).fingerprint == before
    _png(image_folder / "mango" / "m1.png", 71)  # same name, same size, other pixels
    after = load_dataset(DatasetConfig(f"folder:{image_folder}")).fingerprint
    assert after != before


def test_folder_errors(tmp_path):
    with pytest.raises(PTMError):
        load_dataset(DatasetConfig("folder"))
    with pytest.raises(PTMError, match="not found"):
        load_dataset(DatasetConfig(f"folder:{tmp_path / 'missing'}"))
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(PTMError, match="No images"):
        load_dataset(DatasetConfig(f"folder:{tmp_path / 'empty'}"))


# --------------------------------------------------------------------------- limit

def test_limit_is_an_exactly_stratified_seeded_subset():
    full = load_dataset(DatasetConfig("mnist5k"))
    a = load_dataset(DatasetConfig("mnist5k", limit=100, seed=0))
    b = load_dataset(DatasetConfig("mnist5k", limit=100, seed=0))
    c = load_dataset(DatasetConfig("mnist5k", limit=100, seed=1))
    assert len(a) == 100
    assert a.class_counts() == {str(d): 10 for d in range(10)}
    assert a.ids == b.ids and a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.ids != c.ids and a.fingerprint != c.fingerprint
    assert a.fingerprint != full.fingerprint
    # the subset really is a subset: labels and pixels match the full set at the chosen ids
    index = {id_: i for i, id_ in enumerate(full.ids)}
    for j in (0, 37, 99):
        i = index[a.ids[j]]
        assert a.labels[j] == full.labels[i]
        np.testing.assert_array_equal(np.asarray(a.image(j)), np.asarray(full.image(i)))


def test_stratified_subset_indices():
    labels = np.repeat(np.arange(4), 25)
    first = stratified_subset(labels, 20, seed=3)
    assert np.array_equal(first, stratified_subset(labels, 20, seed=3))
    assert np.all(np.diff(first) > 0)  # sorted, no duplicates
    assert np.bincount(labels[first]).tolist() == [5, 5, 5, 5]
    assert not np.array_equal(first, stratified_subset(labels, 20, seed=4))
    assert np.array_equal(stratified_subset(labels, 100, seed=0), np.arange(100))
    assert np.array_equal(stratified_subset(labels, 500, seed=0), np.arange(100))


def test_limit_smaller_than_classes_is_a_ptm_error():
    with pytest.raises(PTMError, match="classes"):
        load_dataset(DatasetConfig("mnist5k", limit=5))
    with pytest.raises(PTMError):
        load_dataset(DatasetConfig("digits", limit=0))


def test_limit_just_below_the_dataset_size_still_works():
    """A limit that leaves fewer held-back images than classes is still a valid request."""
    ds = load_dataset(DatasetConfig("shapes:n=30,classes=3,size=16", limit=28))
    assert len(ds) == 28
    assert all(9 <= n <= 10 for n in ds.class_counts().values())

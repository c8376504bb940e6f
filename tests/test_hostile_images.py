"""Hostile images, third round: shapes whose decode or resize would exhaust memory (issue "Hostile input, third
round", item 1). A 400,000 x 1 PNG is 1.2 KB, and a model's eval transform scales its shorter side up to the input
size: 14.4 M x 36 pixels. Such images are skipped with a reason at load time (aspect ratio) and at run time (the
size a resize would make), never decoded into gigabytes and never the end of a run.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from ingest_helpers import encode, load, make_folder, skip_map, write
from ptm_core.data.imaging import DEFAULT_MAX_PIXELS, check_image, open_rgb, resize_problem, size_problem

THIN, THINNEST = (400_000, 1), (20_000_000, 1)  # 1.2 KB and 19 KB as PNG


@pytest.fixture(scope="module")
def thin_pngs() -> dict[str, bytes]:
    return {"thin.png": encode(Image.new("RGB", THIN)), "thinnest.png": encode(Image.new("L", THINNEST))}


def _folder(tmp_path, thin_pngs):
    root = make_folder(tmp_path / "data", {"a": 3, "b": 3})
    for name, data in thin_pngs.items():
        write(root / "a" / name, data)
    return root


def test_size_rules_name_their_limit_and_setting():
    assert "too thin (400000x1, 400,000:1" in size_problem(*THIN) and "PTM_MAX_ASPECT_RATIO" in size_problem(*THIN)
    assert size_problem(4000, 400) is None and size_problem(400, 4000) is None  # a 10:1 panorama is fine
    assert "empty image" in size_problem(0, 5)
    assert "too many pixels" in size_problem(20_000, 20_000)
    assert resize_problem(*THIN, shorter_side=36).startswith("too large once resized (400000x1 would become")
    assert resize_problem(640, 480, shorter_side=1170) is None


def test_thin_images_are_refused_from_the_header_before_decoding(thin_pngs, monkeypatch):
    def no_decode(self):
        raise AssertionError("decoded a refused image")

    monkeypatch.setattr(Image.Image, "load", no_decode)
    for data in thin_pngs.values():
        with pytest.raises(Exception, match="too thin"):
            check_image(data)
        with pytest.raises(Exception, match="too thin"):
            open_rgb(data)


def test_a_folder_with_thin_images_loads_and_lists_them_with_the_reason(tmp_path, thin_pngs):
    ds = load(f"folder:{_folder(tmp_path, thin_pngs)}")
    skipped = skip_map(ds)
    assert len(ds) == 6 and "a/thin.png" not in ds.ids
    assert skipped["a/thin.png"].startswith("too thin (400000x1")
    assert skipped["a/thinnest.png"].startswith("too thin (20000000x1")


def test_the_aspect_ratio_limit_is_env_configurable(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    write(root / "a" / "strip.png", encode(Image.new("RGB", (300, 10))))
    assert "a/strip.png" not in skip_map(load(f"folder:{root}"))
    monkeypatch.setenv("PTM_MAX_ASPECT_RATIO", "20")
    assert "20:1 aspect ratio limit" in skip_map(load(f"folder:{root}"))["a/strip.png"]


def test_extraction_skips_images_too_large_once_resized(tiny, tmp_path, thin_pngs, monkeypatch, one_torch_thread):
    """With the aspect-ratio limit lifted, the run-time bound on the resize still holds: the resize is never asked
    for more than the pixel limit, the images are listed as skipped, and the run finishes with the others."""
    from ptm_core.base.configs import DatasetConfig
    from ptm_core.features.extraction import extract

    monkeypatch.setenv("PTM_MAX_ASPECT_RATIO", str(10**9))
    root = _folder(tmp_path, thin_pngs)
    asked: list[int] = []
    resize = Image.Image.resize
    monkeypatch.setattr(Image.Image, "resize", lambda self, size, *a, **k: asked.append(size[0] * size[1])
                        or resize(self, size, *a, **k))
    feats = extract(DatasetConfig(f"folder:{root}"), tiny.backbone(), tiny.extraction())
    assert feats.features.shape[0] == 6 and max(asked) <= DEFAULT_MAX_PIXELS
    skipped = dict(map(tuple, feats.meta["skipped"]))
    assert skipped["a/thin.png"].startswith("too large once resized (400000x1 would become")
    assert "a/thinnest.png" in skipped


def test_layer_sweep_features_leave_out_images_too_large_once_resized(tiny, tmp_path, thin_pngs, monkeypatch,
                                                                       one_torch_thread):
    from ptm_core.base.configs import DatasetConfig
    from ptm_core.evals.layer_sweep import stage_features

    monkeypatch.setenv("PTM_MAX_ASPECT_RATIO", str(10**9))
    stages = stage_features(DatasetConfig(f"folder:{_folder(tmp_path, thin_pngs)}"), tiny.backbone(),
                            tiny.extraction())
    assert len(stages.labels) == 6 and all(len(s) == 6 for s in stages.features)


_PEAK = textwrap.dedent("""
    import json, resource, sys
    from timm.data import create_transform
    from ptm_core.base.configs import DatasetConfig
    from ptm_core.data import load_dataset
    from ptm_core.data.types import ItemUnreadable
    from ptm_core.models.precision import resize_side
    cfg = {"input_size": (3, 32, 32), "interpolation": "bicubic", "mean": (0.5,) * 3, "std": (0.5,) * 3,
           "crop_pct": 0.875, "crop_mode": "center"}
    transform, side = create_transform(**cfg), resize_side(cfg)
    ds = load_dataset(DatasetConfig("folder:" + sys.argv[1]))
    before, skipped = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, []
    for i in range(len(ds)):
        try:
            transform(ds.image(i, side))
        except ItemUnreadable as exc:
            skipped.append(exc.reason)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"grew_kb": grew, "n": len(ds), "skipped": skipped}))
""")


@pytest.mark.slow
def test_peak_memory_stays_bounded_with_a_thin_image(tmp_path, thin_pngs):
    """In a fresh process (ru_maxrss is a high-water mark): decoding and transforming every image, the thin ones
    included (aspect limit lifted), adds under 200 MB to the peak; unbounded, the 400,000 x 1 one took ~2 GB."""
    root = _folder(tmp_path, {"thin.png": thin_pngs["thin.png"]})
    env = {**__import__("os").environ, "PTM_MAX_ASPECT_RATIO": str(10**9)}
    run = subprocess.run([sys.executable, "-c", _PEAK, str(root)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["n"] == 7 and report["skipped"] and report["skipped"][0].startswith("too large once resized")
    assert report["grew_kb"] < 200 * 1024, report


def test_avif_is_an_image_where_pillow_decodes_it(tmp_path):
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))
    write(root / "a" / "photo.avif", encode(photo, "AVIF"))
    ds = load(f"folder:{root}")
    assert "a/photo.avif" in ds.ids and ds.image(ds.ids.index("a/photo.avif")).size == (16, 16)

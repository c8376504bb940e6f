"""Feature extraction with a tiny random-weight model: shapes, caching, integrity, cancellation."""
from __future__ import annotations

import numpy as np
import pytest

from ptm_core.runs.artifacts import artifact_dir, npz_intact
from ptm_core.data import load_dataset
from ptm_core.base.errors import Cancelled
from ptm_core.features.featureset import FeatureSet
from ptm_core.features.extraction import extract
from ptm_core.models.weights import load_backbone


def _cache_files():
    return sorted(p for p in artifact_dir("features").iterdir() if p.suffix == ".npz")


def test_features_shape_dtype_and_labels(tiny):
    features = extract(tiny.data(), tiny.backbone(), tiny.extraction())
    dim = int(load_backbone(tiny.backbone()).model.num_features)
    assert features.features.shape == (60, dim)
    assert features.features.dtype == np.float32
    assert np.isfinite(features.features).all()
    dataset = load_dataset(tiny.data())
    np.testing.assert_array_equal(features.labels, dataset.labels)
    assert features.labels.dtype == np.int64
    assert features.ids == dataset.ids
    assert features.class_names == dataset.class_names
    assert features.meta["cache_hit"] is False
    assert features.meta["input_size"] == [3, 32, 32]
    assert features.meta["images_per_s"] > 0
    assert features.meta["key"] == features.key


def test_second_call_is_a_cache_hit_with_identical_arrays(tiny):
    first = extract(tiny.data(), tiny.backbone(), tiny.extraction())
    assert len(_cache_files()) == 1
    second = extract(tiny.data(), tiny.backbone(), tiny.extraction(batch_size=7))  # batch size is not in the key
    assert second.meta["cache_hit"] is True
    assert second.key == first.key
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert second.ids == first.ids and second.class_names == first.class_names


def test_batch_size_does_not_change_features(tiny, tmp_path, monkeypatch):
    first = extract(tiny.data(), tiny.backbone(), tiny.extraction(batch_size=64))
    monkeypatch.setenv("PTM_DATA_DIR", str(tmp_path / "other"))
    second = extract(tiny.data(), tiny.backbone(), tiny.extraction(batch_size=25))
    assert second.meta["cache_hit"] is False
    np.testing.assert_allclose(second.features, first.features, rtol=1e-4, atol=1e-5)


def test_other_weights_seed_is_another_cache_entry(tiny):
    a = extract(tiny.data(), tiny.backbone(seed=0), tiny.extraction())
    b = extract(tiny.data(), tiny.backbone(seed=1), tiny.extraction())
    assert a.key != b.key
    assert b.meta["cache_hit"] is False
    assert not np.array_equal(a.features, b.features)
    assert len(_cache_files()) == 2


@pytest.mark.slow
def test_other_image_size_or_subset_is_another_cache_entry(tiny):
    from ptm_core.base.configs import ExtractionConfig

    base = extract(tiny.data(), tiny.backbone(), tiny.extraction())
    bigger = extract(tiny.data(), tiny.backbone(), ExtractionConfig(48, 64, "cpu"))
    fewer = extract(tiny.data(limit=50), tiny.backbone(), tiny.extraction())
    assert len({base.key, bigger.key, fewer.key}) == 3
    assert not bigger.meta["cache_hit"] and not fewer.meta["cache_hit"]


def test_tampered_cache_file_is_detected_and_recomputed(tiny):
    first = extract(tiny.data(), tiny.backbone(), tiny.extraction())
    (path,) = _cache_files()
    raw = bytearray(path.read_bytes())
    # flip a byte inside the stored features array (well past the zip and npy headers)
    offset = raw.find(first.features.tobytes()[:64])
    assert offset > 0
    raw[offset + 100] ^= 0xFF
    path.write_bytes(bytes(raw))

    again = extract(tiny.data(), tiny.backbone(), tiny.extraction())
    assert again.meta["cache_hit"] is False  # not used: recomputed
    np.testing.assert_array_equal(again.features, first.features)
    # and the rewritten entry is valid again
    third = extract(tiny.data(), tiny.backbone(), tiny.extraction())
    assert third.meta["cache_hit"] is True
    np.testing.assert_array_equal(third.features, first.features)


def test_cache_file_failing_its_checksum_is_not_used(tiny):
    extract(tiny.data(), tiny.backbone(), tiny.extraction())
    (path,) = _cache_files()
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # the last digit of the checksum embedded in the file
    path.write_bytes(bytes(data))
    assert extract(tiny.data(), tiny.backbone(), tiny.extraction()).meta["cache_hit"] is False


@pytest.mark.slow
def test_cancellation_keeps_what_was_done_and_a_rerun_resumes(tiny):
    checks = []

    def cancelled() -> bool:
        checks.append(True)
        return len(checks) >= 2  # let one batch run, then ask to stop

    progress = []
    with pytest.raises(Cancelled):
        extract(tiny.data(), tiny.backbone(), tiny.extraction(batch_size=20),
                progress=lambda f, m: progress.append(f), cancelled=cancelled)
    assert len(checks) == 2
    assert progress and progress[-1] < 1.0
    (partial,) = _cache_files()  # no finished entry, only the checkpoint of the first batch
    assert partial.name.endswith(".partial.npz")

    resumed = extract(tiny.data(), tiny.backbone(), tiny.extraction(batch_size=20))
    assert resumed.meta["resumed_from"] == 20 and resumed.meta["cache_hit"] is False
    assert [p.name for p in _cache_files()] == [f"{resumed.key}.npz"]
    fresh = extract(tiny.data(), tiny.backbone(seed=1), tiny.extraction())
    assert fresh.meta["resumed_from"] == 0
    for path in _cache_files():
        path.unlink()
    again = extract(tiny.data(), tiny.backbone(), tiny.extraction(batch_size=20))
    np.testing.assert_allclose(resumed.features, again.features, rtol=1e-5, atol=1e-5)


def test_progress_reaches_one(tiny):
    seen: list[tuple[float, str]] = []
    extract(tiny.data(), tiny.backbone(), tiny.extraction(batch_size=16),
            progress=lambda fraction, message: seen.append((fraction, message)))
    fractions = [f for f, _ in seen]
    assert len(fractions) == 4  # 60 images in batches of 16
    assert fractions == sorted(fractions)
    assert all(0 < f <= 1 for f in fractions)
    assert fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in seen)

    cached: list[float] = []
    extract(tiny.data(), tiny.backbone(), tiny.extraction(), progress=lambda f, m: cached.append(f))
    assert cached[-1] == 1.0


def test_feature_set_npz_round_trip(tiny, tmp_path):
    features = extract(tiny.data(), tiny.backbone(), tiny.extraction())
    out = tmp_path / "out" / "features.npz"
    features.to_npz(out)
    assert out.exists() and npz_intact(out)
    back = FeatureSet.from_npz(out)
    np.testing.assert_array_equal(back.features, features.features)
    np.testing.assert_array_equal(back.labels, features.labels)
    assert back.features.dtype == np.float32 and back.labels.dtype == np.int64
    assert back.class_names == features.class_names
    assert back.ids == features.ids
    assert back.key == features.key
    assert back.meta["backbone"] == tiny.model
    assert FeatureSet.from_npz(tmp_path / "missing.npz") is None


def test_bad_extraction_settings_are_ptm_errors(tiny):
    from ptm_core.base.configs import ExtractionConfig
    from ptm_core.base.errors import PTMError

    with pytest.raises(PTMError):
        extract(tiny.data(), tiny.backbone(), ExtractionConfig(8, 64, "cpu"))
    with pytest.raises(PTMError):
        extract(tiny.data(), tiny.backbone(), ExtractionConfig(32, 0, "cpu"))
    with pytest.raises(PTMError):
        extract(tiny.data(), tiny.backbone(), ExtractionConfig(32, 64, "tpu"))


def test_out_of_memory_halves_the_batch_and_retries(tiny, monkeypatch):
    from timm.data import create_transform

    from ptm_core.features import extraction

    model = load_backbone(tiny.backbone()).model
    dataset = load_dataset(tiny.data())
    transform = create_transform(**extraction.data_config(model, 32), is_training=False)
    reference = extraction.extract_features(model, dataset, transform, 60, extraction.resolve_device("cpu"))

    real_forward, sizes = extraction.pre_logits, []

    def forward_with_small_memory(model, batch):
        sizes.append(len(batch))
        if len(batch) > 8:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(model, batch)

    monkeypatch.setattr(extraction, "pre_logits", forward_with_small_memory)
    features = extraction.extract_features(model, dataset, transform, 32, extraction.resolve_device("cpu"))
    assert sizes[:3] == [32, 16, 8] and max(sizes[3:]) <= 8
    np.testing.assert_allclose(features, reference, rtol=1e-4, atol=1e-4)

    def broken(model, batch):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(extraction, "pre_logits", broken)
    with pytest.raises(RuntimeError, match="shapes"):
        extraction.extract_features(model, dataset, transform, 32, extraction.resolve_device("cpu"))

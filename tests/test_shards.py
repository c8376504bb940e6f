"""Shard sets as the Ray engine writes them, checked without Ray: order, unreadable rows, damage, mmap."""
from __future__ import annotations

import numpy as np
import pytest

from ptm_core.features import shards
from ptm_core.data import Dataset
from ptm_core.base.errors import PTMError
from ptm_core.features.user_files import read_features_file
from ptm_core.features.ray_engine import ShardWriter, finish_shards

N, DIM, ROWS = 10, 3, 4


def _dataset() -> Dataset:
    return Dataset("toy", [np.zeros((4, 4), np.uint8)] * N, np.arange(N) % 2, ["even", "odd"], "fp")


def _write_all(folder, unreadable_row: int | None = None) -> np.ndarray:
    """Rows arrive out of order, as from several actors; returns the full features."""
    features = np.arange(N * DIM, dtype=np.float32).reshape(N, DIM) + 1
    writer, written = ShardWriter(folder, ROWS, N, None), []
    writer.on_shard = lambda a, b: written.append((a, b))
    order = np.array([9, 2, 5, 0, 1, 3, 8, 4, 6, 7])
    reasons = np.array(["broken" if r == unreadable_row else "" for r in order])
    writer.add(order[:5], features[order[:5]], reasons[:5])
    assert written == []  # no shard is whole yet
    writer.add(order[5:], features[order[5:]], reasons[5:])
    assert sorted(written) == shards.plan(N, ROWS)
    return features


def test_shards_load_in_row_order_with_unreadable_rows_left_out(tmp_path):
    folder, dataset = tmp_path / "k" / "shards", _dataset()
    features = _write_all(folder, unreadable_row=5)
    result = finish_shards(folder, "k", dataset, shards.plan(N, ROWS), {"backbone": "toy"})
    kept = [i for i in range(N) if i != 5]
    np.testing.assert_array_equal(result.features, features[kept])
    assert result.ids == [dataset.ids[i] for i in kept]
    np.testing.assert_array_equal(result.labels, dataset.labels[kept])
    assert result.meta["n_skipped"] == 1 and result.meta["skipped"] == [["toy/5", "broken"]]
    assert read_features_file(folder / shards.MANIFEST).ids == result.ids


def test_a_damaged_shard_is_redone_and_never_read(tmp_path):
    folder = tmp_path / "k" / "shards"
    _write_all(folder)
    finish_shards(folder, "k", _dataset(), shards.plan(N, ROWS), {"backbone": "toy"})
    damaged = folder / shards.shard_name(4, 8)
    damaged.write_bytes(damaged.read_bytes()[:-7] + b"garbage")
    with pytest.raises(PTMError, match="missing or damaged"):
        read_features_file(folder)  # a set the user names: one clear error
    assert shards.load_sharded(folder) is None  # in the cache: recomputed, and the manifest withdrawn
    assert not (folder / shards.MANIFEST).exists()
    assert shards.finished_shards(folder, shards.plan(N, ROWS)) == {(0, 4), (8, 10)}
    assert not damaged.exists()


def test_features_are_memory_mapped_out_of_the_npz(tmp_path):
    path = shards.write_shard(tmp_path, 0, 3, np.eye(3, dtype=np.float32) * 2, {})
    mapped = shards.mmap_npz_member(path, "features")
    assert isinstance(mapped, np.memmap)
    with np.load(path) as data:
        np.testing.assert_array_equal(mapped, data["features"])


def test_an_unfinished_set_is_not_features(tmp_path):
    folder = tmp_path / "k" / "shards"
    shards.write_shard(folder, 0, 4, np.ones((4, DIM), np.float32), {})
    assert shards.load_sharded(folder) is None
    with pytest.raises(PTMError):
        read_features_file(folder.parent)  # a folder with shards but no manifest: not features (yet)

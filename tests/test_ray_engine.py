"""`extract --engine ray`: the same features as the local engine, written as shards that a rerun resumes.

One local Ray instance (2 CPUs here) serves the whole module; the tiny random-init model at 32 px keeps
each run to seconds. Skipped only where Ray is not installed (requirements-scale.txt; CI installs it).
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from ptm_core.cli import main
from ptm_core.errors import Cancelled

ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-scale.txt")

N_IMAGES = 300
SHARD_ROWS = 64  # 5 shards of 300 rows: a stop after the first leaves four to resume


@pytest.fixture(scope="module")
def ray_cluster():
    from ptm_core.ray_engine import start_ray

    start_ray(None)  # the engine's own local start: all cores, no dashboard, ptm_core shipped to workers
    yield
    ray.shutdown()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _drop_local_cache(key: str) -> None:
    from ptm_core.artifacts import artifact_dir

    for name in (f"{key}.npz", f"{key}.npz.sha256"):
        (artifact_dir("features") / name).unlink()


def test_matches_local_engine_and_resumes_after_a_stop(tiny, ray_cluster, one_torch_thread):
    from ptm_core import shards
    from ptm_core.extraction import extract
    from ptm_core.feature_files import read_features_file
    from ptm_core.ray_engine import RayOptions, extract_ray

    configs = (tiny.data(N_IMAGES), tiny.backbone(), tiny.extraction(batch_size=32))
    local = extract(*configs)
    _drop_local_cache(local.key)  # otherwise the Ray engine answers from the local engine's cache
    options = RayOptions(workers=2, shard_rows=SHARD_ROWS)
    all_ranges = shards.plan(N_IMAGES, SHARD_ROWS)

    first: list[tuple[int, int]] = []
    with pytest.raises(Cancelled):
        extract_ray(*configs, options, cancelled=lambda: bool(first), on_shard=lambda a, b: first.append((a, b)))
    folder = shards.shard_dir(local.key)
    kept = shards.finished_shards(folder, all_ranges)
    assert set(first) <= kept and 1 <= len(kept) < len(all_ranges)
    assert not (folder / shards.MANIFEST).exists()  # a stopped set is never read as features

    second: list[tuple[int, int]] = []
    result = extract_ray(*configs, options, on_shard=lambda a, b: second.append((a, b)))
    assert sorted(second) == sorted(set(all_ranges) - kept)  # only the missing shards were computed
    assert result.meta["rows_computed"] == N_IMAGES - sum(b - a for a, b in kept)
    assert result.key == local.key
    assert result.ids == local.ids
    np.testing.assert_array_equal(result.labels, local.labels)
    assert result.class_names == local.class_names
    assert _cosines(result.features, local.features).min() >= 0.999

    again = extract(*configs)  # the local engine's cache lookup finds the shard set under the same key
    assert again.meta["from_cache"] and again.meta["sharded"]
    np.testing.assert_array_equal(again.features, result.features)
    named = read_features_file(folder)  # --features DIR, as probe/map take it
    assert named.ids == local.ids and named.key == local.key


def _cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err.strip()


def _extract_args(tiny, tmp_path, *extra: str) -> list[str]:
    return ["extract", "--backbone", tiny.model, "--weights", "random", "--dataset", tiny.dataset, "--limit", "20",
            "--image-size", str(tiny.image_size), "--out", str(tmp_path / "f.npz"), *extra]


def test_cli_ray_engine_writes_out_and_probe_reads_the_shards(tiny, tmp_path, capsys, ray_cluster):
    import json

    code = main(_extract_args(tiny, tmp_path, "--engine", "ray", "--workers", "2", "--json"))
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["n"] == 20 and summary["cache_hit"] is False
    from ptm_core import shards

    folder = shards.shard_dir(summary["key"])
    assert (folder / shards.MANIFEST).is_file() and (tmp_path / "f.npz").is_file()
    code = main(["probe", "--features", str(folder), "--method", "knn", "--k", "3", "--json"])
    assert code == 0 and "test_accuracy" in json.loads(capsys.readouterr().out)


def test_missing_ray_is_one_line_saying_how_to_get_it(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    code, err = _cli(capsys, *_extract_args(tiny, tmp_path, "--engine", "ray"))
    assert code == 2 and len(err.splitlines()) == 1
    assert "pip install -r requirements-scale.txt" in err and "Traceback" not in err


@pytest.mark.parametrize("extra, words", [
    (("--engine", "ray", "--address", "127.0.0.1:1"), "Cannot reach a Ray cluster at 127.0.0.1:1"),
    (("--engine", "ray", "--address", "head:port"), "expected host:port"),
    (("--engine", "ray", "--gpus-per-worker", "1"), "the Ray cluster has 0"),
    (("--workers", "2"), "only apply to --engine ray"),
])
def test_bad_ray_settings_are_one_line_errors(tiny, tmp_path, capsys, ray_cluster, extra, words):
    code, err = _cli(capsys, *_extract_args(tiny, tmp_path, *extra))
    assert code == 2 and len(err.splitlines()) == 1 and words in err, err


def test_zero_workers_is_refused_by_the_parser(tiny, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(_extract_args(tiny, tmp_path, "--engine", "ray", "--workers", "0"))
    assert exit_info.value.code == 2
    assert "expected a positive number, got 0" in capsys.readouterr().err

"""`extract --engine ray`: the same features as the local engine, written as shards that a rerun resumes.

One local Ray instance (all cores here) serves the whole module; the tiny random-init model at 32 px keeps
each run to seconds of work. Skipped only where Ray is not installed (requirements-scale.txt; CI installs it).
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from ptm_core.cli.commands import main
from ptm_core.base.errors import Cancelled
from arrays import cosines

ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-scale.txt")

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # a Ray start is many seconds of worker start-up

N_IMAGES = 300
SHARD_ROWS = 64  # 5 shards of 300 rows: a stop after the first leaves some to resume


@pytest.fixture(scope="module")
def ray_cluster():
    from ptm_core.features.ray_cluster import start_ray

    start_ray(None)  # the engine's own local start: all cores, no dashboard, ptm_core shipped to workers
    yield
    ray.shutdown()


def _drop_local_cache(key: str) -> None:
    from ptm_core.runs.artifacts import artifact_dir

    (artifact_dir("features") / f"{key}.npz").unlink()


@pytest.fixture(scope="module")
def stopped_then_resumed(tiny, ray_cluster, tmp_path_factory):
    """Local features, then a Ray run stopped after its first shard, then a rerun; one data dir for the module.

    A Ray run here is a second of work behind many seconds of worker start-up, so the tests share these two.
    """
    import torch

    from ptm_core.features import shards
    from ptm_core.features.extraction import extract
    from ptm_core.features.ray_engine import RayOptions, extract_ray

    data_dir, threads = tmp_path_factory.mktemp("ray-data"), torch.get_num_threads()
    configs = (tiny.data(N_IMAGES), tiny.backbone(), tiny.extraction(batch_size=32))
    options = RayOptions(workers=2, shard_rows=SHARD_ROWS)
    first: list[tuple[int, int]] = []
    second: list[tuple[int, int]] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PTM_DATA_DIR", str(data_dir))
        torch.set_num_threads(1)  # a tiny model gains nothing from threads on a busy 2-core box
        try:
            local = extract(*configs)
            _drop_local_cache(local.key)  # otherwise the Ray engine answers from the local engine's cache
            folder = shards.shard_dir(local.key)
            with pytest.raises(Cancelled):
                extract_ray(*configs, options, cancelled=lambda: bool(first),
                            on_shard=lambda a, b: first.append((a, b)))
            kept = shards.finished_shards(folder, shards.plan(N_IMAGES, SHARD_ROWS))
            manifest_after_stop = (folder / shards.MANIFEST).exists()
            result = extract_ray(*configs, options, on_shard=lambda a, b: second.append((a, b)))
        finally:
            torch.set_num_threads(threads)
    return {"local": local, "result": result, "first": first, "kept": kept, "second": second,
            "manifest_after_stop": manifest_after_stop, "folder": folder, "data_dir": data_dir}


def test_a_stopped_run_keeps_its_shards_and_the_rerun_does_only_the_rest(stopped_then_resumed):
    from ptm_core.features import shards

    run = stopped_then_resumed
    all_ranges = shards.plan(N_IMAGES, SHARD_ROWS)
    assert set(run["first"]) <= run["kept"] and 1 <= len(run["kept"]) < len(all_ranges)
    assert not run["manifest_after_stop"]  # a stopped set is never read as features
    assert sorted(run["second"]) == sorted(set(all_ranges) - run["kept"])  # only the missing shards computed
    assert run["result"].meta["rows_computed"] == N_IMAGES - sum(b - a for a, b in run["kept"])
    assert run["result"].meta["resumed_from"] == sum(b - a for a, b in run["kept"])


def test_same_features_ids_order_and_key_as_the_local_engine(stopped_then_resumed):
    local, result = stopped_then_resumed["local"], stopped_then_resumed["result"]
    assert result.key == local.key
    assert result.ids == local.ids
    np.testing.assert_array_equal(result.labels, local.labels)
    assert result.class_names == local.class_names
    assert cosines(result.features, local.features).min() >= 0.999


def test_the_feature_cache_and_features_dir_read_the_shards(stopped_then_resumed, tiny, monkeypatch):
    from ptm_core.features.extraction import extract
    from ptm_core.features.user_files import read_features_file

    run = stopped_then_resumed
    monkeypatch.setenv("PTM_DATA_DIR", str(run["data_dir"]))
    again = extract(tiny.data(N_IMAGES), tiny.backbone(), tiny.extraction())  # the local engine's cache lookup
    assert again.meta["from_cache"] and again.meta["sharded"] and again.key == run["local"].key
    np.testing.assert_array_equal(again.features, run["result"].features)
    for named in (run["folder"], run["folder"] / "manifest.json", run["folder"].parent):  # --features DIR
        assert read_features_file(named).ids == run["local"].ids


def _cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err.strip()


def _extract_args(tiny, tmp_path, *extra: str, limit: int = 60) -> list[str]:
    return ["extract", "--backbone", tiny.model, "--weights", "random", "--dataset", tiny.dataset, "--limit",
            str(limit), "--image-size", str(tiny.image_size), "--out", str(tmp_path / "f.npz"), *extra]


def test_cli_extract_ray_answers_from_the_shards_and_probe_reads_them(stopped_then_resumed, tiny, tmp_path, capsys):
    run = stopped_then_resumed
    code = main(["--data-dir", str(run["data_dir"]),
                 *_extract_args(tiny, tmp_path, "--engine", "ray", "--workers", "2", "--json", limit=N_IMAGES)])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["n"] == N_IMAGES and summary["cache_hit"] is True
    assert summary["key"] == run["local"].key and (tmp_path / "f.npz").is_file()
    code = main(["probe", "--features", str(run["folder"]), "--method", "knn", "--k", "3", "--json"])
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


class _FakeCluster:
    def __init__(self, node_cpus: list[float], gpus: float = 0) -> None:
        self.node_cpus, self.gpus = node_cpus, gpus

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": sum(self.node_cpus), "GPU": self.gpus}

    def nodes(self) -> list[dict]:
        return [{"Alive": True, "Resources": {"CPU": c}} for c in self.node_cpus]


@pytest.mark.parametrize("nodes, gpus, workers, per_gpu, expected", [
    ([2], 0, 1, None, {"num_cpus": 1.0, "num_gpus": 0.0}),  # this machine: the other core decodes
    ([2], 0, 2, None, {"num_cpus": 0.5, "num_gpus": 0.0}),
    ([8, 8, 8, 8], 0, 2, None, {"num_cpus": 4.0, "num_gpus": 0.0}),  # never more than half a node
    ([8], 2, 2, None, {"num_cpus": 1.0, "num_gpus": 1.0}),  # GPUs found are shared out
    ([8], 1, 2, None, {"num_cpus": 1.0, "num_gpus": 0.5}),
    ([8], 2, 2, 0.0, {"num_cpus": 2.0, "num_gpus": 0.0}),  # --gpus-per-worker 0: CPU actors
])
def test_worker_resources_leave_cpus_for_decoding(nodes, gpus, workers, per_gpu, expected):
    from ptm_core.features.ray_engine import RayOptions, worker_resources

    assert worker_resources(_FakeCluster(nodes, gpus), RayOptions(workers=workers, gpus_per_worker=per_gpu),
                            "auto") == expected

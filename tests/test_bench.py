"""The leaderboard (`ptm_core.evals.bench`, `python -m ptm_core bench`, the flow and the page): runs written one JSON
each, the leaderboard recomputed from them alone, its interval (t over three seeds or more, a bootstrap below),
features extracted once per backbone, a rerun that redoes nothing, and bad names refused before any work."""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ptm_core.base.configs import DatasetConfig, KNNConfig
from ptm_core.base.errors import PTMError
from ptm_core.base.stats import accuracy_interval, mean_interval
from ptm_core.data import load_dataset
from ptm_core.evals import bench
from ptm_core.evals.bench import COLUMNS, BenchConfig, run_bench, run_file
from ptm_core.probes.linear import split_indices

LIMIT = 120  # digits: 12 per class, 24 test images per split


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models on a shared 2-core machine: one intra-op thread each."""


def _config(backbones, weights="random", seeds=3, **extra) -> BenchConfig:
    return BenchConfig(backbones=tuple(backbones), weights=weights, dataset=DatasetConfig("digits", LIMIT),
                       image_size=32, seeds=seeds, precision="fp32", device="cpu", runtime="torch", **extra)


class Calls:
    """Counts calls of the engine's extraction and probe, passing them through."""

    def __init__(self, monkeypatch):
        self.extract, self.probe = [], []
        real_extract, real_probe = bench.extract, bench.cached_linear_probe

        def extract(dataset, backbone, *args, **kwargs):
            self.extract.append((backbone.name, backbone.weights))
            return real_extract(dataset, backbone, *args, **kwargs)

        def probe(*args, **kwargs):
            self.probe.append(args[3].seed)
            return real_probe(*args, **kwargs)

        monkeypatch.setattr(bench, "extract", extract)
        monkeypatch.setattr(bench, "cached_linear_probe", probe)


def _correct(text: str) -> np.ndarray:
    return np.array([c == "1" for c in text])


@pytest.fixture(scope="module")
def lite0_board(tmp_path_factory):
    """tf_efficientnet_lite0 with its bundled weights and with random init, three seeds, written once for the module."""
    import os

    import torch

    from ptm_core.base.paths import ENV_VAR

    root = tmp_path_factory.mktemp("bench")
    old, threads = os.environ.get(ENV_VAR), torch.get_num_threads()
    os.environ[ENV_VAR] = str(root / "data")
    torch.set_num_threads(1)  # on a busy 2-core machine, intra-op threads make this 20x slower (measured)
    try:
        config = _config(["tf_efficientnet_lite0"], weights="bundled", include_random=True)
        yield config, run_bench(config, root / "out")
    finally:
        torch.set_num_threads(threads)
        os.environ.pop(ENV_VAR) if old is None else os.environ.__setitem__(ENV_VAR, old)


def test_each_run_is_one_json_with_what_produced_it(lite0_board):
    config, result = lite0_board
    labels = load_dataset(config.dataset).labels
    assert result.computed == 6 and result.reused == 0
    assert sorted(p.name for p in result.runs_dir.iterdir()) == sorted(
        f"tf_efficientnet_lite0-{w}-{s}.json" for w in ("bundled", "random") for s in (0, 1, 2))
    for run in result.runs:
        assert run == json.loads(run_file(result.out_dir, bench.BackboneConfig(run["backbone"], run["weights"]),
                                          run["seed"]).read_text())
        _, test = split_indices(labels, 0.2, run["seed"])  # the seed's own stratified split
        linear, knn = _correct(run["linear_correct"]), _correct(run["knn_correct"])
        assert run["n_test"] == len(test) == len(linear) == len(knn) == 24 and run["n_train"] == 96
        assert run["linear_accuracy"] == pytest.approx(linear.mean())
        assert run["knn_accuracy"] == pytest.approx(knn.mean())
        assert run["linear_ci95"] == list(accuracy_interval(run["linear_accuracy"], 24))  # Wilson's
        assert 0 <= run["balanced_accuracy"] <= 1 and run["linear_accuracy"] <= run["top5_accuracy"] <= 1  # 10 classes
        assert run["dataset"]["spec"] == "digits" and run["dataset"]["limit"] == LIMIT and run["image_size"] == 32
        assert run["feature_dim"] == 1280 and run["params_m"] == pytest.approx(4.65, abs=0.01)
        assert run["images_per_s"] > 0 and run["precision"] == "fp32" and len(run["config_hash"]) == 16
    weights = {run["weights"]: run["weights_identity"] for run in result.runs}
    assert weights["bundled"].startswith("bundled:") and weights["random"] == "random:seed=0"
    # Each seed draws its own split: not three scores of the same test images.
    assert len({run["test_split"] for run in result.runs}) == 3


def test_the_leaderboard_is_recomputed_from_the_runs_alone(lite0_board):
    config, result = lite0_board
    frame = pd.read_csv(result.leaderboard)
    assert tuple(frame.columns) == COLUMNS and len(frame) == 2
    assert list(frame["linear_mean"]) == sorted(frame["linear_mean"], reverse=True)  # best first
    for row in frame.to_dict("records"):
        runs = [json.loads(p.read_text()) for p in sorted(result.runs_dir.glob(f"*-{row['weights']}-*.json"))]
        accuracies = [r["linear_accuracy"] for r in runs]
        low, high = mean_interval(accuracies)
        assert row["seeds"] == 3 and row["interval"] == "Student's t over 3 seeds"
        assert row["linear_mean"] == pytest.approx(np.mean(accuracies))
        assert (row["linear_ci_low"], row["linear_ci_high"]) == pytest.approx((max(low, 0.0), min(high, 1.0)))
        assert row["knn_mean"] == pytest.approx(np.mean([r["knn_accuracy"] for r in runs]))
        assert row["balanced_mean"] == pytest.approx(np.mean([r["balanced_accuracy"] for r in runs]))
        assert row["top5_mean"] == pytest.approx(np.mean([r["top5_accuracy"] for r in runs]))
        assert row["images_per_s"] == pytest.approx(runs[0]["images_per_s"])
        assert (row["feature_dim"], row["params_m"]) == (1280, pytest.approx(runs[0]["params_m"]))
        assert (row["backbone"], row["dataset"], row["image_size"], row["n_test"]) == (
            "tf_efficientnet_lite0", f"digits (limit {LIMIT})", 32, 24)


def test_fewer_than_three_seeds_get_a_bootstrap_over_the_test_images(tiny, tmp_path):
    result = run_bench(_config([tiny.model], seeds=2), tmp_path / "out")
    row = pd.read_csv(result.leaderboard).iloc[0]
    assert row["interval"].startswith("bootstrap over 24 test images, 2 seeds")
    samples = tuple(_correct(r["linear_correct"]).astype(float) for r in result.runs)
    expected = stats.bootstrap(samples, lambda a, b, axis=-1: (a.mean(axis=axis) + b.mean(axis=axis)) / 2,
                               n_resamples=9999, vectorized=True, method="percentile",
                               rng=np.random.default_rng(0)).confidence_interval
    assert (row["linear_ci_low"], row["linear_ci_high"]) == pytest.approx((expected.low, expected.high))
    assert row["linear_ci_low"] <= row["linear_mean"] <= row["linear_ci_high"] < 1
    # Not the t-interval: with two seeds its t_0.975 of 12.7 would make it useless.
    t_low, t_high = mean_interval([r["linear_accuracy"] for r in result.runs])
    assert row["linear_ci_high"] - row["linear_ci_low"] < t_high - t_low or t_high == t_low
    one = run_bench(_config([tiny.model], seeds=1), tmp_path / "one")
    assert one.rows[0]["interval"].startswith("bootstrap over 24 test images, 1 seed ")
    assert one.rows[0]["linear_ci_low"] < one.rows[0]["linear_mean"] < one.rows[0]["linear_ci_high"]


def test_seeds_that_all_score_the_same_get_the_bootstrap_not_a_zero_width_t():
    from ptm_core.flows import interval_kind

    runs = [{"linear_accuracy": 0.75, "linear_correct": "1110" * 5, "n_test": 20} for _ in range(3)]
    low, high, how = bench.interval_of(runs)
    assert how.startswith("bootstrap over 20 test images, 3 seeds") and "the seeds agree exactly" in how
    assert low < 0.75 < high and interval_kind({"interval": how}) == "bootstrap"
    runs[0] = {"linear_accuracy": 0.7, "linear_correct": "1110" * 4 + "1100", "n_test": 20}
    low, high, how = bench.interval_of(runs)
    expected = mean_interval([0.7, 0.75, 0.75])
    assert how == "Student's t over 3 seeds" and interval_kind({"interval": how}) == "t"
    assert (low, high) == pytest.approx((max(expected[0], 0), min(expected[1], 1)))


def test_features_are_extracted_once_per_backbone_and_a_rerun_redoes_nothing(tiny, tmp_path, monkeypatch):
    calls = Calls(monkeypatch)
    config = _config([tiny.model, "resnet10t"] if _has("resnet10t") else [tiny.model], seeds=3)
    first = run_bench(config, tmp_path / "out")
    entries = len(config.backbones)
    assert len(calls.extract) == entries and calls.probe == [0, 1, 2] * entries  # once per backbone, not per seed
    stamps = {p: p.stat().st_mtime_ns for p in first.runs_dir.iterdir()}
    calls.extract.clear(), calls.probe.clear()
    again = run_bench(config, tmp_path / "out")
    assert calls.extract == [] and calls.probe == [] and (again.computed, again.reused) == (0, 3 * entries)
    assert {p: p.stat().st_mtime_ns for p in again.runs_dir.iterdir()} == stamps
    assert again.rows == first.rows
    # One run lost, one made with other k-NN settings: only those are computed again, from one extraction.
    run_file(first.out_dir, config.entries()[0], 1).unlink()
    (first.runs_dir / run_file(first.out_dir, config.entries()[0], 2).name).write_text("{not json")
    third = run_bench(config, tmp_path / "out")
    assert calls.extract == [(tiny.model, "random")] and calls.probe == [1, 2] and third.computed == 2
    calls.extract.clear(), calls.probe.clear()
    other = run_bench(_config(config.backbones, seeds=3, knn=KNNConfig(k=5)), tmp_path / "out")
    assert other.computed == 3 * entries and len(calls.extract) == entries


def _has(name: str) -> bool:
    import timm

    return timm.is_model(name)


def test_an_unknown_backbone_fails_before_any_work_naming_it(tiny, tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before every name was checked")

    monkeypatch.setattr(bench, "extract", no_work)
    monkeypatch.setattr(bench, "load_dataset", no_work)
    with pytest.raises(PTMError, match="no_such_net"):
        run_bench(_config([tiny.model, "no_such_net"]), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_backbone_without_bundled_weights_fails_before_any_extraction(tiny, tmp_path, monkeypatch):
    calls = Calls(monkeypatch)
    with pytest.raises(PTMError) as caught:
        run_bench(_config(["tf_efficientnet_lite0", tiny.model], weights="bundled"), tmp_path / "out")
    assert tiny.model in str(caught.value) and "\n" not in str(caught.value)
    assert calls.extract == [] and not list((tmp_path / "out" / "runs").iterdir())


def test_the_config_normalises_seeds_and_names_and_refuses_what_cannot_run():
    config = BenchConfig(backbones=" a, b ,a", seeds=2)
    assert config.backbones == ("a", "b") and config.seeds == (0, 1)
    assert BenchConfig(seeds=(4, 7)).seeds == (4, 7) and BenchConfig(seeds=[3]).key() == BenchConfig(seeds=(3,)).key()
    assert [(e.name, e.weights) for e in BenchConfig(backbones=("a", "b"), include_random=True).entries()] == [
        ("a", "bundled"), ("a", "random"), ("b", "bundled"), ("b", "random")]
    assert len(BenchConfig(weights="random", include_random=True).entries()) == 1
    for bad in (dict(backbones=()), dict(seeds=0), dict(seeds=(1, 1)), dict(seeds=(-1,))):
        with pytest.raises(PTMError):
            BenchConfig(**bad)
    with pytest.raises(PTMError, match="one of"):
        bench.check_config(BenchConfig(weights="/some/model.pth"))


def test_the_flow_reports_each_row_and_restores_from_the_finished_runs(tiny, tmp_path, wait_until):
    from ptm_core.flows import DONE, BenchProgress, JobManager, bench_spec
    from ptm_core.runs.store import RunStore

    config = _config([tiny.model], seeds=2, include_random=False)
    spec = bench_spec(config)
    assert spec.restore and spec.kind == "bench" and spec.key == bench_spec(_config([tiny.model], seeds=2)).key
    assert spec.key != bench_spec(_config([tiny.model], seeds=3)).key
    store_path = tmp_path / "runs.sqlite"
    job = JobManager(store=RunStore(store_path)).attach(spec, start=True)
    assert wait_until(lambda: job.status == DONE, timeout=120), (job.status, job.error)
    assert job.preview == BenchProgress((f"{tiny.model} (random)",), (1.0,))
    assert job.result.computed == 2 and job.metrics["best"] == f"{tiny.model} (random)"
    assert job.metrics["best_linear_mean"] == job.result.rows[0]["linear_mean"] and job.metrics["leaderboard_rows"] == 1
    assert any("extracting features" in line for line in job.log)
    restored = JobManager(store=RunStore(store_path)).attach(spec)  # a new server: run again, read back
    assert restored is not None and wait_until(lambda: restored.status == DONE, timeout=60)
    assert (restored.result.computed, restored.result.reused) == (0, 2) and restored.result.rows == job.result.rows


def test_cli_bench_json_writes_the_leaderboard_and_resumes(tmp_path, monkeypatch):
    from test_app import TINY
    from test_cli import _json, run_cli

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    args = ("bench", "--backbones", TINY, "--weights", "random", "--dataset", "digits", "--limit", "200",
            "--image-size", "32", "--seeds", "2", "--precision", "fp32", "--device", "cpu", "--runtime", "torch",
            "--out", str(tmp_path / "board"), "--json")
    started = time.perf_counter()
    shown = _json(run_cli(*args, data_dir=tmp_path / "data"))
    assert shown["runs_dir"] == str(tmp_path / "board" / "runs") and (shown["computed"], shown["reused"]) == (2, 0)
    (row,) = shown["rows"]
    assert set(COLUMNS) <= set(row) and row["backbone"] == TINY and row["weights"] == "random"
    assert row["seeds"] == 2 and row["n_test"] == 40 and row["interval"].startswith("bootstrap over 40 test images")
    written = pd.read_csv(tmp_path / "board" / "leaderboard.csv").iloc[0]
    assert written["linear_mean"] == pytest.approx(row["linear_mean"])
    assert sorted(p.name for p in (tmp_path / "board" / "runs").iterdir()) == [f"{TINY}-random-0.json",
                                                                               f"{TINY}-random-1.json"]
    again = _json(run_cli(*args, data_dir=tmp_path / "data"))
    assert (again["computed"], again["reused"]) == (0, 2) and again["rows"] == shown["rows"]
    text = run_cli(*args[:-1], data_dir=tmp_path / "data")
    assert text.returncode == 0 and "bootstrap over 40 test images" in text.stdout and "95 % CI" in text.stdout
    assert time.perf_counter() - started < 300


@pytest.mark.parametrize("change,words", [
    ({"--backbones": "tf_efficientnet_lite0,no_such_net"}, "no_such_net"),
    ({"--seeds": "0"}, "positive"),
    ({"--backbones": ","}, "backbone names"),
    ({"--weights": "model.pth"}, "one of"),
])
def test_cli_bench_bad_input_is_one_line(tmp_path, change, words):
    from test_cli import run_cli

    args = {"--backbones": "tf_efficientnet_lite0", "--dataset": "digits", "--image-size": "32",
            "--out": str(tmp_path / "board")} | change
    proc = run_cli("bench", *[part for pair in args.items() for part in pair], data_dir=tmp_path / "data")
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2  # argparse: usage + error; the engine: one line
    assert not (tmp_path / "board" / "runs").exists() or not list((tmp_path / "board" / "runs").iterdir())


def test_the_page_runs_the_leaderboard_and_says_which_interval():
    from test_app import _app, _run_until

    at = _app("bench")
    assert at.title[0].value == "Which backbone for my data?"
    assert at.multiselect(key="w_bench_backbones").value == ["tf_efficientnet_lite0"]
    at.selectbox(key="w_dataset").set_value("digits")
    at.number_input(key="w_limit").set_value(LIMIT)
    at.select_slider(key="w_image_size").set_value(32)
    at.toggle(key="w_bench_random").set_value(False)
    at.number_input(key="w_bench_seeds").set_value(2)
    at.run()
    assert any("tf_efficientnet_lite0 (bundled) on digits (limit 120) @ 32px, 2 seeds" in m.value for m in at.markdown)
    at.button(key="run_bench").click().run()
    _run_until(at, lambda a: len(a.dataframe) > 0 or len(a.error) > 0)
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["backbone"]) == ["tf_efficientnet_lite0"] and list(table["seeds"]) == [2]
    assert table["interval"][0] == "bootstrap over 24 test images, 2 seeds"
    assert any(m.value.startswith("**Highest mean linear probe here: tf_efficientnet_lite0") for m in at.markdown)
    assert at.get("plotly_chart") and at.get("download_button")
    at.switch_page("pages/jobs.py").run()  # the run's history names the leaderboard's best row
    assert not at.exception, at.exception
    runs = next(d.value for d in at.dataframe if "result" in d.value)
    assert any(str(r).startswith("best: tf_efficientnet_lite0 (bundled), ") for r in runs["result"]), list(runs["result"])

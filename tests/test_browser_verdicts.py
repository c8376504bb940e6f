"""Real browser: the verdicts that Compare backbones and the tour's lesson print are McNemar's, worded as such.

The server computes in fp32 on every CPU (PTM_NATIVE_BF16=0), as does this test process where it recomputes what
the page should say: which precision `auto` picks depends on the machine, and the numbers with it.
"""
import re

import pytest

from browser_support import screenshot, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SMALL = "dataset=digits&limit=200&image_size=32"


@pytest.fixture(scope="module")
def server(data_dir, user_dir, server_log):  # this module's server: fp32 whatever the CPU
    yield from serve(data_dir, server_log, PTM_NATIVE_BF16="0", PTM_ALLOWED_ROOTS=str(user_dir))


def _metric_value(page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
    metric.first.wait_for(timeout=300_000)
    return metric.first.get_by_test_id("stMetricValue").inner_text()


def test_compare_backbones_words_the_probes_verdict(page, server, monkeypatch):
    from pages.ui.intervals import p_text
    from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig, ProbeConfig
    from ptm_core.evals.versus import probe_versus
    from ptm_core.features.extraction import extract

    monkeypatch.setenv("PTM_NATIVE_BF16", "0")
    data, size = DatasetConfig("digits", limit=200), ExtractionConfig(image_size=32)
    a = extract(data, BackboneConfig(), size)
    b = extract(data, BackboneConfig(weights="random"), size)
    expected = probe_versus(a, b, ProbeConfig()).test

    page.goto(f"{server}/compare?{SMALL}&backbone_b=tf_efficientnet_lite0&weights_b=random&image_size_b=32&map=pca")
    page.get_by_role("button", name="Compare").click()
    assert _metric_value(page, "Linear probe, A") == f"{expected.a_accuracy:.1%}"
    assert _metric_value(page, "Linear probe, B") == f"{expected.b_accuracy:.1%}"
    p = re.escape(f"({p_text(expected.p_value)})")
    words = {"tie": rf"A and B cannot be told apart on these 40 test images {p}",
             "a": rf"A beats B on these 40 test images {p}", "b": rf"B beats A on these 40 test images {p}"}
    page.get_by_text(re.compile(words[expected.verdict])).wait_for(timeout=30_000)
    page.get_by_text("Which probe reads its features better").wait_for(timeout=10_000)
    screenshot(page, "compare-probe-verdict.png")
    assert "Traceback" not in page.content()


def test_the_tours_lesson_shrinks_the_intervals_until_the_test_can_tell(page, server):
    """Step 6 on its default data: pretrained vs random init on 5,000 digits (measured: a tie on 50 test images,
    told apart on 1,000 with p < 0.001)."""
    page.goto(server)
    page.get_by_role("heading", name="6 · Is the difference real?").wait_for(timeout=90_000)
    page.get_by_role("button", name="Run step 6").click()
    last = page.get_by_text(re.compile(r"^1,000 test images: Pretrained backbone beats Random-init backbone on these "
                                       r"1,000 test images \(p < 0\.001\)\.$"))
    last.wait_for(timeout=600_000)
    page.get_by_text(re.compile(r"^50 test images: Pretrained backbone and Random-init backbone cannot be told apart "
                                r"on these 50 test images \(p = 0\.\d+\)\. At the rate they disagree here, telling "
                                r"them apart would take about [\d,]+ test images\.$")).wait_for(timeout=10_000)
    page.get_by_text(re.compile(r"^200 test images: ")).wait_for(timeout=10_000)
    chart = page.locator(".js-plotly-plot").filter(has_text="test images scored")
    chart.locator(".errorbar").first.wait_for(timeout=60_000)  # plotly draws after the text is on the page
    assert chart.locator(".errorbar").count() == 6  # a Wilson interval on each of the 2 x 3 bars
    ticks = chart.locator(".xtick text").evaluate_all("texts => texts.map(t => t.textContent)")
    assert ticks == ["50", "200", "1,000"], ticks  # one category each, not a numeric axis
    screenshot(page, "tour-lesson.png")
    assert "Traceback" not in page.content()


def test_the_tours_zoo_step_tests_each_backbone_against_step_2s(page, server):
    """Step 7 on its default data: every bundled backbone's probe on the 1,000 shapes, each worded by McNemar's test
    against tf_efficientnet_lite0 on the same 200 test images."""
    from ptm_core.flows.tour import TourPlan

    others = [b.name for b in TourPlan().zoo if b.name != "tf_efficientnet_lite0"]
    page.goto(server)
    page.get_by_role("heading", name="7 · A bigger or different backbone?").wait_for(timeout=90_000)
    page.get_by_role("button", name="Run step 7").click()
    chart = page.locator(".js-plotly-plot").filter(has_text="tf_efficientnet_lite2")
    chart.locator(".errorbar").first.wait_for(timeout=600_000)
    assert chart.locator(".errorbar").count() == len(others) + 1  # a Wilson interval on each backbone's bar
    verdict = re.compile(r"^(?:(\S+) beats (\S+)|(\S+) and (\S+) cannot be told apart) on these 200 test images "
                         r"\((?:p = [\d.e-]+|p < 0\.001)\)\.")
    names = tuple([*others, "tf_efficientnet_lite0"])
    items = [text for text in (li.inner_text() for li in page.locator("li").all()) if text.startswith(names)]
    assert len(items) == len(others), items
    for name, text in zip(others, items):
        match = verdict.match(text)
        assert match and {name, "tf_efficientnet_lite0"} == {g for g in match.groups() if g}, text
    page.get_by_text("a bigger backbone is not better unless its test says so").wait_for(timeout=10_000)
    screenshot(page, "tour-zoo.png")
    assert "Traceback" not in page.content()

"""Real browser: the lab's accuracies carry their Wilson intervals, and the Compare tab words McNemar's verdict.

On 200 digits at 32 px (bundled backbone) the linear probe and k-NN differ by a few of the 40 test images
(measured: 75 % vs 70 %, 3 vs 1 discordant, p = 0.62): a tie, which the page must call a tie. The server computes
in fp32 on every CPU (PTM_NATIVE_BF16=0): which precision `auto` would pick depends on the machine, and the numbers
with it.
"""
import re

import pytest

from browser_support import screenshot, serve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(data_dir, user_dir, server_log):  # this module's server: fp32 whatever the CPU
    yield from serve(data_dir, server_log, PTM_NATIVE_BF16="0", PTM_ALLOWED_ROOTS=str(user_dir))

INTERVAL = re.compile(r"^95 % CI \d+\.\d–\d+\.\d%$")


def test_compare_tab_shows_intervals_and_words_a_tie_as_a_tie(page, server):
    page.goto(f"{server}/lab?dataset=digits&limit=200&image_size=32")
    page.get_by_text("tf_efficientnet_lite0 (bundled) on digits (limit 200) @ 32px").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Run linear probe + k-NN").click()
    deltas = page.get_by_test_id("stMetricDelta")
    deltas.first.wait_for(timeout=300_000)
    shown = [d.inner_text().strip() for d in deltas.all()]
    # linear probe and k-NN, then the retrieval metrics beside k-NN (precision@1, R-precision, MAP@R; issue 21)
    assert len(shown) == 5 and all(INTERVAL.match(text) for text in shown), shown

    screenshot(page, "lab-probes-intervals.png")
    page.get_by_role("tab", name="Compare").click()
    verdict = page.get_by_text(re.compile(r"cannot be told apart on these 40 test images \(p = 0\.\d+\)"))
    verdict.wait_for(timeout=30_000)
    sentence = verdict.inner_text()
    assert sentence.startswith("Pretrained + linear probe and Pretrained + k-NN"), sentence
    assert float(re.search(r"p = (0\.\d+)", sentence)[1]) >= 0.05
    page.get_by_text("McNemar's exact test", exact=False).first.wait_for(timeout=10_000)
    chart = page.locator(".js-plotly-plot").filter(has_text="Test accuracy per method")
    chart.wait_for(timeout=10_000)
    labels = chart.locator("text.bartext").evaluate_all("texts => texts.map(t => t.textContent)")  # SVG: no innerText
    assert len(labels) == 2 and all(re.match(r"^\d+\.\d% \(\d+\.\d–\d+\.\d%\) · 32px", t) for t in labels), labels
    assert chart.locator(".errorbar").count() == 2  # one Wilson error bar per bar
    screenshot(page, "lab-compare-intervals.png")
    assert "Traceback" not in page.content()

"""Presenter mode in Chromium: headline numbers grow largest and map points grow, measured on screen."""
import pytest

from browser_support import screenshot

pytestmark = pytest.mark.browser

QUERY = "explore?dataset=digits&limit=120&image_size=32&weights=random&map=pca"
SIZES = """() => {
  const px = (el) => parseFloat(getComputedStyle(el).fontSize);
  const metric = document.querySelector('[data-testid="stMetric"]');
  const value = metric.querySelector('[data-testid="stMetricValue"]');
  const leaf = [...value.querySelectorAll('*')].filter((e) => e.children.length === 0 && (e.textContent || "").trim())[0] || value;
  const label = metric.querySelector('[data-testid="stMetricLabel"]');
  const labelLeaf = [...label.querySelectorAll('*')].filter((e) => e.children.length === 0 && (e.textContent || "").trim())[0] || label;
  const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  const cut = [...document.querySelectorAll('[data-testid="stMetric"] *')].filter(
    (e) => e.children.length === 0 && e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent);
  return {value: px(leaf), label: px(labelLeaf), marker: plot ? plot.data[0].marker.size : null, cut};
}"""


def _measure(page, server: str, presenter: bool) -> dict:
    page.goto(f"{server}/{QUERY}&presenter={'true' if presenter else 'false'}")
    page.get_by_role("button", name="Extract & analyse").click()
    page.get_by_test_id("stMetricValue").first.wait_for(timeout=90_000)
    page.wait_for_function("() => { const p = document.querySelector('[data-testid=\"stPlotlyChart\"] .js-plotly-plot');"
                           " return p && p.data && p.data.length; }", timeout=60_000)
    return page.evaluate(SIZES)


def test_presenter_mode_makes_numbers_largest_and_points_bigger(page, server):
    normal = _measure(page, server, presenter=False)
    big = _measure(page, server, presenter=True)
    screenshot(page, "presenter-explore.png")
    assert big["value"] >= 1.8 * big["label"], big  # a projector needs the numbers largest (was 25.3 = 25.3)
    assert big["value"] > 1.5 * normal["value"], (normal, big)
    assert big["marker"] == 2 * normal["marker"], (normal, big)
    assert not big["cut"], f"metric text cut off at projector size: {big['cut']}"


CUT_BUTTONS = """() => [...document.querySelectorAll('button')].filter((b) => b.offsetParent !== null &&
  [b, ...b.querySelectorAll('*')].some((e) => e.getAttribute('data-testid') !== 'stIconMaterial' &&
    !e.closest('[data-testid="stIconMaterial"]') && e.scrollWidth > e.clientWidth + 1)).map((b) => b.innerText)"""


@pytest.mark.parametrize("query", ["", "?presenter=true", "?lang=zh&presenter=true"])
def test_no_tour_button_label_is_cut_off(page, server, query):
    """The tour's buttons, in presenter mode and in Chinese too: "Race probe and fine-tune on digits in the lab"
    was cut in a third of the page's width."""
    page.set_viewport_size({"width": 1400, "height": 6000})
    page.goto(f"{server}/{query}")
    page.locator(".st-key-tour-open-compare button").wait_for(timeout=90_000)
    page.wait_for_timeout(1_000)  # the icon font and the presenter style applied
    assert page.evaluate(CUT_BUTTONS) == []

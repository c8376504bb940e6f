"""Details a teacher and a practitioner met in Chromium (issue 23, item 10): a clicked image is marked on the map
with the neighbours the panel lists, and the probe's C-sweep axis never repeats a tick."""
import re

import pytest

from browser_support import click_row, screenshot

pytestmark = pytest.mark.browser

ROW = 7
MARKS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const data = gd._fullData.filter((t) => !t.customdata);
  return data.map((t) => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}));
}"""
POINT = """(row) => {
  const gd = document.querySelector('.js-plotly-plot');
  for (const t of gd._fullData) if (t.customdata) for (let i = 0; i < t.x.length; i++)
    if (Number(t.customdata[i][0]) === row) return [t.x[i], t.y[i]];
}"""


def test_a_clicked_image_and_its_neighbours_are_marked_and_sweep_ticks_differ(page, server):
    page.set_viewport_size({"width": 1400, "height": 3000})
    page.goto(f"{server}/explore?dataset=digits&limit=120&image_size=32&weights=random&map=pca")
    page.get_by_role("button", name="Extract & analyse").click()
    page.get_by_text("PCA 2-D of 120 feature vectors").wait_for(timeout=240_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    clicked = click_row(page, ROW)  # the map is of the image the panel says was clicked
    page.wait_for_function("() => document.querySelector('.js-plotly-plot').data.some((t) => t.name === 'clicked image')",
                           timeout=30_000)
    marks = {m["name"]: m for m in page.evaluate(MARKS)}
    star, rings = marks["clicked image"], marks["its 12 nearest neighbours"]
    assert [star["x"][0], star["y"][0]] == page.evaluate(POINT, clicked)
    captions = page.get_by_test_id("stImageCaption").all_inner_texts()
    listed = [int(re.match(r"#(\d+)", c).group(1)) for c in captions if re.match(r"#\d+", c)][1:13]
    assert len(listed) == 12 and len(rings["x"]) == 12
    assert sorted(zip(rings["x"], rings["y"])) == sorted(tuple(page.evaluate(POINT, r)) for r in listed)
    screenshot(page, "explore-clicked-marks.png")

    page.get_by_text("Probe sweep: validation accuracy vs C").click()
    sweep = page.locator(".js-plotly-plot").filter(has_text="validation accuracy vs C")
    sweep.locator(".ytick").first.wait_for(timeout=30_000)
    ticks = [t for t in sweep.locator(".ytick text").evaluate_all("(els) => els.map((e) => e.textContent)") if t]
    assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks

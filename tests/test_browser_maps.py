"""Maps in a real browser: selections over rings, clearing, exports, and the map that replaces the preview.

Each test drives the page as a user does (URL, toolbar, drags, buttons); the server log must stay free
of tracebacks (browser_support's `page` fixture checks it after every test).
"""
import re

import pytest

from browser_support import act_until, click_row, drag_box, hover_first_point, screenshot
from indexed_images import write_indexed_folder

pytestmark = pytest.mark.browser

TINY = "test_efficientnet.r160_in1k"


def _source(folder) -> str:
    return f"dataset=folder&folder_path={folder}&backbone={TINY}&weights=random&image_size=32"


def _explore_pca(page, server, folder) -> None:
    """The tiny model's PCA map of the indexed folder on Features & probe, the whole map on screen."""
    page.set_viewport_size({"width": 1400, "height": 1800})
    page.goto(f"{server}/explore?{_source(folder)}&map=pca")
    page.get_by_role("button", name="Extract & analyse").click()
    page.get_by_text("PCA 2-D of 60 feature vectors").wait_for(timeout=180_000)


def test_compare_survives_a_second_selection_over_ringed_points(page, server, user_dir):
    """Issue 14.1: the second box, over a ringed point, replaced the page with KeyError: 0."""
    folder = write_indexed_folder(user_dir / "indexed-compare")
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(f"{server}/compare?{_source(folder)}&backbone_b={TINY}&weights_b=random&image_size_b=64&map=pca")
    page.get_by_role("button", name="Compare").click()
    page.get_by_text("Mean neighbour agreement").wait_for(timeout=180_000)
    page.locator(".js-plotly-plot").nth(1).wait_for(timeout=30_000)
    drag_box(page, 0, (0.05, 0.05, 0.6, 0.95))
    heading = page.get_by_text(re.compile(r"^The \d+ selected images"))
    heading.first.wait_for(timeout=30_000)
    first = int(heading.first.inner_text().split()[1])
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].every("
                           "(gd) => gd._fullData && gd._fullData.some((t) => t.name === 'selected'))", timeout=30_000)
    drag_box(page, 1, (0.02, 0.08, 0.98, 0.98))  # map B, over the rings and more
    page.wait_for_function("(first) => { const m = document.body.innerText.match(/The (\\d+) selected images/);"
                           " return m && Number(m[1]) > first; }", arg=first, timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0
    screenshot(page, "compare-second-selection.png")


def test_clear_selection_clears_the_map_too_and_clicks_work_again(page, server, user_dir):
    """Issue 14.7: after Clear selection the lasso outline and dimming stayed, and clicks did nothing."""
    folder = write_indexed_folder(user_dir / "indexed-clear")
    _explore_pca(page, server, folder)
    drag_box(page, 0, (0.1, 0.1, 0.7, 0.9))
    page.get_by_text("images selected").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Clear selection").click()
    page.get_by_text("images selected").wait_for(state="detached", timeout=30_000)
    # The new chart has no selection outline and no dimmed points.
    page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                           " return gd && gd._fullData && gd._fullData.length > 0"
                           " && !(gd.layout.selections || []).length"
                           " && gd._fullData.every((t) => !t.selectedpoints); }", timeout=30_000)
    row = 7
    click_row(page, row, timeout=30_000)


def test_hover_says_what_a_point_is_in_plain_words(page, server, user_dir):
    """Issue 14.8: the hover showed '=1.282917' and a 16-digit confidence."""
    folder = write_indexed_folder(user_dir / "indexed-hover")
    _explore_pca(page, server, folder)
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')?._fullData?.length > 0")
    # A chart just remounted by a rerun can miss the first hover (as click_row found).
    act_until(page, lambda: hover_first_point(page), page.get_by_text("c0/img_0000.png").first)
    text = page.evaluate("() => document.querySelector('.hoverlayer').textContent")
    assert re.search(r"confidence \d\.\d\d\)", text) and "=" not in text, text


def test_figure_html_keeps_the_class_colours(page, server, user_dir):
    """Issue 14.4: the exported HTML had Streamlit's placeholder colours (#000001...) on every point."""
    folder = write_indexed_folder(user_dir / "indexed-export")
    _explore_pca(page, server, folder)
    with page.expect_download() as download:
        page.get_by_role("button", name="Figure as HTML").click()
    html = open(download.value.path(), encoding="utf-8").read()
    assert download.value.suggested_filename.startswith("map-pca-2d-")
    for colour in ("#1f77b4", "#ff7f0e", "#2ca02c"):  # the three classes, in palette order
        assert colour in html
    assert "#000001" not in html and "#000002" not in html
    with page.expect_download() as download:
        page.get_by_role("button", name="Points as CSV").click()
    assert download.value.suggested_filename.startswith("map-pca-2d-")


def test_a_finished_map_replaces_the_preview_without_a_reload(page, server, user_dir):
    """Issue 14.5: small sets stayed on the PCA preview after their UMAP job had finished."""
    page.goto(f"{server}/jobs")
    page.get_by_text("Nothing queued or running.").wait_for(timeout=240_000)  # UMAP's one-off compile is done
    for limit in (80, 90):  # uncached features each time: the map job starts while the page draws the preview
        page.goto(f"{server}/explore?dataset=digits&limit={limit}&backbone={TINY}&weights=random&image_size=32")
        page.get_by_role("button", name="Extract & analyse").click()
        page.get_by_text(f"UMAP 2-D (15 neighbours, min dist 0.10, euclidean) of {limit} feature vectors").wait_for(
            timeout=120_000)
        assert page.get_by_text("Showing a PCA map until").count() == 0

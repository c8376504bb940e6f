"""Real browser: "Where it looks" under the neighbours panel draws a class activation map with a caption that says
what produced it (method, backbone, target)."""
import re

import pytest

from browser_support import click_row, screenshot

pytestmark = pytest.mark.browser

ROW = 7


def test_where_it_looks_draws_the_probe_map_and_says_what_made_it(page, server):
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.goto(f"{server}/explore?dataset=digits&limit=200&image_size=64&map=pca")
    page.get_by_role("button", name="Extract & analyse").click()
    page.get_by_text("PCA 2-D of 200 feature vectors").wait_for(timeout=240_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    clicked = click_row(page, ROW)  # the map is of the image the panel says was clicked
    page.get_by_role("button", name="Show where it looks").click()
    caption = page.get_by_text(re.compile(rf"^Grad-CAM of image #{clicked} on tf_efficientnet_lite0"))
    caption.wait_for(timeout=120_000)
    text = caption.inner_text()
    assert "the probe's predicted class:" in text and re.search(r"\(p = [01]\.\d\d\)", text), text
    assert "64 px" in text and "layer bn2 (2 × 2 grid" in text, text
    overlay = page.get_by_test_id("stImage").filter(has_text="Where it looks (Grad-CAM)")
    overlay.wait_for(timeout=30_000)
    assert overlay.locator("img").evaluate("(img) => img.complete && img.naturalWidth") == 224
    assert page.get_by_test_id("stException").count() == 0
    overlay.scroll_into_view_if_needed()
    screenshot(page, "where-it-looks.png")

"""The density view of a large map in a real browser: a box and a click on the image select images of the full set.

The server runs with PTM_SCATTERGL_MAX_POINTS=10, so the 60-image indexed folder is drawn the way a
map over 300,000 points is (the threshold is the only difference).
"""
import pytest

pytest.importorskip("datashader")

from browser_support import drag_box, gallery, hover_first_point, screenshot, serve  # noqa: E402
from indexed_images import write_indexed_folder  # noqa: E402
from test_browser_maps import TINY  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(data_dir, user_dir, server_log):  # this module's server: every map is a density view
    yield from serve(data_dir, server_log, PTM_SCATTERGL_MAX_POINTS="10", PTM_ALLOWED_ROOTS=str(user_dir))


def test_density_view_selects_by_box_and_by_click(page, server, user_dir):
    folder = write_indexed_folder(user_dir / "indexed-density")
    page.set_viewport_size({"width": 1400, "height": 1800})
    page.goto(f"{server}/explore?dataset=folder&folder_path={folder}&backbone={TINY}&weights=random"
              f"&image_size=32&map=pca")
    page.get_by_role("button", name="Extract & analyse").click()
    page.get_by_text("60 points drawn as one image").wait_for(timeout=180_000)
    page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                           " return gd && gd._fullLayout && gd._fullLayout.images.length === 1; }", timeout=30_000)
    drag_box(page, 0, (0.01, 0.01, 0.99, 0.99))  # the whole image: every one of the 60 images
    page.get_by_text("60 images selected").wait_for(timeout=30_000)
    page.locator('[data-testid="stImageContainer"]').nth(59).wait_for(timeout=30_000)
    shown = gallery(page, server)  # (caption's row, the row its image encodes) for each gallery image
    assert sorted(row for row, _ in shown) == list(range(60)) and all(row == image for row, image in shown)
    screenshot(page, "density-box.png")
    page.get_by_role("button", name="Clear selection").click()
    page.get_by_text("images selected").wait_for(state="detached", timeout=30_000)
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')?._fullData?.length > 0", timeout=30_000)
    x, y = hover_first_point(page)
    page.mouse.click(x, y)
    page.get_by_text("(clicked)").wait_for(timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0
    screenshot(page, "density-click.png")

"""Real browser: Debian's chromium, driven by Playwright, against `streamlit run app.py`."""
import re

import pytest

from browser_support import gallery, screenshot
from indexed_images import write_indexed_folder

pytestmark = pytest.mark.browser


def _run_and_wait(page, title: str, timeout_ms: int = 300_000) -> None:
    page.get_by_role("button", name="Extract & analyse").click()
    page.get_by_text(f"{title} — done").wait_for(timeout=timeout_ms)
    page.get_by_text("Linear-probe test accuracy").wait_for(timeout=10_000)


def test_default_flow_in_a_real_browser(page, server):
    # The app opens on the tour; the explorer on the offline default.
    page.get_by_role("heading", name="When does pretraining help?").wait_for(timeout=90_000)
    page.goto(f"{server}/explore")
    page.get_by_text("tf_efficientnet_lite0 (bundled) on mnist5k @ 128px").first.wait_for(timeout=90_000)
    page.goto(f"{server}/explore?limit=200")  # a subset, set through the URL like a shared link
    bundled = "tf_efficientnet_lite0 (bundled) on mnist5k (limit 200) @ 128px"
    page.get_by_text(bundled).first.wait_for(timeout=30_000)
    _run_and_wait(page, bundled)
    # The UMAP map: a WebGL canvas and one legend entry per class.
    page.locator(".js-plotly-plot canvas.gl-canvas-context").first.wait_for(state="attached", timeout=30_000)
    the_map = page.locator(".js-plotly-plot").filter(has=page.locator("canvas.gl-canvas-context"))
    assert the_map.first.locator(".legend .traces").count() == 10  # (the probe sweep's chart has its own legend)
    accuracy = page.locator('[data-testid="stMetricValue"]').first.inner_text()
    assert accuracy.endswith("%") and 0 <= float(accuracy.rstrip("%")) <= 100
    assert page.get_by_test_id("stMetricValue").get_by_text("200 × 1,280").count() == 1
    # Beside the speed, the precision that ran, in words (and OpenVINO where it computed them).
    speed = page.get_by_test_id("stCaptionContainer").get_by_text(re.compile(r"^\d+ img/s, ")).first.inner_text()
    assert re.fullmatch(r"\d+ img/s, (fp32|bf16 autocast|fp32, OpenVINO|bf16, OpenVINO)( after the first .*)?", speed)
    screenshot(page, "explore.png")
    assert "Traceback" not in page.content()

    # Random weights, then back: the pretrained result comes straight back from the job and its cache.
    page.get_by_test_id("stSidebarUserContent").get_by_text("Random init").click()  # the sidebar's weights choice
    page.get_by_text("Ready: tf_efficientnet_lite0 (random init, seed 0)").or_(
        page.get_by_text("the settings now describe")).first.wait_for()
    _run_and_wait(page, "tf_efficientnet_lite0 (random init, seed 0) on mnist5k (limit 200) @ 128px")
    page.get_by_text("Bundled (offline ImageNet)").click()
    page.get_by_text(f"{bundled} — done").wait_for(timeout=30_000)
    assert "Traceback" not in page.content()


def _progress_count(page) -> int:
    """Images done so far, read off the progress bar's label ('123/2000 images, …')."""
    label = page.get_by_text("/2000 images").first.inner_text()
    return int(label.split("/2000 images")[0].split()[-1])


PREVIEW_JS = """() => {
  for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
    if (m.innerText.startsWith('Linear probe so far')) {
      const v = m.querySelector('[data-testid="stMetricValue"]').innerText.trim();
      if (v.endsWith('%')) return v;
    }
  }
  return null;
}"""


def _preview(page) -> tuple[float, int]:
    """The preview's accuracy and how many images it saw, once it has a probe (waits for it)."""
    page.wait_for_function(PREVIEW_JS, timeout=120_000)
    accuracy = float(page.evaluate(PREVIEW_JS).rstrip("%"))
    caption = page.get_by_text("extracted so far, a seeded random sample of the whole set").first.inner_text()
    return accuracy, int(caption.split("Preview of the ")[1].split(" images")[0].replace(",", ""))


def test_a_job_survives_a_reload_is_cancelled_and_resumes(page, server):
    # 2,000 images at 224 px: long enough to reload and cancel mid-run also at OpenVINO's speed (once the
    # server's warm-up has converted the default backbone, 600 could finish during the reload).
    title = "tf_efficientnet_lite0 (bundled) on mnist5k (limit 2000) @ 224px"
    page.goto(f"{server}/explore?dataset=mnist5k&limit=2000&image_size=224")  # settings travel in the URL
    page.get_by_text(f"Ready: {title}").wait_for(timeout=60_000)
    page.get_by_role("button", name="Extract & analyse").click()
    page.get_by_text("/2000 images").first.wait_for(timeout=120_000)
    # The answer forming while the extraction runs: a probe and a PCA map of the images done so far.
    accuracy, seen = _preview(page)
    assert 0 <= accuracy <= 100 and 0 < seen < 2000
    page.locator(".js-plotly-plot .xtitle", has_text="PCA 1").first.wait_for(timeout=10_000)
    before = _progress_count(page)

    page.reload()  # the browser refresh must neither kill the job nor lose the page's settings
    page.get_by_text(title).first.wait_for(timeout=60_000)
    page.get_by_text("/2000 images").first.wait_for(timeout=60_000)
    page.wait_for_timeout(2_000)
    after = _progress_count(page)
    assert 0 < before < after < 2000, (before, after)
    assert _preview(page)[1] >= seen  # the preview is the job's, not the page's: a refresh keeps it

    page.get_by_role("button", name="Cancel").click()
    page.get_by_text(f"{title}: cancelled").wait_for(timeout=30_000)
    assert page.get_by_text("Linear-probe test accuracy").count() == 0

    _run_and_wait(page, title)  # starts again, from the saved checkpoint
    # The features metric is drawn just after the accuracy that _run_and_wait waits for: wait for it, then count.
    shape = page.get_by_test_id("stMetricValue").get_by_text("2,000 × 1,280")
    shape.first.wait_for(timeout=10_000)
    assert shape.count() == 1
    assert "Traceback" not in page.content()


def test_a_tiny_fine_tune_runs_to_completion_with_its_curve(page, server):
    page.goto(f"{server}/lab?dataset=digits&limit=100&image_size=32")
    page.get_by_text("tf_efficientnet_lite0 (bundled) on digits (limit 100) @ 32px").first.wait_for(timeout=60_000)
    page.get_by_role("tab", name="Fine-tune").click()
    size = page.locator('input[aria-label="Fine-tune image size (px)"]')
    size.focus()
    for _ in range(2):  # 96 -> 64 -> 32 px
        size.press("ArrowLeft")
    batch = page.get_by_role("spinbutton", name="Batch size")
    batch.fill("16")
    batch.press("Enter")
    page.wait_for_timeout(1_000)
    page.get_by_role("button", name="Start fine-tuning").click()
    page.get_by_role("button", name="Best checkpoint (.safetensors)").wait_for(timeout=300_000)
    page.get_by_text("Stopped early", exact=True).wait_for(timeout=10_000)  # the result's metrics row
    # The precision that trained, as measured and chosen here, in words under the metrics.
    page.get_by_text(re.compile(r"^Trained in (fp32|bf16) at \d+ img/s\.")).first.wait_for(timeout=10_000)
    curve = page.locator(".js-plotly-plot").filter(has_text="train loss")
    curve.first.wait_for(timeout=10_000)
    assert curve.first.locator(".scatterlayer .trace").count() >= 1  # the loss line is drawn
    assert "Traceback" not in page.content()
    screenshot(page, "finetune.png")


# Before the drag: the rows plotly draws inside the box, from its own data and axes (page pixels -> data).
_ROWS_IN_BOX = """([x0, y0, x1, y1]) => {
  const gd = document.querySelector('.js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const area = gd.querySelector('.nsewdrag').getBoundingClientRect();
  const [lo, hi] = [xa.p2l(x0 - area.left), xa.p2l(x1 - area.left)].sort((a, b) => a - b);
  const [bottom, top] = [ya.p2l(y1 - area.top), ya.p2l(y0 - area.top)].sort((a, b) => a - b);
  const rows = [];
  for (const trace of gd._fullData.filter((t) => t.customdata)) {  // not the clicked image's marks
    for (let i = 0; i < trace.x.length; i++) {
      if (trace.x[i] >= lo && trace.x[i] <= hi && trace.y[i] >= bottom && trace.y[i] <= top) rows.push(Number(trace.customdata[i][0]));
    }
  }
  return rows.sort((a, b) => a - b);
}"""


_PIXEL_OF_ROW = """(row) => {
  const gd = document.querySelector('.js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const area = gd.querySelector('.nsewdrag').getBoundingClientRect();
  for (const trace of gd._fullData.filter((t) => t.customdata)) {  // not the clicked image's marks
    for (let i = 0; i < trace.x.length; i++) {
      if (Number(trace.customdata[i][0]) === row) return [area.left + xa.l2p(trace.x[i]), area.top + ya.l2p(trace.y[i])];
    }
  }
  return null;
}"""


def test_a_box_selection_shows_each_selected_points_own_image(page, server, user_dir):
    """Streamlit issue 8914 in a real browser: drag a box, and every gallery image is its own point's."""
    folder = write_indexed_folder(user_dir / "indexed")
    title = f"test_efficientnet.r160_in1k (random init, seed 0) on folder:{folder} @ 32px"
    page.set_viewport_size({"width": 1400, "height": 1800})  # the whole map on screen: no scrolling mid-drag
    page.goto(f"{server}/explore?dataset=folder&folder_path={folder}&backbone=test_efficientnet.r160_in1k&weights=random"
              f"&image_size=32&map=pca")
    page.get_by_text(f"Ready: {title}").wait_for(timeout=60_000)
    page.get_by_role("button", name="Extract & analyse").click()
    page.get_by_text("PCA 2-D of 60 feature vectors").wait_for(timeout=120_000)
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')?._fullData?.length > 0")
    page.wait_for_timeout(1_000)
    # One click on a point: that image and its nearest neighbours in the full feature space.
    clicked = 45
    x, y = page.evaluate(_PIXEL_OF_ROW, clicked)
    page.mouse.move(x - 20, y - 20)
    page.mouse.move(x, y, steps=5)  # WebGL points are picked on hover first
    page.get_by_text(f"c{clicked // 20}/img_{clicked:04d}.png").wait_for(timeout=10_000)  # the hover label
    page.mouse.click(x, y)
    page.get_by_text("(clicked)").wait_for(timeout=30_000)
    shown = gallery(page, server)
    assert shown[0] == (clicked, clicked) and len(shown) == 13
    assert all(row == image for row, image in shown), shown

    # A box: exactly the points inside it, each with its own image.
    area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    box = [area["x"] + area["width"] * 0.15, area["y"] + area["height"] * 0.1,
           area["x"] + area["width"] * 0.6, area["y"] + area["height"] * 0.9]
    expected = page.evaluate(_ROWS_IN_BOX, box)
    assert 5 <= len(expected) < 60, expected
    page.locator('.modebar-btn[data-title="Box Select"]').first.click()
    page.mouse.move(box[0], box[1])
    page.mouse.down()
    page.mouse.move(box[2], box[3], steps=12)
    page.mouse.up()
    page.get_by_text(f"{len(expected)} images selected").wait_for(timeout=30_000)
    page.locator('[data-testid="stImageContainer"]').nth(len(expected) - 1).wait_for(timeout=30_000)
    shown = gallery(page, server)
    assert [row for row, _ in shown] == expected
    assert all(row == image for row, image in shown), shown
    screenshot(page, "selection.png")
    assert "Traceback" not in page.content()

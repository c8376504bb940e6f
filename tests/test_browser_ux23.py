"""Issue 23, items 5, 7, 8 and 10's URL, in a real browser: an upload carries over under its own name, Compare with a
large selection says what it shows, a cancelled fine-tune says so on the Jobs page with its own settings.

Each test drives the page as a user does; the server log must stay free of tracebacks (browser_support's `page`).
"""
import re
import time
from urllib.parse import parse_qs, urlparse

import pytest

from browser_support import SIDEBAR_STATE, drag_box, screenshot
from indexed_images import write_indexed_folder
from ingest_helpers import make_zip, png_bytes

pytestmark = pytest.mark.browser

TINY = "test_efficientnet.r160_in1k"
# The grid draws on a canvas; its cells are also an accessible table, which is what this reads.
CELLS = """() => [...document.querySelectorAll('[data-testid="stDataFrame"] table tr')].map(
  (tr) => [...tr.querySelectorAll('th, td')].map((c) => c.innerText.trim()))"""


def _query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _shapes_zip(folder):
    entries = {f"{c}/{c}{i}.png": png_bytes(20 * i + 10 + k, size=(16, 16))
               for k, c in enumerate(("circle", "square")) for i in range(6)}
    entries |= {"circle/notes.txt": b"hello", "square/broken.png": b"not a png"}
    return make_zip(folder / "shapes3.zip", entries)


def test_an_upload_is_used_by_its_name_and_leaves_no_stale_path(page, server, user_dir):
    """Items 5 and 10: no "use this dataset"; the sidebar's zip showed an empty path; titles named the storage path;
    the Datasets page ignored the sidebar's limit; a stale zip_path stayed in the URL after going back to mnist5k."""
    path = _shapes_zip(user_dir)
    page.goto(f"{server}/datasets?limit=8&image_size=32&backbone={TINY}&weights=random")
    page.get_by_role("heading", name="Datasets", exact=True).wait_for(timeout=60_000)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))
    page.get_by_role("heading", name="shapes3.zip").wait_for(timeout=60_000)
    body = page.locator("body")
    page.get_by_text("8 images, 2 classes. (the sidebar's limit of 8, seed 0)").wait_for(timeout=30_000)
    # The skip notice names the files, as on the explorer (one shared notice).
    page.get_by_text(re.compile(r"2 files skipped .*: notes\.txt, broken\.png")).wait_for(timeout=10_000)
    assert "uploads/" not in body.inner_text()
    assert page.get_by_label("Dataset spec", exact=True).input_value() == ""  # no storage path in the spec box either
    page.get_by_role("button", name="Use this dataset").click()
    page.get_by_text("The sidebar uses shapes3.zip on every page.").wait_for(timeout=30_000)
    page.wait_for_function("() => new URLSearchParams(location.search).get('dataset') === 'zip'", timeout=15_000)
    screenshot(page, "ux23-datasets-upload.png")

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Features & probe", exact=True).click()
    header = f"{TINY} (random init, seed 0) on shapes3.zip (limit 8) @ 32px"
    page.get_by_text(header).first.wait_for(timeout=60_000)
    page.wait_for_function(f"() => ({SIDEBAR_STATE})()['Uploaded zip'] === 'shapes3.zip'", timeout=30_000)
    state = page.evaluate(SIDEBAR_STATE)
    assert state["Dataset"] == "zip", state
    assert page.get_by_test_id("stSidebar").get_by_label("Zip path").count() == 0  # no empty path to fill in
    assert "uploads/" not in body.inner_text()
    screenshot(page, "ux23-explore-upload.png")

    page.get_by_test_id("stSidebar").get_by_role("combobox", name="Dataset").click()
    page.get_by_role("option", name="mnist5k", exact=True).click()
    page.get_by_text(f"{TINY} (random init, seed 0) on mnist5k (limit 8) @ 32px").first.wait_for(timeout=60_000)
    page.wait_for_function("() => !new URLSearchParams(location.search).has('dataset')", timeout=15_000)
    assert "zip_path" not in _query(page) and _query(page)["limit"] == "8", page.url
    # Back to zip: the upload is still listed and chosen, by name.
    page.get_by_test_id("stSidebar").get_by_role("combobox", name="Dataset").click()
    page.get_by_role("option", name="zip", exact=True).click()
    page.get_by_text(header).first.wait_for(timeout=60_000)


def test_compare_with_a_large_selection_draws_no_rings_and_says_how_many_are_shown(page, server, user_dir):
    """Item 7: rings turned both maps black; the gallery showed the first 60 by index (all class 0) unsaid."""
    folder = write_indexed_folder(user_dir / "indexed-240", n=240, classes=3)
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(f"{server}/compare?dataset=folder&folder_path={folder}&backbone={TINY}&weights=random&image_size=32"
              f"&backbone_b={TINY}&weights_b=random&image_size_b=64&map=pca")
    page.get_by_role("button", name="Compare").wait_for(timeout=90_000)  # a fresh server on a busy machine
    page.get_by_role("button", name="Compare").click()
    page.get_by_text("Mean neighbour agreement").wait_for(timeout=180_000)
    page.locator(".js-plotly-plot").nth(1).wait_for(timeout=30_000)
    drag_box(page, 1, (0.02, 0.02, 0.98, 0.98))  # map B: its points spread over the plot
    shown = page.get_by_text(re.compile(r"^60 of 2\d\d shown"))
    shown.wait_for(timeout=60_000)
    n = int(re.match(r"60 of (\d+)", shown.inner_text())[1])
    assert n > 200
    page.get_by_text(f"{n} images selected: more than 200 are not ringed on the map").wait_for(timeout=10_000)
    traces = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].slice(0, 2).map("
                           "(gd) => gd._fullData.map((t) => t.name))")
    assert len(traces) == 2 and not any("selected" in names for names in traces), traces
    # The gallery streams in after its caption: read it once all 60 images are there.
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stImage\"]').length >= 60", timeout=30_000)
    captions = page.locator('[data-testid="stImage"]').all_inner_texts()
    classes = set(re.findall(r"· (c\d) ·", " ".join(captions)))
    # The sample covers every selected class, not the first 60 rows (all c0).
    assert classes == {"c0", "c1", "c2"}, (classes, n, len(captions), captions[:3])
    screenshot(page, "ux23-compare-large-selection.png")


def test_a_cancelled_fine_tune_says_so_with_its_own_settings(page, server, data_dir, monkeypatch):
    """Item 8: the Jobs page listed a cancelled fine-tune as "done", with the sidebar's 128 px and no epochs, learning
    rate or batch size. The record is written as the lab's fine-tune job writes it (its spec's config and the
    metrics run_finetune records), into this server's run store."""
    monkeypatch.setenv("PTM_DATA_DIR", str(data_dir))
    from ptm_core.base import DatasetConfig, FinetuneConfig, Source
    from ptm_core.flows import LabRequest, lab_spec
    from ptm_core.runs.store import RunStore

    source = Source(DatasetConfig("digits", limit=300))
    ft = FinetuneConfig(mode="lp-ft", epochs=6, lr_head=3e-3, batch_size=16, image_size=32)
    spec = lab_spec("finetune", LabRequest(source, finetune=ft))
    now = time.time()
    RunStore().save({"id": "ft-cancelled", "key": spec.key, "kind": spec.kind, "title": spec.title,
                     "config": spec.config, "status": "done", "progress": 1.0, "message": "done",
                     "metrics": {"method": "finetune", "test_accuracy": 0.937, "mode": "lp-ft", "image_size": 32,
                                 "stopped_early": True, "stopped_epoch": 2, "epochs": 6},
                     "artifacts": {}, "log": [], "created": now - 60, "started": now - 60, "finished": now})
    page.set_viewport_size({"width": 2400, "height": 1200})  # the grid's accessible table holds the columns in view
    page.goto(f"{server}/jobs")
    page.get_by_role("heading", name="Jobs", exact=True).wait_for(timeout=60_000)
    page.wait_for_function(f"() => ({CELLS})().some((r) => r.includes('fine-tune lp-ft'))", timeout=60_000)
    rows = page.evaluate(CELLS)
    header = next(r for r in rows if "status" in r)
    row = dict(zip(header, next(r for r in rows if "fine-tune lp-ft" in r)))
    assert row["status"] == "cancelled at epoch 2 of 6 (best checkpoint kept)", row
    assert row["settings"] == "lp-ft, 6 epochs, lr 0.003 head / 0.0001 backbone, batch 16, 32px", row
    assert row["size"] == "32px", row
    screenshot(page, "ux23-jobs-cancelled.png")

"""Shared pieces of the real-browser tests: Debian's chromium, driven by Playwright, against `streamlit run app.py`.

Each test module gets its own server (conftest's module-scoped `server` fixture); every test fails on a traceback
that the server logged while it ran, not only on one the page shows (conftest's `page`, through `open_page`).
Importing this module skips the importing test module where chromium is missing, or fails it under
PTM_REQUIRE_BROWSER=1 (CI), so every browser test module imports it.
"""
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
from PIL import Image

from indexed_images import decode

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).exists():
    if os.environ.get("PTM_REQUIRE_BROWSER"):
        raise RuntimeError("chromium is required for the browser test (apt-get install chromium)")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

# What the sidebar's widgets show, by label: the value a user reads, not what the script thinks it set.
SIDEBAR_STATE = """() => {
  const out = {};
  const bar = document.querySelector('[data-testid="stSidebar"]');
  const lines = (el) => el.innerText.split('\\n').map((t) => t.trim()).filter(Boolean);
  bar.querySelectorAll('[data-testid="stSlider"]').forEach((el) => {
    const [label, value] = lines(el); out[label] = value; });
  bar.querySelectorAll('[data-testid="stSelectbox"]').forEach((el) => {
    out[lines(el)[0]] = el.querySelector('input[role="combobox"]').value; });
  bar.querySelectorAll('[data-testid="stNumberInput"]').forEach((el) => {
    out[lines(el)[0]] = el.querySelector('input').value; });
  bar.querySelectorAll('[data-testid="stRadio"]').forEach((el) => {
    const checked = [...el.querySelectorAll('[data-testid="stRadioOption"]')].find((o) => o.querySelector('input').checked);
    out[lines(el)[0]] = checked ? checked.innerText.trim() : null; });
  bar.querySelectorAll('input[type="checkbox"]').forEach((el) => { out[el.getAttribute('aria-label')] = el.checked; });
  return out;
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(data_dir: Path, server_log: Path, **env_extra: str):
    """`streamlit run app.py` on a free port with PTM_DATA_DIR (and env_extra) set; yields its URL."""
    port = _free_port()
    env = dict(os.environ, PTM_DATA_DIR=str(data_dir), **env_extra)
    log = open(server_log, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    yield f"http://127.0.0.1:{port}"
    stop(proc, log)


def stop(proc: subprocess.Popen, log) -> None:
    """SIGTERM, as Ctrl-C would; a server stopped while its start-up warm-up is inside a native forward waits for
    that call (ptm_core.base.native_exit waits up to 30 s a lock at exit, rather than abort mid-call), so it gets 40 s.
    Past that it is killed and the stacks of its threads, if py-spy is installed, are left in its log. (The 32 s
    teardowns CI saw were the exit handlers' lock order, fixed in native_exit; a stop now takes seconds.)"""
    proc.terminate()
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        if shutil.which("py-spy"):
            subprocess.run(["py-spy", "dump", "--pid", str(proc.pid)], stdout=log, stderr=subprocess.STDOUT, timeout=60)
        proc.kill()
        proc.wait(timeout=20)
    finally:
        log.close()


def open_page(server: str, server_log: Path, node):
    """A chromium page on `server` for the test `node` (conftest's `page` fixture); what the page showed goes into a
    failed test's report, and a traceback the server logged while the test ran fails it."""
    start = server_log.stat().st_size if server_log.exists() else 0
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server)
        yield page
        report = getattr(node, "report_call", None)
        if report is not None and report.failed:
            describe_failure(page, node.name)
        browser.close()
    logged = server_log.read_text(errors="replace")[start:]
    assert "Traceback" not in logged, f"the server logged a traceback during this test:\n{logged[-3000:]}"


# Each chart on the page: its box, and the first ancestor that hides it (display, visibility or opacity).
CHARTS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map((gd) => {
  const r = gd.getBoundingClientRect();
  let hidden = null;
  for (let e = gd; e && e.nodeType === 1 && !hidden; e = e.parentElement) {
    const cs = getComputedStyle(e);
    if (cs.display === 'none' || cs.visibility === 'hidden' || cs.opacity === '0')
      hidden = (e.getAttribute('data-testid') || e.tagName) + ' ' + cs.display + '/' + cs.visibility + '/' + cs.opacity;
  }
  return {box: [r.x, r.y, r.width, r.height].map(Math.round), traces: (gd._fullData || []).length, hidden};
})"""


def describe_failure(page, name: str) -> None:
    """What the page showed when a browser test failed, into the test's report (and a screenshot beside)."""
    try:
        screenshot(page, f"failed-{name}.png")
        print(f"charts: {page.evaluate(CHARTS_JS)}")
        print(f"page text:\n{page.locator('body').inner_text(timeout=5_000)[:2_000]}")
    except Exception as exc:  # the page may be gone; the test's own failure is what matters
        print(f"could not describe the page: {type(exc).__name__}: {exc}")


def settled(page, quiet_s: float = 1.0, timeout_s: float = 120.0) -> None:
    """Until Streamlit has stopped running the script for `quiet_s`: a rerun leaves the last run's widgets on the
    page for a moment (a button about to be replaced, an emptied uploader beside its replacement), and a click on
    one of those is lost."""
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_s and time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count():
            quiet_since = time.monotonic()
        page.wait_for_timeout(200)



def act_until(page, act, shown, state: str = "visible", attempts: int = 3, timeout: int = 10_000) -> None:
    """`act()` (a hover, a click) after the page settles, again until `shown` reaches `state`: a rerun that remounts
    its target (a chart, a button about to be replaced) can swallow the first one."""
    for attempt in range(attempts):
        settled(page)
        act()
        try:
            shown.wait_for(state=state, timeout=timeout)
            return
        except sync_api.TimeoutError:
            if attempt == attempts - 1:
                raise

def screenshot(page, name: str) -> None:
    folder = Path(os.environ.get("PTM_SCREENSHOT_DIR", "/tmp"))
    page.screenshot(path=str(folder / name), full_page=True)


def hover_first_point(page) -> tuple[float, float]:
    """Move the mouse onto the first point of the page's first plotly chart; its screen position."""
    x, y = page.evaluate("""() => {
      const gd = document.querySelector('.js-plotly-plot'); const t = gd._fullData[0];
      const area = gd.querySelector('.nsewdrag').getBoundingClientRect();
      return [area.left + gd._fullLayout.xaxis.l2p(t.x[0]), area.top + gd._fullLayout.yaxis.l2p(t.y[0])];
    }""")
    page.mouse.move(x - 15, y - 15)
    page.mouse.move(x, y, steps=5)  # WebGL points are picked on hover
    return x, y


def click_row(page, row: int, timeout: int = 60_000) -> int:
    """Click the first map's point for data row `row` (found by its customdata, so never a mark), as a user would:
    hover first (WebGL points are picked on hover), then click. Returns the row the neighbours panel says was
    clicked: another point can sit on the same pixel (PCA of bf16 or fp32 features moves them)."""
    x, y = page.evaluate("""(row) => {
      const gd = document.querySelector('.js-plotly-plot');
      const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
      const area = gd.querySelector('.nsewdrag').getBoundingClientRect();
      for (const t of gd._fullData) if (t.customdata) for (let i = 0; i < t.x.length; i++)
        if (Number(t.customdata[i][0]) === row) return [area.left + xa.l2p(t.x[i]), area.top + ya.l2p(t.y[i])];
    }""", row)
    hover = page.locator(".js-plotly-plot .hoverlayer .hovertext")
    for _attempt in range(15):  # a chart just remounted (after Clear selection) may miss the first hover
        page.mouse.move(x - 20, y - 20)
        page.mouse.move(x, y, steps=5)
        if hover.count():
            break
        page.wait_for_timeout(1_000)
    page.mouse.click(x, y)
    clicked = page.get_by_text("(clicked)").first
    clicked.wait_for(timeout=timeout)
    return int(re.match(r"#(\d+)", clicked.inner_text()).group(1))


def drag_box(page, chart: int, fractions=(0.1, 0.1, 0.9, 0.9)) -> None:
    """Box Select on the chart's toolbar, then a drag over the given share of its plot area."""
    plot = page.locator(".js-plotly-plot").nth(chart)
    plot.hover()
    plot.locator('.modebar-btn[data-title="Box Select"]').click()
    area = plot.locator(".nsewdrag").first.bounding_box()
    x0, y0, x1, y1 = fractions
    page.mouse.move(area["x"] + area["width"] * x0, area["y"] + area["height"] * y0)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * x1, area["y"] + area["height"] * y1, steps=12)
    page.mouse.up()


def gallery(page, server: str) -> list[tuple[int, int]]:
    """(caption's row, the row its image encodes) for each image of the gallery (images of indexed_images)."""
    shown = []
    images = page.locator('[data-testid="stImageContainer"]')
    for i in range(images.count()):
        caption = images.nth(i).get_by_test_id("stImageCaption").inner_text()  # "#row · class ..."
        src = images.nth(i).locator("img").get_attribute("src")
        pixels = Image.open(io.BytesIO(page.request.get(urljoin(server + "/", src)).body()))
        shown.append((int(caption.split("·")[0].strip().lstrip("#")), decode(pixels)))
    return shown

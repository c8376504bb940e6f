"""README's screenshots, taken from the real app: `python assets/screenshots.py` (a few minutes on 2 cores).

Starts `streamlit run app.py` on a free port with its own data directory, drives it in Debian's
headless chromium with Playwright (never a browser download), and writes assets/*.png. Needs
`apt-get install chromium fonts-wqy-microhei` (the font draws the Chinese screenshots).
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LONG = 900_000  # ms: every tour step from nothing cached on a 2-core CPU


def start_server(data_dir: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--browser.gatherUsageStats", "false"], cwd=ROOT,
                            env=dict(os.environ, PTM_DATA_DIR=data_dir), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    return proc, f"http://127.0.0.1:{port}"


def shoot(page: Page, name: str, out: Path) -> None:
    """The whole page: Streamlit scrolls inside its main section, so the viewport grows to its height first."""
    page.wait_for_timeout(1_500)  # let plotly finish drawing
    height = page.evaluate("() => Math.max(document.body.scrollHeight, ...[...document.querySelectorAll("
                           "'[data-testid=\"stMain\"], [data-testid=\"stAppViewContainer\"]')].map((e) => e.scrollHeight))")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(int(height), 9_000)})
    page.wait_for_timeout(1_500)
    page.screenshot(path=str(out / name), full_page=True)
    page.set_viewport_size(size)
    print("wrote", out / name, flush=True)


def tour(page: Page, url: str, out: Path) -> None:
    page.goto(url)
    page.get_by_role("button", name="Run every step").click()
    page.get_by_text("Notice: adapting").or_(page.get_by_text("Notice: with this little training")).first.wait_for(
        timeout=LONG)
    shoot(page, "tour.png", out)
    page.goto(f"{url}/?lang=zh")
    page.get_by_role("heading", name="预训练何时有用？").wait_for(timeout=60_000)
    page.get_by_text("注意：").first.wait_for(timeout=60_000)
    shoot(page, "tour-zh.png", out)
    page.goto(f"{url}/?presenter=True")
    page.get_by_text("Notice:").first.wait_for(timeout=60_000)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.get_by_role("heading", name="2 · Pixels vs random init vs pretrained, on shapes").scroll_into_view_if_needed()
    page.wait_for_timeout(1_500)
    page.screenshot(path=str(out / "presenter.png"))
    print("wrote", out / "presenter.png", flush=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def explorer(page: Page, url: str, out: Path) -> None:
    page.goto(f"{url}/explore?limit=1000")
    page.get_by_role("button", name="Extract & analyse").click()
    page.get_by_text("Linear-probe test accuracy").wait_for(timeout=LONG)
    page.get_by_text("of 1,000 feature vectors").first.wait_for(timeout=LONG)
    shoot(page, "explorer.png", out)


def lab(page: Page, url: str, out: Path) -> None:
    page.goto(f"{url}/lab?limit=1000")
    page.get_by_role("button", name="Run linear probe + k-NN").click()
    page.get_by_text("Train / test images").wait_for(timeout=LONG)
    page.get_by_role("tab", name="Baselines").click()
    page.get_by_role("button", name="Raw-pixel baseline").click()
    page.get_by_role("button", name="Random-init baseline").click()
    page.get_by_text("Random-init backbone + probe").wait_for(timeout=LONG)
    page.get_by_role("tab", name="Compare").click()
    shoot(page, "lab.png", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "assets")
    parser.add_argument("--data-dir", help="PTM_DATA_DIR for the server (default: a fresh temporary one)")
    args = parser.parse_args()
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="ptm-shots-")
    proc, url = start_server(data_dir)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for shot in (tour, explorer, lab):
                shot(page, url, args.out)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()

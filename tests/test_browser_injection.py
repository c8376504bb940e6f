"""Markdown injection in Chromium (hostile input, third round, item 2): a link's folder path and a CSV's labels
show as the characters they are, never as a live link or an image, and the page asks nothing of another host.

Every request the page makes is routed: one not to 127.0.0.1 is recorded and aborted, so the blocked host
(evil.example, which does not exist anyway) is never contacted.
"""
from __future__ import annotations

from urllib.parse import quote, urlparse

import pytest

from browser_support import serve
from ingest_helpers import png_bytes, write

pytestmark = pytest.mark.browser

LINK = "[Session expired: click to sign in](https://evil.example/login)"
IMAGE = "![](https://evil.example/p.png)"
INJECTED = f"x {IMAGE} {LINK}"
EVIL_IN_DOM = """() => [...document.querySelectorAll('a[href*="evil"], img[src*="evil"], [src*="evil"], [href*="evil"]')]
  .map((e) => e.outerHTML)"""


@pytest.fixture(scope="module")
def allowed(tmp_path_factory):
    return tmp_path_factory.mktemp("allowed")


@pytest.fixture(scope="module")
def server(data_dir, server_log, allowed):
    yield from serve(data_dir, server_log, PTM_ALLOWED_ROOTS=str(allowed))


@pytest.fixture()
def outside(page):
    """Requests to anything but 127.0.0.1, recorded and aborted."""
    attempted: list[str] = []

    def route(r):
        if urlparse(r.request.url).hostname in ("127.0.0.1", None) or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            attempted.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return attempted


def _no_markup(page, attempted: list[str]) -> None:
    assert page.evaluate(EVIL_IN_DOM) == []
    page.wait_for_timeout(1_000)  # an image would be requested as soon as it is in the DOM
    assert attempted == [], attempted


def test_a_folder_path_from_a_link_shows_literally(page, server, outside, allowed):
    page.goto(f"{server}/explore?dataset=folder&folder_path={quote(INJECTED)}")
    # The header line under the title, and the info box of the run the settings describe.
    page.get_by_text("Session expired", exact=False).first.wait_for(timeout=60_000)
    main = page.locator('[data-testid="stMain"]')
    text = main.inner_text().replace("\u200b", "")  # md() breaks bare autolinks with a zero-width space
    assert "on folder:" in text and IMAGE in text and LINK in text, text[:2000]
    info = page.locator('[data-testid="stAlertContentInfo"]').first.inner_text().replace("\u200b", "")
    assert LINK in info and IMAGE in info, info
    _no_markup(page, outside)


def test_labels_from_a_csv_show_literally_on_the_datasets_page(page, server, outside, allowed):
    labels = [LINK, IMAGE, "<img src=https://evil.example/i.png> *b*"]
    rows = ["filename,label"]
    for i, label in enumerate(labels):
        for j in range(3):
            write(allowed / "csv" / f"img{i}_{j}.png", png_bytes(30 * i + 5 * j + 10))
            rows.append(f'img{i}_{j}.png,"{label}"')
    (allowed / "csv" / "labels.csv").write_text("\n".join(rows) + "\n")
    page.goto(f"{server}/datasets")
    spec = page.get_by_label("Dataset spec", exact=True).and_(page.locator("input"))
    spec.wait_for(timeout=60_000)
    spec.fill(f"folder:{allowed / 'csv'}")
    spec.press("Enter")
    page.wait_for_function("""(labels) => {
      const text = document.querySelector('[data-testid="stMain"]').innerText.replaceAll('\\u200b', '');
      return labels.every((label) => text.includes(label + ' · 3 images')); }""", arg=labels, timeout=60_000)
    text = page.locator('[data-testid="stMain"]').inner_text().replace("\u200b", "")
    for label in labels:
        assert f"{label} · 3 images" in text, text[:3000]
    _no_markup(page, outside)

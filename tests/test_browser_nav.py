"""A fresh server's first paint: never the pages folder's file names, always the app's own navigation.

A `pages/` folder beside app.py puts a fresh server in Streamlit's legacy multipage mode until app.py's
`st.navigation` runs (pages/ui/nav.py): it would list the file names (app, backbones, compare, …) in the
sidebar, and a deep link would run its page without app.py. Each test starts its own server and records,
from the page's first script on, every text the sidebar's links show.
"""
import gettext
import time

import pytest

from browser_support import CHROMIUM, CHROMIUM_ARGS, ROOT, screenshot, serve, sync_api

pytestmark = pytest.mark.browser

FILE_NAMES = {"app", *(path.stem for path in (ROOT / "pages").glob("*.py"))}
TITLES = ["Tour: when does pretraining help?", "Features & probe", "Compare backbones", "Probe vs fine-tune",
          "Which backbone for my data?", "Backbones", "Datasets", "Jobs"]
SECTIONS = ["Start", "Explore", "Library"]
ZH = gettext.translation("ptm", ROOT / "assets" / "locale", languages=["zh_CN"])

# Every distinct list of sidebar link texts (and the native navigation's section headers), with its time.
RECORD = """
window.__sidebarSeen = [];
const note = () => {
  const bar = document.querySelector('[data-testid="stSidebar"]');
  if (!bar) return;
  const texts = (selector) => [...bar.querySelectorAll(selector)].map((el) => el.innerText.trim()).filter(Boolean);
  const links = texts('a');
  const sections = texts('[data-testid="stNavSectionHeader"]');
  const seen = window.__sidebarSeen;
  const key = JSON.stringify([links, sections]);
  if (!seen.length || seen[seen.length - 1].key !== key)
    seen.push({t: Math.round(performance.now()), key, links, sections});
};
new MutationObserver(note).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""


@pytest.fixture()
def fresh_server(data_dir, server_log):
    """One server per test: only a fresh process starts in the legacy pages mode."""
    yield from serve(data_dir, server_log)


@pytest.mark.parametrize("path,lang", [("", "en"), ("lab?lang=zh", "zh")], ids=["root", "deep-link"])
def test_first_paint_shows_the_app_navigation_never_file_names(fresh_server, server_log, path, lang):
    words = ZH.gettext if lang == "zh" else str
    titles, sections = [words(t) for t in TITLES], [words(s) for s in SECTIONS]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(RECORD)
        page.goto(f"{fresh_server}/{path}")
        time.sleep(2)
        screenshot(page, f"nav-first-seconds-{lang}.png")
        # Icons are ligature text: a link reads "school\n\nTour: …"; its last line is the title.
        page.wait_for_function("(want) => { const s = window.__sidebarSeen; const last = s[s.length - 1];"
                               " return last && want.every((t) => last.links.some((l) => l.endsWith(t))); }",
                               arg=titles, timeout=180_000)
        screenshot(page, f"nav-ready-{lang}.png")
        # The run went through app.py: its page config, the language from the link, its sidebar controls.
        page.get_by_test_id("stSidebar").get_by_text("Language · 语言").wait_for(timeout=60_000)
        assert page.title() == "PTM Explorer"
        if path:
            assert page.url.endswith(f"/{path}"), page.url
            page.get_by_role("heading", name=words("Probe vs fine-tune"), exact=True).wait_for(timeout=60_000)
        seen = page.evaluate("window.__sidebarSeen")
        browser.close()
    file_lists = [entry for entry in seen if FILE_NAMES & {link.lower() for link in entry["links"]}]
    assert not file_lists, f"the sidebar listed the pages folder's files: {file_lists[0]}"
    assert seen[-1]["sections"] == sections, seen[-1]
    app_nav = [entry for entry in seen if any(link.endswith(titles[0]) for link in entry["links"])]
    assert [link.split("\n")[-1] for link in app_nav[0]["links"][:len(titles)]] == titles
    assert "Traceback" not in server_log.read_text(errors="replace")

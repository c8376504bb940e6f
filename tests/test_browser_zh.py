"""Real browser, Chinese mode: no English sentence reaches any page, the engine's words included (issue 23, item 2).

The engine says what it does in English `Message`s (ptm_core/base/messages.py); the interface translates them
(pages/ui/i18n.py `tr`). Every page of app.py's navigation is opened with `lang=zh`, an explorer run on a small
set shows its progress lines, provenance, map-faithfulness paragraph and probe; the lab's probes fill its Compare
tab; a folder outside the allowed ones gives the engine's error; the Jobs page then lists the runs. The text a
user reads (`document.body.innerText`, charts' SVG text included, and each table cell) is scanned for English
sentences.
"""
import re
import time

import pytest

from browser_support import screenshot

pytestmark = pytest.mark.browser

# An English sentence: three or more English words of two letters or more in a row (spaces, commas and brackets
# between them), none glued to a digit, underscore, dot or slash (model names, file names, units are not words).
WORD = r"[A-Za-z][A-Za-z'’]+"
SENTENCE = re.compile(rf"(?<![\w./\-]){WORD}(?:[ ,()]+{WORD}){{2,}}(?![\w/\-])")
# What may stay English, and why: Streamlit's own accessibility link (hidden until focused, not our text) and a
# proper name.
ALLOWED = {"Skip to main content", "Hugging Face hub"}
PAGES = ("", "explore", "compare", "lab", "bench", "backbones", "datasets", "jobs")  # pages/ui/nav.py PAGES
SMALL = "dataset=digits&limit=120&image_size=32"


def english_sentences(text: str) -> list[str]:
    return [s for line in text.splitlines() for s in SENTENCE.findall(line) if s.strip() not in ALLOWED]


def test_the_detector_finds_english_and_passes_chinese():
    assert english_sentences("extracting features — 0%\ntraining the linear probe") == ["training the linear probe"]
    assert english_sentences("tf_efficientnet_lite0 (random init, seed 0) on digits @ 96px") == ["random init, seed"]
    assert english_sentences("正在提取特征 — 0%\ntf_efficientnet_lite0（内置），数据 digits @ 32px\nUMAP 2维") == []
    assert english_sentences("Skip to main content") == []


# st.dataframe draws on a canvas; its cells are in the DOM as an accessible grid, read one cell per line.
CELLS = """() => [...document.querySelectorAll('[role=columnheader], [role=gridcell]')].map(c => c.textContent)
  .join('\\n')"""


def _text(page) -> str:
    return page.locator("body").inner_text() + "\n" + page.evaluate(CELLS)


def _settled(page, wait_s: float = 1.5) -> str:
    """The page's text once Streamlit has stopped running the script (its status widget gone) for `wait_s`."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=90_000)
    quiet_since = time.monotonic()
    deadline = quiet_since + 60
    while time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count():
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > wait_s:
            break
        page.wait_for_timeout(250)
    return _text(page)


def _watch(page, done, timeout_s: float, seen: dict) -> None:
    """Read the page every half second until `done(text)` (a run's progress lines included); offenders into `seen`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = _text(page)
        for sentence in english_sentences(text):
            seen.setdefault(sentence, len(seen))
        if done(text):
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"the page did not finish in {timeout_s} s:\n{page.locator('body').inner_text()[-2000:]}")


def test_chinese_mode_has_no_english_sentence_on_any_page(page, server, user_dir):
    offenders: dict[str, list[str]] = {}
    # An explorer run: progress lines while it runs, then provenance, the map's faithfulness paragraph, the probe.
    page.goto(f"{server}/explore?{SMALL}&lang=zh")
    page.get_by_role("button", name="提取并分析").click(timeout=90_000)
    seen: dict[str, int] = {}
    _watch(page, lambda t: "这幅映射图" in t and "可信度" in t and "探测参数扫描" in t, 240, seen)
    offenders["explore (run)"] = list(seen)
    screenshot(page, "zh-explore-run.png")
    # The lab's probes, so that its Compare tab has bars, a table and a verdict.
    page.goto(f"{server}/lab?{SMALL}&lang=zh")
    page.get_by_role("button", name="运行线性探测 + k-NN").click(timeout=90_000)
    seen = {}
    _watch(page, lambda t: "训练 / 测试图像数" in t, 240, seen)
    page.get_by_role("tab", name="对比").click()
    offenders["lab (probes, compare)"] = list(seen) + english_sentences(_settled(page))
    screenshot(page, "zh-lab-compare.png")
    # Engine errors a user can trigger on the Datasets page: a folder with no path, one outside the allowed folders.
    for spec, words in (("folder:", "folder 需要一个路径"), ("folder:/proc", "不在允许的文件夹")):
        page.goto(f"{server}/datasets?lang=zh")
        spec_box = page.get_by_role("textbox", name="数据集描述")
        spec_box.fill(spec)
        spec_box.press("Enter")
        page.get_by_text(words).first.wait_for(timeout=30_000)
        offenders[f"datasets ({spec})"] = english_sentences(_settled(page))
    screenshot(page, "zh-datasets-error.png")
    for name in PAGES:
        page.goto(f"{server}/{name}?{SMALL}&lang=zh")
        offenders[name or "tour"] = english_sentences(_settled(page))
        screenshot(page, f"zh-{name or 'tour'}.png")
    counts = {name: len(found) for name, found in offenders.items()}
    print(f"English sentences per page in Chinese mode: {counts}")
    assert not any(offenders.values()), {name: found for name, found in offenders.items() if found}

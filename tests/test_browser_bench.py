"""Real browser: "Which backbone for my data?" runs the leaderboard on the sidebar's data and says which interval each
row has, as the user reads it (the table, the best row's sentence and the chart's error bars).

On 200 digits at 32 px: tf_efficientnet_lite0 with its bundled weights and with random init, three seeds (Student's
t), then two (the bootstrap over the 40 test images of each split). The server computes in fp32 on every CPU
(PTM_NATIVE_BF16=0), so the numbers do not depend on which precision `auto` would pick.
"""
import re

import pytest

from browser_support import screenshot, serve

pytestmark = pytest.mark.browser
TITLE = "Leaderboard: tf_efficientnet_lite0 (bundled + random init) on digits (limit 200) @ 32px, {seeds} seeds"
INTERVAL = re.compile(r"^\d+\.\d–\d+\.\d%$")
# The grid draws on a canvas; its cells are also an accessible table, which is what a screen reader (and this) reads.
CELLS = """() => [...document.querySelectorAll('[data-testid="stDataFrame"] table tr')].map(
  (tr) => [...tr.querySelectorAll('th, td')].map((c) => c.innerText.trim()))"""


@pytest.fixture(scope="module")
def server(data_dir, user_dir, server_log):  # this module's server: fp32 whatever the CPU
    yield from serve(data_dir, server_log, PTM_NATIVE_BF16="0", PTM_ALLOWED_ROOTS=str(user_dir))


def _table(page, n_rows: int) -> list[dict]:
    """The leaderboard's rows as the grid shows them, once it shows `n_rows` (the columns scrolled into view)."""
    page.wait_for_function(f"() => ({CELLS})().filter((r) => r.length > 1).length > {n_rows}", timeout=300_000)
    rows = page.evaluate(CELLS)
    header = next(r for r in rows if "backbone" in r)
    return [dict(zip(header, r)) for r in rows if r and r != header and len(r) == len(header)]


def _pick(page, name: str) -> None:
    """Type into the backbones' multiselect and take the option that is exactly `name`."""
    box = page.get_by_test_id("stMultiSelect").filter(has_text="Backbones")
    box.locator("input").fill(name)
    page.get_by_role("option", name=name, exact=True).click()
    page.keyboard.press("Escape")


def test_the_leaderboard_runs_in_the_browser_and_says_which_interval(page, server):
    page.goto(f"{server}/bench?dataset=digits&limit=200&image_size=32")
    page.get_by_text(TITLE.format(seeds=3)).first.wait_for(timeout=60_000)
    # Emptied, the picker asks for a backbone; picked again by typing, the run is the same.
    page.get_by_test_id("stMultiSelect").filter(has_text="Backbones").get_by_role("button", name="Clear all").click()
    page.get_by_text("Pick at least one backbone.").wait_for(timeout=30_000)
    _pick(page, "tf_efficientnet_lite0")
    page.get_by_text(TITLE.format(seeds=3)).first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Run the leaderboard").click()

    rows = _table(page, 2)
    assert [(r["backbone"], r["weights"]) for r in rows] == [("tf_efficientnet_lite0", "bundled"),
                                                            ("tf_efficientnet_lite0", "random")], rows
    assert all(r["interval"] == "Student's t over 3 seeds" and INTERVAL.match(r["95 % CI"]) for r in rows), rows
    assert all(r["seeds"] == "3" and r["test images"] == "40" for r in rows), rows
    # The sentence names the table's top row (the highest mean) and says that a mean is not a test.
    top = {"bundled": r"Bundled \(offline ImageNet\)", "random": "Random init"}[rows[0]["weights"]]
    best = page.get_by_text(re.compile(rf"^Highest mean linear probe here: tf_efficientnet_lite0 \({top}\), "
                                       r"\d+\.\d% \(95 % CI \d+\.\d–\d+\.\d%, Student's t over 3 seeds\)\. "
                                       r"A mean is not a test: .*$"))
    best.wait_for(timeout=10_000)
    chart = page.locator(".js-plotly-plot").filter(has_text="against extraction speed")
    chart.wait_for(timeout=10_000)
    assert chart.locator(".errorbar").count() == 2  # one interval per row
    screenshot(page, "bench-leaderboard.png")
    page.get_by_role("button", name="Download leaderboard.csv").scroll_into_view_if_needed(timeout=10_000)
    screenshot(page, "bench-leaderboard-chart.png")

    # Two seeds: too few for a t-interval, so each row says it is a bootstrap over its test images.
    seeds = page.get_by_test_id("stNumberInput").filter(has_text="Seeds (splits per backbone)").locator("input")
    seeds.fill("2")
    seeds.press("Enter")
    page.get_by_text(TITLE.format(seeds=2)).first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Run the leaderboard").click()
    page.get_by_text("bootstrap over 40 test images, 2 seeds").first.wait_for(timeout=300_000)
    rows = _table(page, 2)
    assert len(rows) == 2 and all(r["interval"] == "bootstrap over 40 test images, 2 seeds" for r in rows), rows
    screenshot(page, "bench-leaderboard-bootstrap.png")
    assert "Traceback" not in page.content()

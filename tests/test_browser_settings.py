"""One truth on screen: settings never drift across page switches and reloads, in a real browser.

Non-default values for image size, weights, limit and every map setting are set (some through the
widgets, the rest through a shared link); then every page is visited twice in different orders and
the page reloaded. Throughout, the sidebar, the URL and each analysis page's header show the same values.
"""
from urllib.parse import parse_qs, urlparse

import pytest

from browser_support import SIDEBAR_STATE, screenshot

pytestmark = pytest.mark.browser

SOURCE = "tf_efficientnet_lite0 (random init, seed 0) on mnist5k (limit 300) @ 96px"
MAP = "UMAP 3-D (30 neighbours, min dist 0.25, cosine, unseeded)"
URL = {"image_size": "96", "weights": "random", "limit": "300", "map_dims": "3", "n_neighbors": "30",
       "min_dist": "0.25", "metric": "cosine", "reproducible": "False"}
SOURCE_SIDEBAR = {"Image size (px)": "96", "Limit (0 = all images)": "300", "Weights": "Random init",
                  "Dataset": "mnist5k"}
SIDEBAR = {**SOURCE_SIDEBAR, "Projection": "UMAP", "Dimensions": "3-D",
           "Neighbours (local ↔ global)": "30", "Minimum distance (clumped ↔ spread)": "0.25", "Distance": "cosine",
           "Reproducible (seeded, one thread)": False}
MAP_PAGES = {"Features & probe", "Compare backbones"}
PAGES = {"Features & probe": "Features & probe", "Compare backbones": "Compare two backbones",
         "Probe vs fine-tune": "Probe vs fine-tune", "Backbones": "Backbones", "Datasets": "Datasets", "Jobs": "Jobs"}


def _query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _check(page, name: str) -> None:
    """The page's title is up, and URL, sidebar and header all say the same settings."""
    page.get_by_role("heading", name=PAGES[name], exact=True).wait_for(timeout=60_000)
    page.wait_for_function("(want) => Object.entries(want).every(([k, v]) => "
                           "new URLSearchParams(location.search).get(k) === v)", arg=URL, timeout=15_000)
    assert {k: v for k, v in _query(page).items() if k in URL} == URL, (name, page.url)
    if name not in ("Features & probe", "Compare backbones", "Probe vs fine-tune"):
        return  # the library pages draw no sidebar settings, but the URL keeps them all the same
    page.get_by_text(SOURCE).first.wait_for(timeout=30_000)
    expected = SIDEBAR if name in MAP_PAGES else SOURCE_SIDEBAR
    # The sidebar is redrawn after the header: wait until every control is there, then read them all.
    page.wait_for_function(f"(keys) => {{ const s = ({SIDEBAR_STATE})(); return keys.every((k) => k in s); }}",
                           arg=list(expected), timeout=30_000)
    state = page.evaluate(SIDEBAR_STATE)
    assert {k: state.get(k) for k in expected} == expected, (name, state)
    if name in MAP_PAGES:
        page.get_by_text(MAP, exact=False).first.wait_for(timeout=10_000)



def _visit(page, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
    _check(page, name)


def test_settings_survive_every_page_switch_and_a_reload(page, server):
    rest = "&".join(f"{k}={v}" for k, v in URL.items() if k not in ("weights", "limit"))
    page.goto(f"{server}/explore?{rest}")
    page.get_by_role("heading", name="Features & probe").wait_for(timeout=90_000)
    # Two settings through their widgets, as a user sets them.
    page.get_by_test_id("stSidebar").get_by_text("Random init").click()
    limit = page.get_by_role("spinbutton", name="Limit (0 = all images)")
    limit.fill("300")
    limit.press("Enter")
    _check(page, "Features & probe")

    for name in ["Compare backbones", "Probe vs fine-tune", "Backbones", "Datasets", "Jobs", "Features & probe"]:
        _visit(page, name)
    for name in ["Jobs", "Probe vs fine-tune", "Features & probe", "Datasets", "Compare backbones", "Backbones"]:
        _visit(page, name)
    page.reload()
    _check(page, "Backbones")
    _visit(page, "Compare backbones")
    screenshot(page, "settings-compare.png")
    _visit(page, "Features & probe")


def test_a_bad_value_in_a_link_is_named_and_the_default_used(page, server):
    page.goto(f"{server}/explore?image_size=33&limit=-5&min_dist=nan&weights=random")
    page.get_by_text("Ignored a setting from the link: image_size=33 is not one of the choices").wait_for(
        timeout=60_000)
    page.get_by_text("min_dist must be a finite number").wait_for(timeout=10_000)
    page.get_by_text("tf_efficientnet_lite0 (random init, seed 0) on mnist5k @ 128px").first.wait_for()
    assert "image_size" not in _query(page) and _query(page).get("weights") == "random"

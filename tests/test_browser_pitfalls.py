"""Real browser, the tour on small data (PTM_TOUR_SMALL=1): under step 2's maps, the map-pitfalls card re-draws the
pretrained features with few and many UMAP neighbours, shows each map's trustworthiness, and says that the probe's
accuracy did not move (step 2's own number) while saying of the picture what the neighbour agreement says.

The server's start-up warm-up compiles UMAP's default path (maps.projection.compile_umap); the card's maps take that
path (seeded, euclidean, exact kNN below 10,000 points), so the re-draw pays no compile of its own.
"""
import re
import time

import pytest

from browser_support import screenshot, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(data_dir, user_dir, server_log):  # fp32 whatever the CPU, and the tour's small plan
    yield from serve(data_dir, server_log, PTM_NATIVE_BF16="0", PTM_TOUR_SMALL="1", PTM_ALLOWED_ROOTS=str(user_dir))


def _metric_values(page, label: str) -> list[str]:
    metrics = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label,
                                                                                                           exact=True))
    return [m.get_by_test_id("stMetricValue").inner_text() for m in metrics.all()]


def test_the_map_pitfalls_card_redraws_the_map_and_keeps_the_accuracy(page, server):
    started = time.monotonic()
    page.goto(server)
    page.get_by_role("heading", name="2 · Pixels vs random init vs pretrained, on shapes").wait_for(timeout=90_000)
    page.get_by_role("button", name=re.compile("Run step 2")).click()
    card = page.get_by_test_id("stExpander").filter(has_text="Map pitfalls: the same features, drawn three ways")
    card.wait_for(timeout=300_000)
    [step_accuracy] = _metric_values(page, "Pretrained backbone")
    step_done = time.monotonic()

    card.get_by_text("Map pitfalls: the same features, drawn three ways").click()  # open the card
    card.get_by_role("button", name=re.compile(r"Re-draw with other settings \(")).click()
    moved = card.get_by_text(re.compile(r"^(What moved: the picture\.|Here the setting barely moved the picture:)"))
    moved.wait_for(timeout=120_000)
    redrawn = time.monotonic()

    for title in ("Step 2's map: PCA", "Few neighbours: UMAP, 5 neighbours", "Many neighbours: UMAP, 100 neighbours"):
        card.get_by_text(title, exact=True).wait_for(timeout=10_000)
    trust = [float(value) for value in _metric_values(page, "Trustworthiness")]
    assert len(trust) == 3 and all(0.0 <= t <= 1.0 for t in trust), trust
    # The accuracy that did not move is step 2's own number, with its interval.
    unmoved = card.get_by_text(re.compile(r"^What did not move: the linear probe's accuracy, "))
    text = unmoved.inner_text()
    assert re.search(rf"accuracy, {re.escape(step_accuracy)} \(95 % CI \d+\.\d–\d+\.\d%, 40 test images\), is step "
                     r"2's number under all three maps", text), (step_accuracy, text)
    assert _metric_values(page, "Linear-probe accuracy under every map") == [step_accuracy]
    # The picture's sentence carries its number (neighbour agreement), and the trustworthiness it names are shown.
    sentence = moved.inner_text()
    kept = float(re.search(r"on average (?:only )?(\d+\.\d) are still among its 10 nearest", sentence).group(1))
    assert (kept < 9) == sentence.startswith("What moved"), sentence
    assert f"{trust[1]:.2f}" in sentence and f"{trust[2]:.2f}" in sentence, (trust, sentence)
    card.get_by_text("the size of a cluster and the distance between two clusters mean little").wait_for()
    card.get_by_text("Step 2's map is PCA, a linear projection with no neighbours setting").wait_for()
    assert card.locator(".js-plotly-plot").count() == 3
    moved.scroll_into_view_if_needed()
    screenshot(page, "tour-map-pitfalls.png")
    print(f"step 2: {step_done - started:.1f} s; re-draw: {redrawn - step_done:.1f} s")
    assert page.get_by_test_id("stException").count() == 0

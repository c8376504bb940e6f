"""Real browser: CKA where a user looks for it. The lab's Layers tab draws a layer x layer CKA heatmap with a caption
saying what produced it, and Compare backbones shows linear CKA beside neighbour agreement.

The server computes in fp32 on every CPU (PTM_NATIVE_BF16=0), as does this test process where it recomputes the value
the page should show: which precision `auto` picks depends on the machine, and the numbers with it.
"""
import pytest

from browser_support import screenshot, serve

pytestmark = pytest.mark.browser

SMALL = "dataset=digits&limit=200&image_size=32"
# Every heatmap trace drawn: its x categories and z (plotly keeps a typed-array z, decoded, in _inputArray).
HEATMAPS = """() => [...document.querySelectorAll('.js-plotly-plot')].flatMap((el) => (el.data || [])
  .filter((t) => t.type === 'heatmap').map((t) => ({x: t.x, z: Array.isArray(t.z) ? t.z : t.z._inputArray})))"""


@pytest.fixture(scope="module")
def server(data_dir, user_dir, server_log):  # this module's server: fp32 whatever the CPU
    yield from serve(data_dir, server_log, PTM_NATIVE_BF16="0", PTM_ALLOWED_ROOTS=str(user_dir))


def test_layers_tab_draws_the_layer_cka_heatmap_with_its_caption(page, server):
    import timm

    # Every block, not only those where feature_info says the resolution drops (blocks.3 and blocks.5 were missing)
    stages = ["stem", *(f"blocks.{i}" for i in range(len(timm.create_model("tf_efficientnet_lite0").blocks)))]
    page.goto(f"{server}/lab?{SMALL}")
    page.get_by_text("tf_efficientnet_lite0 (bundled) on digits (limit 200) @ 32px").first.wait_for(timeout=60_000)
    page.get_by_role("tab", name="Layers").click()
    page.get_by_role("button", name="Run the layer sweep").click()
    caption = page.get_by_text("Linear CKA (Kornblith et al. 2019) between the globally pooled outputs", exact=False)
    caption.wait_for(timeout=300_000)
    text = caption.inner_text()
    assert "tf_efficientnet_lite0 (bundled) on digits (limit 200) @ 32px" in text and "200 images (exact)" in text
    assert "The first and the last layer: CKA 0." in text
    chart = page.locator(".js-plotly-plot").filter(has_text="Linear CKA between layers")
    chart.locator(".hm").first.wait_for(timeout=60_000)  # plotly draws after the text is on the page
    heatmaps = page.evaluate(HEATMAPS)
    assert len(heatmaps) == 1 and heatmaps[0]["x"] == [*stages, "pooled (pre-logits)"], heatmaps
    z = heatmaps[0]["z"]
    assert len(z) == len(stages) + 1 and all(abs(z[i][i] - 1) < 1e-9 for i in range(len(z)))
    screenshot(page, "lab-layers-cka.png")
    assert "Traceback" not in page.content()


def test_compare_shows_linear_cka_beside_neighbour_agreement(page, server, monkeypatch):
    from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig
    from ptm_core.evals.similarity import matched_cka
    from ptm_core.features.extraction import extract

    monkeypatch.setenv("PTM_NATIVE_BF16", "0")
    data, size = DatasetConfig("digits", limit=200), ExtractionConfig(image_size=32)
    expected = matched_cka(extract(data, BackboneConfig(), size), extract(data, BackboneConfig(weights="random"), size))
    page.goto(f"{server}/compare?{SMALL}&backbone_b=tf_efficientnet_lite0&weights_b=random&image_size_b=32&map=pca")
    page.get_by_role("button", name="Compare").click()
    metric = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text("Linear CKA", exact=True))
    metric.first.wait_for(timeout=300_000)
    assert metric.first.get_by_test_id("stMetricValue").inner_text() == f"{expected.cka:.2f}"
    assert expected.n == 200 and 0 < expected.cka < 1
    beside = page.get_by_test_id("stMetricLabel").all_inner_texts()
    assert beside.index("Linear CKA") == beside.index("Mean neighbour agreement") + 3, beside
    screenshot(page, "compare-cka.png")
    assert "Traceback" not in page.content()

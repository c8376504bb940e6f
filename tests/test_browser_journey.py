"""The whole journey in one real browser: tour steps 1-3 in both languages -> explorer (extract, map, box
select, gallery, CSV export) -> lab (probe, baselines, a tiny fine-tune) -> compare.

Every number read off the screen that the CLI can compute is recomputed through `python -m ptm_core`
in a separate data directory (nothing shared but the code and the machine's calibration) and must read the same. The test fails on
any Streamlit exception box, and (browser_support's `page` fixture) on any traceback the server logged.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from browser_support import ROOT, screenshot
from ptm_core.flows.tour import TourPlan

pytestmark = pytest.mark.browser

TINY = "test_efficientnet.r160_in1k"
SMALL = f"dataset=digits&limit=300&backbone={TINY}&weights=random&image_size=32"
PLAN = TourPlan()


def _cli_accuracy(tmp_path, *args: str) -> float:
    env = dict(os.environ, PTM_DATA_DIR=str(tmp_path / "cli-data"))
    out = subprocess.run([sys.executable, "-m", "ptm_core", "probe", *args, "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["test_accuracy"]


def _no_exception(page) -> None:
    assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id("stException").first.inner_text()


def _metric(page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
    metric.first.wait_for(timeout=600_000)
    return metric.first.get_by_test_id("stMetricValue").inner_text()


def _tour(page, server) -> dict[str, str]:
    page.goto(server)
    page.get_by_role("heading", name="When does pretraining help?").wait_for(timeout=90_000)
    started = time.monotonic()
    page.get_by_role("button", name="Run step 1").click()
    page.get_by_text("query: circle").wait_for(timeout=600_000)
    page.get_by_role("button", name="Run step 2").click()
    shown = {kind: _metric(page, label) for kind, label in
             [("pixels", "Raw pixels"), ("random", "Random-init backbone"), ("pretrained", "Pretrained backbone")]}
    page.get_by_text("Maps: UMAP 2-D").first.wait_for(timeout=600_000)
    print(f"tour steps 1-2 on screen {time.monotonic() - started:.0f} s after the first click", flush=True)
    page.get_by_role("button", name="Run step 3").click()
    page.get_by_text("Maps: UMAP 2-D").nth(1).wait_for(
        timeout=600_000)
    assert page.locator(".js-plotly-plot").count() >= 6 + PLAN.queries  # 2 x 3 maps + step 1's vector strips
    _no_exception(page)
    screenshot(page, "journey-tour-en.png")
    return shown


def _tour_in_chinese(page, shown: dict[str, str]) -> None:
    page.get_by_role("combobox", name="Language · 语言").click()
    page.get_by_role("option", name="简体中文").click()
    page.get_by_role("heading", name="预训练何时有用？").wait_for(timeout=60_000)
    assert "lang=zh" in page.url
    for kind, label in [("pixels", "原始像素"), ("random", "随机初始化的骨干网络"), ("pretrained", "预训练的骨干网络")]:
        assert _metric(page, label) == shown[kind]  # the same cached numbers, now labelled in Chinese
    page.get_by_text("导览：预训练何时有用？").first.wait_for()  # the navigation too
    _no_exception(page)
    screenshot(page, "journey-tour-zh.png")
    page.get_by_role("combobox", name="Language · 语言").click()
    page.get_by_role("option", name="English").click()
    page.get_by_role("heading", name="When does pretraining help?").wait_for(timeout=60_000)


def _explore(page, server) -> str:
    page.set_viewport_size({"width": 1400, "height": 1800})
    page.goto(f"{server}/explore?{SMALL}&map=pca")
    page.get_by_role("button", name="Extract & analyse").click()
    page.get_by_text("PCA 2-D of 300 feature vectors").wait_for(timeout=300_000)
    accuracy = _metric(page, "Linear-probe test accuracy")
    plot = page.locator(".js-plotly-plot").first
    plot.hover()
    plot.locator('.modebar-btn[data-title="Box Select"]').click()
    area = plot.locator(".nsewdrag").first.bounding_box()
    page.mouse.move(area["x"] + area["width"] * 0.05, area["y"] + area["height"] * 0.05)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.95, area["y"] + area["height"] * 0.95, steps=12)
    page.mouse.up()
    page.get_by_text("images selected").first.wait_for(timeout=30_000)
    page.locator('[data-testid="stImageContainer"]').first.wait_for(timeout=30_000)
    with page.expect_download() as download:
        page.get_by_role("button", name="Points as CSV").click()
    with open(download.value.path(), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 300 and {"x", "y", "class"} <= set(rows[0])
    assert any(r["selected"] in ("True", "true", "1") for r in rows)
    _no_exception(page)
    screenshot(page, "journey-explore.png")
    return accuracy


def _lab(page, server) -> str:
    page.goto(f"{server}/lab?{SMALL}&ft_size=32&ft_batch=16")
    page.get_by_role("button", name="Run linear probe + k-NN").click()
    probe = _metric(page, "Linear probe")
    page.get_by_role("tab", name="Baselines").click()
    page.get_by_role("button", name="Raw-pixel baseline").click()
    _metric(page, "Raw pixels (32×32 grey)")
    page.get_by_role("tab", name="Fine-tune").click()
    page.get_by_role("button", name="Start fine-tuning").click()
    page.get_by_role("button", name="Best checkpoint (.safetensors)").wait_for(timeout=300_000)
    _no_exception(page)
    return probe


def _compare(page, server) -> None:
    page.goto(f"{server}/compare?{SMALL}&backbone_b={TINY}&weights_b=random&image_size_b=64&map=pca")
    page.get_by_role("button", name="Compare").click()
    page.get_by_text("Mean neighbour agreement").wait_for(timeout=300_000)
    _no_exception(page)
    screenshot(page, "journey-compare.png")


def _same_machine(data_dir, tmp_path) -> None:
    """The CLI's data folder gets the server's calibration: which runtime and precision `auto` runs is a measured
    fact of the machine (calibration.py), and under load two measurements may choose differently (bf16 or fp32,
    whose numbers differ). Only that fact is shared, no cached features or results."""
    calibration = data_dir / "calibration"
    if calibration.is_dir():
        shutil.copytree(calibration, tmp_path / "cli-data" / "calibration", dirs_exist_ok=True)


def test_the_whole_journey(page, server, data_dir, tmp_path):
    shown = _tour(page, server)
    _same_machine(data_dir, tmp_path)
    pretrained = _cli_accuracy(tmp_path, "--backbone", PLAN.backbone.name, "--weights", "bundled",
                               "--dataset", PLAN.shapes.spec, "--image-size", str(PLAN.image_size))
    random_init = _cli_accuracy(tmp_path, "--backbone", PLAN.backbone.name, "--weights", "random",
                                "--dataset", PLAN.shapes.spec, "--image-size", str(PLAN.image_size))
    assert shown["pretrained"] == f"{pretrained:.1%}" and shown["random"] == f"{random_init:.1%}", shown
    _tour_in_chinese(page, shown)

    small = ["--backbone", TINY, "--weights", "random", "--dataset", "digits", "--limit", "300", "--image-size", "32"]
    cli = f"{_cli_accuracy(tmp_path, *small):.1%}"
    assert _explore(page, server) == cli
    assert _lab(page, server) == cli  # the lab's probe is the explorer's: same features, split and sweep
    _compare(page, server)

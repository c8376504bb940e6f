"""The tour's take-home lesson: the HTML writer (ptm_core.base.lesson), the charts drawn as PNGs
(pages/ui/static_figures.py) and the notes the page keeps while it draws (pages/ui/lesson_views.py)."""
import io
import re
import warnings

import numpy as np
import pytest
from matplotlib import font_manager
from PIL import Image

from pages.ui import tour_views
from pages.ui.lesson_views import LessonNotes, SectionNotes
from pages.ui.static_figures import figure_png
from ptm_core.base import (BackboneConfig, DatasetConfig, Lesson, LessonFigure, LessonMetric, LessonSection,
                           lesson_html, paired_test)
from ptm_core.base.lesson import block_html, inline_html
from ptm_core.flows.tour import ContrastResult, ContrastRow, EfficiencyPoint, LessonResult, LessonSize, ZooResult, ZooRow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_inline_markdown_keeps_emphasis_and_escapes_everything_else():
    assert inline_html("**12 of 20** share *its* shape") == "<strong>12 of 20</strong> share <em>its</em> shape"
    assert inline_html(r"a \*literal\* star and \_name\_") == "a *literal* star and _name_"
    assert inline_html('([Distill](https://distill.pub/2016/misread-tsne/)) [x](javascript:alert(1))') == \
        '(<a href="https://distill.pub/2016/misread-tsne/">Distill</a>) [x](javascript:alert(1))'
    assert inline_html("<script>alert(1)</script> & `x<y`") == \
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; <code>x&lt;y</code>"
    assert block_html("- one\n- **two**\n\nthen a paragraph") == \
        "<ul><li>one</li><li><strong>two</strong></li></ul>\n<p>then a paragraph</p>"


def _tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_file_is_self_contained_and_holds_every_block_in_order():
    section = LessonSection("2 · Pixels <vs> pretrained", [
        ("text", "Three ways to turn images into vectors."),
        ("metrics", [LessonMetric("Raw pixels", "32.5%", "95 % CI 20.1–48.0%", "Wilson, n = 40")]),
        ("figures", [LessonFigure(_tiny_png(), "map 1"), LessonFigure(_tiny_png(), "map 2")]),
        ("caption", "No difference detected (p = 0.5)."),
        ("images", [LessonFigure(_tiny_png(), "query: <b>circle</b>")]),
    ])
    page = lesson_html(Lesson("When does pretraining help?", "zh-CN", ["Computed live on a test machine."],
                              "A short tour.", [section]))
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page
    assert "<script" not in page and not re.search(r"""(src|url)[=(]["']?(https?:)?//""", page)  # loads nothing
    assert page.count('src="data:image/png;base64,') == 3 and '<div class="row">' in page
    assert "<figcaption>query: &lt;b&gt;circle&lt;/b&gt;</figcaption>" in page  # a gallery's caption, escaped
    assert "2 · Pixels &lt;vs&gt; pretrained" in page  # the title's markup escaped
    order = [page.index(text) for text in ("Three ways", "32.5%", "95 % CI 20.1–48.0%", "data:image/png",
                                           "No difference detected")]
    assert order == sorted(order)


def _charts() -> dict:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    contrast = ContrastResult(DatasetConfig("shapes:n=90,classes=3,size=32"), "", labels, ["circle", "三角形", "square"])
    contrast.rows.append(ContrastRow("pretrained", "lite0", 0.9, 30, 1.0, rng.normal(size=(90, 2))))
    points = [EfficiencyPoint(data, kind, "x", k, 0.4 + 0.1 * i + (kind == "pretrained") * 0.2, 0.05, [0.5],
                              (0.3 + 0.1 * i, 0.6 + 0.1 * i))
              for data in ("a", "b") for kind in ("pretrained", "pixels") for i, k in enumerate((1, 5, 25))]
    truth = rng.integers(0, 3, 60)
    lesson = LessonResult({"pretrained": "p", "random": "r"}, 60,
                          [LessonSize(60, paired_test(truth, truth, rng.integers(0, 3, 60)))])
    zoo = ZooResult("lite0", [ZooRow(BackboneConfig("tf_efficientnet_lite0", "bundled"), "p", 0.9, 40, (0.8, 0.95))])
    return {"map": tour_views.contrast_map(contrast, "pretrained"),
            "efficiency": tour_views.efficiency_chart(points, {"a": "shapes", "b": "数字"}),
            "lesson": tour_views.lesson_chart(lesson), "zoo": tour_views.zoo_chart(zoo),
            "strip": tour_views.vector_strip(rng.normal(size=64)),
            "finetune": tour_views.finetune_curve({"val_curve": [[1, 10, 0.5], [2, 20, 0.8]]},
                                                  {"frozen": 0.7, "adapted": 0.8, "n_test": 150})}


@pytest.mark.parametrize("name", ["map", "efficiency", "lesson", "zoo", "strip", "finetune"])
def test_each_tour_chart_draws_as_a_png_with_its_data(name):
    with warnings.catch_warnings():
        if any("WenQuanYi" in entry.name for entry in font_manager.fontManager.ttflist):
            warnings.filterwarnings("error", message="Glyph .* missing")  # Chinese labels render as text
        png = figure_png(_charts()[name])
    assert png.startswith(PNG_MAGIC)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    assert pixels.std() > 5, "a blank image"


def test_a_chart_with_its_own_points_draws_them_where_plotly_would():
    import plotly.graph_objects as go

    blank = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="markers", marker={"color": "#ffffff"}))
    dots = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="markers", marker={"color": "#000000", "size": 12}))
    dark = [int((np.asarray(Image.open(io.BytesIO(figure_png(fig))).convert("L")) < 60).sum()) for fig in (blank, dots)]
    assert dark[1] > dark[0] + 200  # two black markers of 12 px drawn; white ones leave only the axes and ticks


def test_the_notes_group_side_by_side_figures_and_keep_only_steps_that_ran():
    notes = LessonNotes("title", "intro", "en", [])
    notes.add("text", "before any step: dropped")
    notes.sections.append(SectionNotes("1 · step"))
    notes.add("figures", "fig a")
    notes.add("figures", "fig b")
    notes.add("caption", "between")
    notes.add("figures", "fig c")
    notes.sections[-1].ran = True
    notes.sections.append(SectionNotes("2 · not run yet"))
    notes.add("metrics", "partial")
    assert notes.sections[0].blocks == [("figures", ["fig a", "fig b"]), ("caption", "between"),
                                        ("figures", ["fig c"])]
    assert [s.title for s in notes.ran_sections()] == ["1 · step"]
    notes.open = False
    notes.add("figures", "a fragment's later rerun")
    assert notes.sections[-1].blocks == [("metrics", ["partial"])]

"""User strings on the pages are text, never markup; a map or an upload limit that cannot be had is one line.

Hostile input, third round: items 2 (markdown injection), 7 (a dataset whose images are identical within
each class) and 8 (PTM_UPLOAD_MAX_BYTES of -1 or nan). The Chromium side is tests/test_browser_injection.py.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ingest_helpers import png_bytes, write
from pages.ui.text import md, plot_text
from test_app import _app

HOSTILE = ("x ![](https://evil.example/p.png) [Session expired: click to sign in](https://evil.example/login) "
           "<img src=https://evil.example/i.png> *b* _i_ `c` $x^2$ :red[r] www.evil.example a@evil.example")
# What is left of markdown's syntax in an escaped string: an unescaped special character or bare autolink.
UNESCAPED = re.compile(r"(?<!\\)[\[\]<>*`$~]|(?<![\\\w])_|(?<!\\)://|www\.|\w@")


def labelled_folder(root, labels: list[str], per_label: int = 3):
    """A flat folder of images plus a labels.csv naming each image's class."""
    rows = ["filename,label"]
    for i, label in enumerate(labels):
        for j in range(per_label):
            write(root / f"img{i}_{j}.png", png_bytes(30 * i + 5 * j + 10))
            rows.append(f'img{i}_{j}.png,"{label}"')
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize("name", [HOSTILE, "cat\n# big\n- list", "1. first", "\\![](https://evil.example/x)",
                                  "<https://evil.example>", "https://evil.example/p"])
def test_md_leaves_no_markdown_syntax_in_a_class_name(name):
    escaped = md(name)
    assert "\n" not in escaped and not UNESCAPED.search(escaped), escaped
    assert not re.match(r"\s*(#|-|\+|>|\d+\.)", escaped)  # no heading, list or quote
    # Unescaping gives the name back (line breaks as spaces): the user reads what they wrote.
    assert re.sub(r"\\(.)", r"\1", escaped.replace("\u200b", "")) == re.sub(r"[\r\n]+", " ", name)


def test_plot_text_neutralises_plotly_html():
    assert plot_text('<a href="https://evil.example">x</a> & <b>') == '&lt;a href="https://evil.example"&gt;x&lt;/a&gt; &amp; &lt;b&gt;'


def _datasets_page(spec: str) -> AppTest:
    at = _app("datasets")
    at.text_input(key="dataset_spec").set_value(spec).run()
    assert not at.exception, at.exception
    return at


def test_class_names_from_a_csv_are_escaped_on_the_datasets_page(tmp_path):
    folder = labelled_folder(tmp_path / "csv", ["[Login](https://evil.example/login)", "![](https://evil.example/p.png)"])
    at = _datasets_page(f"folder:{folder}")
    shown = [m.value for m in at.markdown if "images" in m.value and "·" in m.value]
    assert len(shown) == 2, [m.value for m in at.markdown]
    assert all(not UNESCAPED.search(v.replace("**", "")) for v in shown), shown
    assert any("\\[Login\\](https:\u200b//evil.example/login)" in v for v in shown), shown
    assert not at.error, [e.value for e in at.error]


def test_a_hostile_folder_path_is_escaped_in_the_error(tmp_path):
    at = _datasets_page(f"folder:{tmp_path}/{HOSTILE}")
    assert len(at.error) == 1 and "Folder not found" in at.error[0].value
    assert not UNESCAPED.search(at.error[0].value.split("Folder not found: ", 1)[1]), at.error[0].value


@pytest.mark.parametrize("spec", [f"folder:/tmp/{'a' * 300}", "folder:/tmp/x\x00y", f"zip:/tmp/{'b' * 300}.zip"])
def test_impossible_paths_are_one_line_on_the_datasets_page(spec):
    at = _datasets_page(spec)
    assert len(at.error) == 1 and ("NUL" in at.error[0].value or "at most 255" in at.error[0].value), at.error


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "zero"])
@pytest.mark.parametrize("page", ["datasets", "explore"])
def test_a_bad_upload_limit_is_one_line_not_a_traceback(value, page, monkeypatch):
    monkeypatch.setenv("PTM_UPLOAD_MAX_BYTES", value)
    at = _app(page)
    if page == "explore":
        at.selectbox(key="w_dataset").set_value("zip").run()
    assert not at.exception, at.exception
    assert any("PTM_UPLOAD_MAX_BYTES must be a positive integer" in e.value for e in at.error), [e.value for e in at.error]


def _degenerate_map_script():
    import numpy as np
    import streamlit as st

    from pages.ui.map_jobs import chosen_map
    from ptm_core.base.configs import ProjectionConfig
    from ptm_core.features.featureset import FeatureSet

    features = np.repeat(np.eye(2, 8, dtype=np.float32), 8, axis=0)  # every image of a class identical
    fs = FeatureSet(features, np.repeat([0, 1], 8), ["a", "b"], [f"i{i}" for i in range(16)], "degenerate-key")
    st.write("shown" if chosen_map(fs, ProjectionConfig(method="pca"), "src") is not None else "none")


def test_a_map_that_cannot_be_drawn_is_one_line_and_the_page_goes_on():
    at = AppTest.from_function(_degenerate_map_script, default_timeout=60).run()
    assert not at.exception, at.exception
    assert "only 2 different ones" in at.error[0].value and at.markdown[-1].value == "none"


def test_the_preview_skips_its_map_when_the_rows_are_too_alike():
    from ptm_core.features.preview import summarise

    features = np.repeat(np.eye(2, 16, dtype=np.float32), 8, axis=0)
    preview = summarise(features, np.repeat([0, 1], 8), ["a", "b"], 16)
    assert preview.coords.shape == (0, 2) and preview.accuracy == 1.0


@pytest.mark.parametrize("value", ["/tmp/x\x00y", f"/tmp/{'a' * 300}"])
def test_an_impossible_folder_path_on_the_explorer_is_one_line(value):
    from test_app import _run_until

    at = _app()
    at.selectbox(key="w_dataset").set_value("folder").run()
    at.text_input(key="w_folder_path").set_value(value).run()
    at.button(key="run").click().run()
    _run_until(at, lambda a: len(a.error) > 0, timeout=60)
    assert "NUL character" in at.error[0].value or "at most 255" in at.error[0].value, at.error[0].value

"""User-supplied strings shown as text, never as markup.

Streamlit renders markdown (links, images, LaTeX, colour directives) in `st.markdown`, captions, alerts,
metric labels and helps, expander and tab labels; plotly renders a subset of HTML (`<a href>`) in its
titles. A path, class name, file name, id or URL value quoted there goes through `md()` (or `plot_text()`
in a chart), so `![](https://…)` in a folder name stays those characters and loads nothing.
"""
from __future__ import annotations

import html
import re

from pages.ui.i18n import tr

# What gives markdown (CommonMark, GitHub's extensions, Streamlit's LaTeX and `:color[…]` directives) a link, an
# image, HTML, code, emphasis or maths, escaped with a backslash, which renders as nothing. Characters with a
# meaning only in some places are escaped only there, so ordinary names read the same in the markdown source:
# `_` at a word's edge (snake_case never emphasises) and a block marker at the start (`# `, `- `, `1. `).
# GitHub's bare autolinks (`https://…`, `www.…`, `name@host.tld`) are found in the text after escapes are
# resolved, so a backslash cannot stop them: a zero-width space (U+200B) goes inside each trigger instead,
# unseen on the page (copied along with such a string; no real path holds one).
_ALWAYS = re.compile(r"([\\`*\[\]<>$~&])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=[\w.+-])(?=@)", re.IGNORECASE)
ZERO_WIDTH = "\u200b"
_BLOCK_START = re.compile(r"^(\s*)(\d*)([#>+=|-]|(?<=\d)[.)])")
_NEWLINES = re.compile(r"[\r\n\u2028\u2029]+")


def md(value: object) -> str:
    """`value` as literal text inside markdown: its markup escaped, line breaks as spaces; engine text
    (a `Message`) in the interface's language."""
    text = _NEWLINES.sub(" ", _shown(value))
    text = _ALWAYS.sub(lambda m: "\\" + m.group(0), text)
    text = _AUTOLINK.sub(ZERO_WIDTH, text)
    return _BLOCK_START.sub(lambda m: m.group(1) + m.group(2) + "\\" + m.group(3), text)


def plot_text(value: object) -> str:
    """`value` as literal text in a plotly title or label (plotly reads `<a href>`, `<b>`, `&…;` there)."""
    return html.escape(_shown(value), quote=False)


def _shown(value: object) -> str:
    return tr(value)

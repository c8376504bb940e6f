"""The interface's language and presenter mode, both kept in the settings (URL `lang`, `presenter`).

Text lives in gettext catalogues, `assets/locale/<locale>/LC_MESSAGES/ptm.po`, compiled to `.mo`
(`pybabel compile -d assets/locale -D ptm`; tests/test_i18n.py fails when a `.mo` is stale or a
message in the code has no translation). In code, wrap every user-facing literal in `_()`; for
numbers and names use named placeholders, `_("{n} images").format(n=...)`, never an f-string
inside `_()`, since the catalogue is keyed by the literal text.
"""
from __future__ import annotations

import functools
import gettext
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from pages.ui import settings
from pages.ui.choices import LANGUAGES, ViewChoice

LOCALE_DIR = Path(__file__).resolve().parents[2] / "assets" / "locale"
DOMAIN = "ptm"
GETTEXT_LOCALES = {"zh": "zh_CN"}  # the app's language codes -> gettext's locale folder names


@functools.lru_cache(maxsize=None)
def translation(lang: str) -> gettext.NullTranslations:
    if lang not in GETTEXT_LOCALES:
        return gettext.NullTranslations()  # English is the source language
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[GETTEXT_LOCALES[lang]])


def language() -> str:
    try:
        return settings.get(ViewChoice).lang
    except KeyError:  # the settings are not loaded (a page run on its own in a test)
        return "en"


def _(message: str) -> str:
    return translation(language()).gettext(message)


def N_(message: str) -> str:
    """Marks text for the catalogue where it is defined; `_()` translates it where it is shown."""
    return message


def presenter() -> bool:
    try:
        return settings.get(ViewChoice).presenter
    except KeyError:
        return False


# Metrics wrap instead of cutting "120 × 1,280" to "120 …" at projector size; the sidebar widens for its labels.
# Metric values are markdown inside stMetricValue: the rule for every markdown paragraph would size them like
# their own label, so the value's rule names both containers (more specific, it wins between two !important).
PRESENTER_CSS = """
<style>
  html, body, [data-testid="stAppViewContainer"] { font-size: 22px; }
  [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li,
  [data-testid="stCaptionContainer"], label, button { font-size: 1.15rem !important; }
  [data-testid="stMetric"] [data-testid="stMetricValue"],
  [data-testid="stMetric"] [data-testid="stMetricValue"] * { font-size: 3rem !important; line-height: 1.2; }
  [data-testid="stMetric"] * { white-space: normal !important; overflow: visible !important;
                               text-overflow: clip !important; }
  [data-testid="stSidebar"] { min-width: 380px; }
  h1 { font-size: 3rem !important; } h2 { font-size: 2.3rem !important; } h3 { font-size: 1.8rem !important; }
</style>
"""


def view_controls() -> None:
    """Language and presenter mode, in every page's sidebar; the language list names each in itself."""
    with st.sidebar:
        settings.bound(st.selectbox, "Language · 语言", ViewChoice, "lang", options=list(LANGUAGES),
                       format_func=LANGUAGES.get)
        settings.bound(st.toggle, _("Presenter mode"), ViewChoice, "presenter",
                       help=_("Larger text, numbers and points, for a projector."))
    if presenter():
        st.html(PRESENTER_CSS)


PRESENTER_SCALE = 2  # points and markers on a projector: twice their size on a laptop screen


def style_figure(fig, marker_size: int | None = None):
    """The app's font size and, where given, marker size; `presented` scales both up for a projector."""
    fig.update_layout(font={"size": 13})
    if marker_size is not None:
        fig.update_traces(marker={"size": marker_size}, selector={"mode": "markers"})
    return fig


def presented(fig):
    """The figure as this mode shows it: in presenter mode a copy with bigger fonts and every marker scaled up
    (sizes set by the chart, or plotly's default 6); otherwise the figure itself, unchanged."""
    if not presenter():
        return fig
    fig = go.Figure(fig)  # the caller's figure may be cached: scale a copy, never the cached one twice
    fig.update_layout(font={"size": 20})
    for trace in fig.data:
        mode = getattr(trace, "mode", None) or ""
        if "markers" in mode:
            size = trace.marker.size
            trace.marker.size = (np.asarray(size) * PRESENTER_SCALE if size is not None and not np.isscalar(size)
                                 else (size or 6) * PRESENTER_SCALE)
    return fig


def show_chart(fig, *, where=None, **kwargs):
    """Every plotly chart of the app goes through here (tests/test_pages.py checks), so that presenter mode
    reaches each one; `where` is a column or container (st by default)."""
    return (where or st).plotly_chart(presented(fig), **kwargs)

"""The interface's language and presenter mode, both kept in the settings (URL `lang`, `presenter`).

Text lives in gettext catalogues, `assets/locale/<locale>/LC_MESSAGES/ptm.po`, compiled to `.mo`
(`pybabel compile -d assets/locale -D ptm`; tests/test_i18n.py fails when a `.mo` is stale or a
message in the code has no translation). In code, wrap every user-facing literal in `_()`; for
numbers and names use named placeholders, `_("{n} images").format(n=...)`, never an f-string
inside `_()`, since the catalogue is keyed by the literal text. A count's noun goes through
`ngettext("{n} epoch", "{n} epochs", n).format(n=n)`, never "epoch(s)".
"""
from __future__ import annotations

import functools
import gettext
from pathlib import Path

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


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for `n` in the interface's language ("1 label", "2 labels"; Chinese has one form).
    Named as gettext names it, so `pybabel extract`'s default keywords find both forms."""
    return translation(language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks text for the catalogue where it is defined; `_()` translates it where it is shown."""
    return message


def presenter() -> bool:
    try:
        return settings.get(ViewChoice).presenter
    except KeyError:
        return False


PRESENTER_CSS = """
<style>
  html, body, [data-testid="stAppViewContainer"] { font-size: 22px; }
  [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li,
  [data-testid="stCaptionContainer"], label, button { font-size: 1.15rem !important; }
  [data-testid="stMetricValue"] { font-size: 3rem !important; }
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


def style_figure(fig, marker_size: int | None = None):
    """A plotly figure sized for the current mode: bigger fonts and points for a projector."""
    big = presenter()
    fig.update_layout(font={"size": 20 if big else 13})
    if marker_size is not None:
        fig.update_traces(marker={"size": marker_size * (2 if big else 1)}, selector={"mode": "markers"})
    return fig

"""The interface's language and presenter mode, both kept in the settings (URL `lang`, `presenter`).

Text lives in gettext catalogues, `assets/locale/<locale>/LC_MESSAGES/ptm.po`, compiled to `.mo`
(`pybabel compile -d assets/locale -D ptm`; tests/test_i18n.py fails when a `.mo` is stale or a
message in the code has no translation). In code, wrap every user-facing literal in `_()`; for
numbers and names use named placeholders, `_("{n} images").format(n=...)`, never an f-string
inside `_()`, since the catalogue is keyed by the literal text. A count's noun goes through
`ngettext("{n} epoch", "{n} epochs", n).format(n=n)`, never "epoch(s)". Engine text (progress lines, titles,
errors) arrives as `ptm_core.base.Message`s, marked with `M_` in ptm_core: `tr()` translates those.
"""
from __future__ import annotations

import functools
import gettext
import re
import struct
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from pages.ui import settings
from pages.ui.choices import LANGUAGES, ViewChoice
from ptm_core.base import Message

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


def tr(text: object) -> str:
    """Engine text in the interface's language: a Message's template through the catalogue, its parameters
    formatted in (those that are Messages translated the same way); anything else as `str()` gives it."""
    if not isinstance(text, Message):
        return str(text)
    params = {key: tr(value) if isinstance(value, Message) else value for key, value in text.params.items()}
    template = translation(language()).gettext(text.template)
    try:
        return template.format(**params) if params else template
    except (KeyError, IndexError, ValueError):  # a translation that lost a field: the English line, not a crash
        return str(text)


def tr_stored(text: object) -> str:
    """`tr` for engine text that lost its template on the way (a run's title, message or error read back from the
    store as plain English): matched against the catalogue's templates, its fields translated in turn."""
    if isinstance(text, Message) or not isinstance(text, str) or language() not in GETTEXT_LOCALES:
        return tr(text)
    return _matched(text, language(), depth=3)


@functools.lru_cache(maxsize=4096)  # a pure function of the compiled catalogue; a skip table asks it per row, per rerun
def _matched(text: str, lang: str, depth: int) -> str:
    exact = translation(lang).gettext(text)
    if exact != text or depth == 0:
        return exact
    for pattern, template, worded in stored_patterns(lang):
        if match := pattern.fullmatch(text):
            fields = {key: _matched(value, lang, depth - 1) for key, value in match.groupdict().items()}
            if not worded and fields == match.groupdict():
                continue  # "{model} ({weights})" matches any "x (y)": taken only when a part of it is ours
            plain = re.sub(r"{(\w+)[^{}]*}", r"{\1}", translation(lang).gettext(template))  # the fields are text now
            try:
                return plain.format(**fields)
            except (KeyError, IndexError, ValueError):
                return text
    if ", " in text:  # a list of settings (messages.join), each of them translated
        return ", ".join(_matched(part, lang, depth) for part in text.split(", "))
    return text


@functools.lru_cache(maxsize=None)
def stored_patterns(lang: str) -> list[tuple[re.Pattern, str, bool]]:
    """(regular expression, template, whether it has a word of its own) per catalogue template with a field, those
    with most literal text first; a template of fields and punctuation only ("{model} ({weights})", "{p0}, {p1}")
    is tried last. Its first field takes as little as it can, so a list splits at its first separator."""
    patterns = []
    for template in catalogue_ids(GETTEXT_LOCALES[lang]):
        parts = re.split(r"{(\w+)[^{}]*}", template)
        literal = "".join(parts[0::2])
        if len(parts) == 1 or not literal.strip():
            continue
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P={part})" if part in parts[1:i:2] else
                        f"(?P<{part}>.+?)" for i, part in enumerate(parts))
        worded = bool(re.search(r"[A-Za-z]", literal))
        patterns.append((worded, len(literal), re.compile(regex, re.DOTALL), template))
    patterns.sort(key=lambda p: (not p[0], -p[1]))
    return [(pattern, template, worded) for worded, _, pattern, template in patterns]


def catalogue_ids(locale: str) -> list[str]:
    """The message ids of a compiled catalogue (GNU .mo: a header, then a table of (length, offset) per id)."""
    data = (LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.mo").read_bytes()
    order = "<" if data[:4] == b"\xde\x12\x04\x95" else ">"
    count, ids_at = struct.unpack(order + "II", data[8:16])
    entries = (struct.unpack(order + "II", data[ids_at + 8 * i:ids_at + 8 * i + 8]) for i in range(count))
    return [data[offset:offset + length].decode() for length, offset in entries if length]


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
    """Every plotly chart of the app goes through here (tests/test_presenter.py checks), so that presenter mode
    reaches each one, and so that the tour's lesson file (pages/ui/lesson_views.py) notes each chart it shows;
    `where` is a column or container (st by default)."""
    from pages.ui.lesson_views import note  # here, not at the top: lesson_views imports this module

    note("figures", fig)
    return (where or st).plotly_chart(presented(fig), **kwargs)

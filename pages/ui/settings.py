"""The one settings model every page reads: kept in session state, mirrored to the URL, bound to widgets.

Streamlit drops the state of a keyed widget that is not drawn in a run, so no setting lives in a
widget. Each widget is drawn from the model (its key is seeded before it is drawn) and writes back to
the model in its on_change callback; the model then survives page switches, and the URL (written on
every run) survives a refresh and makes a shareable link.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

import streamlit as st

from pages.ui import choices
from pages.ui.choices import CONCERNS, PARAMETERS

T = TypeVar("T")
_MODEL = "settings_model"
_PROBLEMS = "settings_problems"


def load(options: dict[str, list] | None = None) -> None:
    """Once per browser session, the URL's settings, checked; a bad value falls back to its default."""
    if _MODEL in st.session_state:
        return
    params = st.query_params.to_dict()
    model, problems = {}, []
    for concern in CONCERNS:
        value, bad = choices.from_params(concern, params, options)
        model[concern.__name__] = value
        problems += bad
    st.session_state[_MODEL] = model
    st.session_state[_PROBLEMS] = problems


def problems() -> list[str]:
    """URL values that were refused when this session started (shown once, then forgotten)."""
    return st.session_state.pop(_PROBLEMS, [])


def get(concern: type[T]) -> T:
    return st.session_state[_MODEL][concern.__name__]


def put(value: Any) -> None:
    st.session_state[_MODEL][type(value).__name__] = value
    mirror_url()


def update(concern: type[T], **changes) -> T:
    value = dataclasses.replace(get(concern), **changes)
    put(value)
    return value


def mirror_url() -> None:
    """The URL carries exactly the settings that differ from their defaults; other parameters are left alone."""
    wanted: dict[str, str] = {}
    for value in st.session_state[_MODEL].values():
        wanted.update(choices.to_params(value))
    for name in [n for n in st.query_params if n in PARAMETERS and n not in wanted]:
        del st.query_params[name]
    for name, text in wanted.items():
        if st.query_params.get(name) != text:
            st.query_params[name] = text


def widget_key(name: str) -> str:
    return f"w_{name}"


def _commit(concern: type, name: str) -> None:
    raw = st.session_state.get(widget_key(name))
    try:
        value = choices.convert(concern, name, raw)
    except (TypeError, ValueError):
        return
    if choices.problem(concern, name, value) is None:
        update(concern, **{name: value})


def bound(draw: Callable[..., Any], label: str, concern: type, name: str, **kwargs) -> Any:
    """Draw a widget showing the model's value of `name`; the user's change goes back into the model."""
    key = widget_key(name)
    st.session_state[key] = getattr(get(concern), name)
    return draw(label, key=key, on_change=_commit, args=(concern, name), **kwargs)

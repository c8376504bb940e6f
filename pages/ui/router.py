"""Make app.py's `st.navigation` the only router, from a fresh server's very first request.

A `pages/` folder beside app.py switches Streamlit (1.67) into its legacy multipage mode: until some
script calls `st.navigation`, a request for /compare runs pages/compare.py by itself, without app.py
(no page config, no background services, a sidebar listing file names). Streamlit offers no setting
to turn that mode off; `st.navigation` turns it off for the process by setting
`PagesManager.uses_pages_directory = False`. So the first script run of a process that imports the
page layer does the same and reruns once, now through app.py. tests/test_router.py fails the day
Streamlit changes this mechanism.
"""
from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx


def legacy_pages_mode() -> bool:
    return bool(PagesManager.uses_pages_directory)


def take_over_routing() -> None:
    """Turn the legacy mode off; if this very run is a legacy one, run it again through app.py."""
    if not legacy_pages_mode():
        return
    PagesManager.uses_pages_directory = False
    if get_script_run_ctx() is not None:
        st.rerun()

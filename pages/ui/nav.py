"""Make app.py's `st.navigation` the only router, from a fresh server's very first request, with public API.

A `pages/` folder beside app.py switches Streamlit (1.67) into its legacy multipage mode until some script
calls `st.navigation` (documented: from then on the process ignores the folder, for every session). Until
then a request runs the page its URL names, /compare -> pages/compare.py, without app.py: no page config,
no settings from the URL, no background services. Every page imports the page layer first, so the first
import of a process hands over: `st.navigation` with the app's pages (same files, same URLs, hidden) and
a rerun of the same request, now through app.py.

A legacy run also sends the folder's file names (app, backbones, compare, …) as the sidebar's navigation
before any code of ours runs; `client.showSidebarNavigation = false` in .streamlit/config.toml hides that
list, and app.py switches the option back on (`st.set_option`, allowed in a script) for its own
navigation, which the option would hide too.
"""
from __future__ import annotations

import streamlit as st

# Each page is pages/<name>.py at the URL /<name>; app.py gives titles and icons (tests/test_nav.py checks both agree).
PAGES = ("tour", "explore", "compare", "lab", "bench", "backbones", "datasets", "jobs")
DEFAULT = "tour"

handed_over = False


def hand_over_to_app() -> None:
    """Once per process, inside a script run: leave the legacy mode and run this request again through app.py."""
    global handed_over
    if handed_over:
        return
    # Outside a Streamlit server (tests and benchmarks import the page layer) both calls below do nothing.
    handed_over = True
    st.navigation([st.Page(f"pages/{name}.py", default=name == DEFAULT) for name in PAGES], position="hidden")
    st.rerun()

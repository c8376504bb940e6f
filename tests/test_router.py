"""The one Streamlit internal the page layer leans on (pages/ui/router.py): fails the day Streamlit changes it."""
import inspect

import streamlit as st
from streamlit.commands import navigation
from streamlit.runtime import pages_manager
from streamlit.runtime.scriptrunner import script_runner

from pages.ui import router


def test_streamlit_still_switches_legacy_pages_mode_on_this_flag():
    # The flag exists, is set from a pages/ folder beside the main script, and routes runs to the legacy mode.
    assert hasattr(pages_manager.PagesManager, "uses_pages_directory")
    assert '"pages"' in inspect.getsource(pages_manager.PagesManager.__init__)
    runner = inspect.getsource(script_runner.ScriptRunner)
    assert "if PagesManager.uses_pages_directory:" in runner and "_mpa_v1(" in runner
    # st.navigation turns it off for the process, which is all take_over_routing does ahead of it.
    assert "PagesManager.uses_pages_directory = False" in inspect.getsource(navigation.navigation)


def test_take_over_routing_turns_legacy_mode_off_once(monkeypatch):
    monkeypatch.setattr(pages_manager.PagesManager, "uses_pages_directory", True)
    assert router.legacy_pages_mode()
    router.take_over_routing()  # outside a script run: nothing to rerun
    assert pages_manager.PagesManager.uses_pages_directory is False and not router.legacy_pages_mode()
    router.take_over_routing()
    assert pages_manager.PagesManager.uses_pages_directory is False


def test_page_helpers_are_not_pages():
    """Only pages sit at the top of pages/: Streamlit lists every pages/*.py file as a page in legacy mode."""
    from pathlib import Path

    pages = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "pages").glob("*.py"))
    assert pages == ["backbones", "compare", "datasets", "explore", "jobs", "lab", "tour"]
    app = (Path(__file__).resolve().parents[1] / "app.py").read_text()
    assert all(f'"pages/{name}.py"' in app for name in pages)
    assert st.navigation is navigation.navigation

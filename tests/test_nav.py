"""app.py's navigation and pages/ui/nav.py's hand-over name the same pages at the same URLs."""
import ast
import tomllib
from pathlib import Path

from pages.ui import nav

ROOT = Path(__file__).resolve().parents[1]


def _app_pages() -> dict[str, tuple[str, bool]]:
    """Each st.Page in app.py: file stem -> (URL path, default)."""
    found = {}
    for node in ast.walk(ast.parse((ROOT / "app.py").read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Page":
            stem = Path(node.args[0].value).stem
            keywords = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
            found[stem] = (keywords.get("url_path", stem), keywords.get("default", False))
    return found


def test_every_page_file_is_routed_at_its_name_by_app_and_hand_over_alike():
    files = sorted(p.stem for p in (ROOT / "pages").glob("*.py"))
    assert sorted(nav.PAGES) == files
    app = _app_pages()
    assert sorted(app) == files
    assert all(url == stem for stem, (url, _) in app.items())  # the hand-over's st.Page infers the URL from the file
    assert [stem for stem, (_, default) in app.items() if default] == [nav.DEFAULT]


def test_the_legacy_file_list_is_hidden_and_app_shows_its_own():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showSidebarNavigation"] is False
    assert 'st.set_option("client.showSidebarNavigation", True)' in (ROOT / "app.py").read_text()


def test_hand_over_does_nothing_outside_streamlit():
    nav.hand_over_to_app()  # outside a server (a test, a benchmark) navigation and rerun do nothing: no error

"""The house rules, checked without running anything: no import cycles in the engine, no private names across
modules, modules of a readable size, the UI through flows and base only, public Streamlit only, and package
interfaces that say what they are. The layer contracts themselves are `.importlinter`'s (`lint-imports`);
these tests cover what it cannot: app.py (not a package, so not a grimp root), Streamlit's submodules (grimp
sees external packages by their top-level name only) and the shape of each package's `__init__`.

Function-level imports count everywhere: grimp records them, and the AST checks walk every node.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import grimp
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
OURS = ("ptm_core", "pages")
MAX_LINES = 400
UI_MAY_IMPORT = ("ptm_core.flows", "ptm_core.base")
PUBLIC_STREAMLIT = ("streamlit", "streamlit.components.v1", "streamlit.column_config", "streamlit.testing.v1")


def _engine_files() -> list[Path]:
    return sorted((REPO_ROOT / "ptm_core").rglob("*.py"))


def _ui_files() -> list[Path]:
    return sorted((REPO_ROOT / "pages").rglob("*.py")) + [REPO_ROOT / "app.py"]


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in the file, at any depth; `from a import b` gives `a.b`."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and name != "_" and not (name.startswith("__") and name.endswith("__"))


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.fixture(scope="module")
def engine_graph() -> grimp.ImportGraph:
    return grimp.build_graph("ptm_core", cache_dir=None)


def test_every_engine_module_imports():
    """A module that does not even compile on this Python breaks the CLI and the app alike."""
    import ptm_core

    names = sorted(m.name for m in pkgutil.walk_packages(ptm_core.__path__, "ptm_core.") if m.name != "ptm_core.__main__")
    assert {"ptm_core.cli.commands", "ptm_core.base.configs", "ptm_core.data", "ptm_core.data.sources", "ptm_core.features.extraction",
            "ptm_core.runs.jobs", "ptm_core.flows.explore", "ptm_core.probes.linear", "ptm_core.models.weights"} <= set(names)
    for name in names:
        importlib.import_module(name)


def test_engine_never_imports_the_ui():
    """Streamlit, the pages and app.py stay above the engine, at any depth (a function-level import counts)."""
    bad = [f"{_rel(path)}:{line}: {name}" for path in _engine_files() for line, name in _imported_modules(path)
           if any(_under(name, top) for top in ("streamlit", "pages", "app"))]
    assert not bad, "\n".join(bad)


def test_grimp_sees_function_level_imports(tmp_path):
    """The cycle test below relies on grimp recording an import inside a function body."""
    package = tmp_path / "probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from probe_pkg import b\n    return b\n")
    (package / "b.py").write_text("X = 1\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        graph = grimp.build_graph("probe_pkg", cache_dir=None)
    finally:
        sys.path.remove(str(tmp_path))
    assert graph.direct_import_exists(importer="probe_pkg.a", imported="probe_pkg.b")


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing itself), Tarjan's."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(root: str) -> None:  # iterative: no recursion limit on a deep graph
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child) & modules))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or graph.direct_import_exists(importer=node, imported=node):
                    found.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycles(graph, {"p", "p.a", "p.b", "p.c"}) == [["p.a", "p.b", "p.c"]]
    assert _cycles(graph, {"p", "p.a", "p.b"}) == []


def test_no_import_cycle_in_the_engine(engine_graph):
    """No ptm_core module reaches itself through imports (package __init__s and function-level imports included)."""
    cycles = _cycles(engine_graph, set(engine_graph.modules))
    details = []
    for cycle in cycles:
        first, second = cycle[0], cycle[-1]
        chain = engine_graph.find_shortest_chain(importer=first, imported=second) or ()
        back = engine_graph.find_shortest_chain(importer=second, imported=first) or ()
        details.append(" -> ".join(tuple(chain) + tuple(back[1:])))
    assert not cycles, "\n".join(details)


def test_engine_modules_skip_their_own_package_init(engine_graph):
    """Inside ptm_core a module imports its neighbours directly (ptm_core.features.featureset), never through its
    own package's __init__ (which imports it back)."""
    bad = []
    for module in sorted(engine_graph.modules):
        package = module.rpartition(".")[0]
        if package.count(".") == 1 and engine_graph.direct_import_exists(importer=module, imported=package):
            bad.append(f"{module} -> {package}")
    assert not bad, "\n".join(bad)


def _private_uses(path: Path) -> list[str]:
    """`from ours import _x`, `import ours._x` and `ours_name._x` / `getattr(ours_name, "_x")` for a name bound
    by an import from one of our packages; the gettext `_` is not private."""
    tree = _tree(path)
    bound: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OURS:
            found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names if _is_private(a.name)]
            found += [f"{node.lineno}: from {node.module}" for part in node.module.split(".") if _is_private(part)]
            bound |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in OURS:
                    found += [f"{node.lineno}: import {alias.name}" for part in alias.name.split(".") if _is_private(part)]
                    bound.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "hasattr")
              and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) and node.args[0].id in bound
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and _is_private(node.args[1].value)):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return [f"{_rel(path)}:{line}" for line in found]


def test_private_finder_finds_private_uses(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import ptm_core.base.paths as paths\nfrom ptm_core.base import text\nfrom ptm_core.runs.jobs import _lock\n"
                      "from pages.ui.i18n import _\n\ndef f():\n    return paths._root(), text._x.y, getattr(text, '_z'), _('ok'), __name__\n")
    found = _private_uses(sample)
    assert sorted(f.split(": ", 1)[1] for f in found) == sorted(
        ["from ptm_core.runs.jobs import _lock", "paths._root", "text._x", "getattr(text, '_z')"])


def test_no_private_name_across_modules():
    bad = [use for path in _engine_files() + _ui_files() for use in _private_uses(path)]
    assert not bad, "private names used from another module:\n" + "\n".join(bad)


def test_modules_stay_readable():
    long = [f"{_rel(path)}: {n} lines" for path in _engine_files() + sorted((REPO_ROOT / "pages").rglob("*.py"))
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, f"over {MAX_LINES} lines:\n" + "\n".join(long)


def test_ui_reaches_the_engine_through_flows_and_base():
    """pages/ and app.py import from ptm_core only ptm_core.flows and ptm_core.base (the rest sits behind flows).
    `lint-imports` checks the same for pages; app.py is not a package, so only this test sees it."""
    bad = [f"{_rel(path)}:{line}: {name}" for path in _ui_files() for line, name in _imported_modules(path)
           if _under(name, "ptm_core") and not any(_under(name, allowed) for allowed in UI_MAY_IMPORT)]
    assert not bad, "the UI imports the engine past flows and base:\n" + "\n".join(bad)


def _streamlit_name_is_public(name: str) -> bool:
    """`streamlit.X` is public if it is an attribute of `st` that is not a submodule (st.columns), or a
    documented public submodule; runtime, web, config and the other submodules are Streamlit's internals."""
    if any(_under(name, public) and name.count(".") <= public.count(".") for public in PUBLIC_STREAMLIT):
        return True
    if any(_under(name, public) for public in PUBLIC_STREAMLIT[1:]):
        return True  # a name inside a public submodule (streamlit.components.v1.html)
    if name.count(".") > 1 or _is_private(name.rpartition(".")[2]):
        return False
    return importlib.util.find_spec(name) is None  # a plain attribute of `st`, not a submodule


def test_ui_uses_public_streamlit_only():
    bad = [f"{_rel(path)}:{line}: {name}" for path in _ui_files() for line, name in _imported_modules(path)
           if _under(name, "streamlit") and not _streamlit_name_is_public(name)]
    assert not bad, "Streamlit internals imported (their API changes without notice):\n" + "\n".join(bad)


def test_streamlit_rule_tells_public_from_internal():
    assert _streamlit_name_is_public("streamlit") and _streamlit_name_is_public("streamlit.components.v1")
    assert _streamlit_name_is_public("streamlit.column_config") and _streamlit_name_is_public("streamlit.components.v1.html")
    assert _streamlit_name_is_public("streamlit.columns")
    for internal in ("streamlit.runtime", "streamlit.runtime.scriptrunner.get_script_run_ctx", "streamlit.web.server",
                     "streamlit.config", "streamlit._config"):
        assert not _streamlit_name_is_public(internal), internal


def _engine_packages() -> list[str]:
    return sorted(f"ptm_core.{path.parent.name}" for path in (REPO_ROOT / "ptm_core").glob("*/__init__.py"))


@pytest.mark.parametrize("name", _engine_packages())
def test_package_interface_is_declared(name):
    """Each subpackage's __init__ says what the package is (docstring) and names its public interface (__all__);
    every name there exists, and none shadows a submodule of the same name."""
    package = importlib.import_module(name)
    assert (package.__doc__ or "").strip(), f"{name}/__init__.py has no docstring"
    exported = getattr(package, "__all__", None)
    assert isinstance(exported, (list, tuple)) and exported, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(package, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    submodules = {m.name for m in pkgutil.iter_modules(package.__path__)}
    shadowing = sorted(set(exported) & submodules)
    assert not shadowing, f"{name}.__all__ re-exports a name equal to a submodule (it shadows it): {shadowing}"


def test_every_subpackage_is_checked():
    assert {"ptm_core.base", "ptm_core.runs", "ptm_core.data", "ptm_core.models", "ptm_core.features", "ptm_core.probes",
            "ptm_core.finetune", "ptm_core.evals", "ptm_core.maps", "ptm_core.flows", "ptm_core.cli"} <= set(_engine_packages())


def test_the_import_contracts_hold():
    """`.importlinter`'s contracts, also from README's test command (CI runs `lint-imports` on its own as well)."""
    import shutil
    import subprocess

    lint = shutil.which("lint-imports")
    assert lint, "import-linter is in requirements-dev.txt: install it"
    out = subprocess.run([lint, "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]
    assert "0 broken" in out.stdout and "BROKEN" not in out.stdout

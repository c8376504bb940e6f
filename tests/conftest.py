"""The tests' shared fixtures: an isolated data dir for every test, the tiny model setup, the real-browser server and
page, and the per-marker time limits (the markers themselves are registered in the repo root's .pytest.ini).

Shared helpers that are not fixtures live in modules beside this one (arrays, ingest_helpers, indexed_images,
browser_support), imported by name.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Seconds a test may run (setup and teardown included) before pytest-timeout fails it, by marker; every other test
# gets .pytest.ini's `timeout`. A test's own @pytest.mark.timeout wins. Generous: they catch hangs, not slowness,
# on a shared 2-core machine.
MARKER_TIMEOUTS = {"browser": 1800, "slow": 900}


def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        for marker, seconds in MARKER_TIMEOUTS.items():
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.timeout(seconds))
                break


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    """Every test gets its own, empty PTM_DATA_DIR (feature/projection caches).

    Its tmp_path is also the only allowed root besides that data dir, so folder:/zip: specs
    under tmp_path load and anything else (the repo, /etc) is outside, as for a real user.
    """
    data = tmp_path / "ptm-data"
    monkeypatch.setenv("PTM_DATA_DIR", str(data))
    monkeypatch.setenv("PTM_ALLOWED_ROOTS", str(tmp_path))
    return data


@pytest.fixture(autouse=True)
def _restore_pillow_limit(monkeypatch):
    """The loaders set Image.MAX_IMAGE_PIXELS from the env; do not leak a tiny one to other tests."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@dataclass(frozen=True)
class TinySetup:
    """The smallest setup that exercises the real pipeline: a tiny timm model with random weights."""

    model: str
    image_size: int = 32
    dataset: str = "digits"
    limit: int = 60

    def backbone(self, seed: int = 0):
        from ptm_core.base.configs import BackboneConfig

        return BackboneConfig(self.model, "random", seed)

    def data(self, limit: int | None = None):
        from ptm_core.base.configs import DatasetConfig

        return DatasetConfig(self.dataset, self.limit if limit is None else limit)

    def extraction(self, batch_size: int = 64, precision: str = "fp32"):
        """fp32 unless a test asks otherwise: which precision `auto` picks depends on the machine (tests of that
        choice ask for `auto` themselves), and the pipeline's tests compare numbers."""
        from ptm_core.base.configs import ExtractionConfig

        return ExtractionConfig(self.image_size, batch_size, "cpu", precision=precision)

    def source(self, seed: int = 0, limit: int | None = None):
        from ptm_core.base.configs import Source

        return Source(self.data(limit), self.backbone(seed), self.extraction())


@pytest.fixture(scope="session")
def tiny() -> TinySetup:
    import timm

    for name in ("test_efficientnet", "resnet10t"):
        if timm.is_model(name):
            return TinySetup(model=name)
    pytest.skip("no tiny timm model (test_efficientnet / resnet10t) in this timm version")


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.005) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


@pytest.fixture(name="wait_until")
def _wait_until_fixture():
    return wait_until


@pytest.fixture()
def bf16_gates_open(monkeypatch):
    """`--precision auto` may use bf16 on every runtime (calibration.AUTO_BF16 is set by a measurement that may
    close a gate): tests of the bf16 branch open them, so the branch runs whatever the measurement said."""
    from ptm_core.models.calibration import AUTO_BF16

    for runtime in AUTO_BF16:
        monkeypatch.setitem(AUTO_BF16, runtime, True)


@pytest.fixture()
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core box they thrash."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Each phase's report on the test item, so fixtures can tell in teardown whether the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# --------------------------------------------------------------------------- real browser (tests/test_browser*.py)
# Importing browser_support skips the importing module where Debian's chromium is missing (and fails it instead
# under PTM_REQUIRE_BROWSER=1); these fixtures import it only when a test asks for them.

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """The browser server's PTM_DATA_DIR, one per test module."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory) -> Path:
    """Where a test puts the user's own image folders: an allowed root, and not inside the data folder (the app's
    own storage, which `folder:` refuses)."""
    return tmp_path_factory.mktemp("user")


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("log") / "streamlit.log"


@pytest.fixture(scope="module")
def server(data_dir, user_dir, server_log):
    """`streamlit run app.py` for the module (a module may define its own `server` with other settings)."""
    from browser_support import serve

    yield from serve(data_dir, server_log, PTM_ALLOWED_ROOTS=str(user_dir))


@pytest.fixture()
def page(server, server_log, request):
    """A chromium page on the server; the test fails on any traceback the server logged while it ran."""
    from browser_support import open_page

    yield from open_page(server, server_log, request.node)

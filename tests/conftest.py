"""Shared fixtures for the ptm_core engine tests (no streamlit, no network)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


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

"""`extract --engine ray --address` against a real head: `ray start --head --block` on 127.0.0.1 only.

The head is this module's own process, in its own session, with its own port, temp dir and token; it is stopped by
signalling that process, then killing whatever is left of its session (never a machine-wide `ray stop`). Drivers
run as subprocesses, so they share no Ray state with this pytest process (test_ray_engine's local Ray).
Skipped only where Ray is not installed (requirements-scale.txt; CI installs it).
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arrays import cosines

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                                                    reason="Ray is optional: pip install -r requirements-scale.txt")]

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}
# What this pytest process may hold from an earlier in-process Ray (a local ray.init sets RAY_AUTH_MODE) or a user.
RAY_VARS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
START_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Head:
    address: str
    token_path: str
    process: subprocess.Popen
    root: Path  # its temp dir: sessions, logs, token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in RAY_VARS and k != "PTM_DEBUG"}
    return dict(env, RAY_USAGE_STATS_ENABLED="0", PYTHONDONTWRITEBYTECODE="1", **extra)


def _head_env(root: Path) -> dict[str, str]:
    (root / "auth_token").write_text(secrets.token_hex(32))  # found at start: the head uses token auth
    home = root / "home"
    home.mkdir()
    # A head always runs Ray's usage-stats module, which (usage stats off or not) asks cloud metadata servers
    # (169.254.169.254) which cloud it is on unless ~/ray_bootstrap_config.yaml names one: an empty config in
    # the head's own HOME keeps its traffic on 127.0.0.1. PYTHONUSERBASE keeps the user's site-packages.
    (home / "ray_bootstrap_config.yaml").write_text("{}\n")
    return _env(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # Ray keeps 127.0.0.1 instead of the interface address
                RAY_AUTH_TOKEN_PATH=str(root / "auth_token"), HOME=str(home), PYTHONUSERBASE=site.getuserbase(),
                # On SIGTERM a head first drains for up to 30 s, waiting for the node to go idle, which Ray Data's
                # detached actors (left by the driver) never let it: stop at once instead.
                RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")


def _wait_for_head(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`ray start --head` exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if "Ray runtime started" in log.read_text(errors="replace"):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                pass
        time.sleep(0.2)
    pytest.fail(f"`ray start --head` did not come up in {START_TIMEOUT_S:.0f} s:\n{log.read_text()[-3000:]}")


def _psutil():
    import ray  # noqa: F401  (puts the psutil that Ray vendors on sys.path)
    import psutil

    return psutil


def _session_processes(process: subprocess.Popen, root: Path) -> list:
    """The head's processes: its session (workers change process group, not session), or its temp dir."""
    psutil = _psutil()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getsid(proc.pid) == process.pid or str(root) in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return [p for p in found if p.pid != os.getpid()]


def _stop_head(process: subprocess.Popen, root: Path) -> None:
    psutil = _psutil()

    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started, then exits
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    survivors = _session_processes(process, root)
    for proc in survivors:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(survivors, timeout=10)
    if process.poll() is None:
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def head():
    # Short and under /tmp: Ray's socket paths (<temp-dir>/session_<date>_<pid>/sockets/plasma_store) must fit
    # in the 107 bytes of a Unix socket address, which a pytest tmp_path can exceed.
    root = Path(tempfile.mkdtemp(prefix="ptmray-", dir="/tmp" if os.path.isdir("/tmp") else None))
    port, log = _free_port(), root / "head.log"
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
               "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
               "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(root)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=_head_env(root), stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_head(process, port, log)
        yield Head(f"127.0.0.1:{port}", str(root / "auth_token"), process, root)
    finally:
        _stop_head(process, root)
        shutil.rmtree(root, ignore_errors=True)


def _driver_env(head: Head, tmp_path: Path) -> dict[str, str]:
    # This machine's token, as a user would have it; no RAY_AUTH_MODE: the driver must see that the head wants it.
    return _env(PTM_DATA_DIR=str(tmp_path / "driver-data"), PTM_ALLOWED_ROOTS=str(tmp_path),
                RAY_AUTH_TOKEN_PATH=head.token_path)


def _connections(proc) -> list:
    try:
        return proc.net_connections(kind="inet")
    except _psutil().Error:
        return []


def test_the_head_listens_on_127_0_0_1_only(head):
    psutil = _psutil()

    listening = [(p.pid, c.laddr) for p in _session_processes(head.process, head.root)
                 for c in _connections(p) if c.status == psutil.CONN_LISTEN]
    assert listening and all(addr.ip in LOOPBACK for _, addr in listening), listening


def test_the_cli_joins_the_head_and_matches_the_local_engine(head, tiny, tmp_path, one_torch_thread):
    from ptm_core.base.configs import ExtractionConfig
    from ptm_core.features.extraction import extract
    from ptm_core.features.user_files import read_features_file

    out = tmp_path / "ray.npz"
    args = ["extract", "--backbone", tiny.model, "--weights", "random", "--dataset", tiny.dataset,
            "--limit", str(tiny.limit), "--image-size", str(tiny.image_size), "--batch-size", "32", "--device", "cpu",
            "--precision", "fp32", "--runtime", "torch", "--out", str(out), "--json",
            "--engine", "ray", "--address", head.address]
    run = subprocess.run([sys.executable, "-m", "ptm_core", *args], cwd=REPO_ROOT, env=_driver_env(head, tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    local = extract(tiny.data(), tiny.backbone(),
                    ExtractionConfig(tiny.image_size, 32, "cpu", precision="fp32", runtime="torch"))
    remote = read_features_file(out)
    assert summary["n"] == len(local.ids) and summary["cache_hit"] is False and summary["key"] == local.key
    assert remote.ids == local.ids
    np.testing.assert_array_equal(remote.labels, local.labels)
    assert cosines(remote.features, local.features).min() >= 0.999


CHECK_SCRIPT = """
import json, sys
from pathlib import Path

import ray

from ptm_core.base.configs import DatasetConfig
from ptm_core.data import Dataset, load_dataset
from ptm_core.base.errors import PTMError
from ptm_core.features.ray_cluster import check_paths_on_nodes, start_ray

address, folder, gone = sys.argv[1:]
start_ray(address)
datasets = {"folder": load_dataset(DatasetConfig("folder:" + folder)),
            "digits": load_dataset(DatasetConfig("digits", 20)),
            "gone": Dataset("gone", [Path(gone)], [0], ["a"], "gone")}
answers = {}
for name, dataset in datasets.items():
    try:
        check_paths_on_nodes(ray, dataset)
        answers[name] = None
    except PTMError as exc:
        answers[name] = str(exc)
ray.shutdown()
print(json.dumps(answers))
"""


def test_folder_datasets_are_checked_on_every_node_before_the_run(head, tmp_path):
    folder = tmp_path / "images"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 90, 40, 200 if label == "a" else 0)).save(folder / label / f"{i}.png")
    gone = tmp_path / "elsewhere" / "0.png"  # what a worker node without the shared filesystem sees
    run = subprocess.run([sys.executable, "-c", CHECK_SCRIPT, head.address, str(folder), str(gone)], cwd=REPO_ROOT,
                         env=_driver_env(head, tmp_path), capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    answers = json.loads(run.stdout.strip().splitlines()[-1])
    assert answers["folder"] is None and answers["digits"] is None  # seen by the node; in memory: not checked
    assert answers["gone"] == (
        f"folder: and zip: datasets are read by path on every Ray node; node 127.0.0.1 cannot see {gone}: put the "
        "images on a shared filesystem at the same path on every node, or use a dataset that travels with the job "
        "(mnist5k, digits, shapes, or tv: other than flowers102 and oxfordiiitpet).")


def test_loopback_mode_is_on_only_while_joining():
    import ray._private.ray_constants as constants

    from ptm_core.features.ray_cluster import MULTI_NODE_ENV, is_loopback, loopback_only

    assert is_loopback(None) and is_loopback("127.0.0.1:6379") and is_loopback("localhost:1")
    assert not is_loopback("10.0.0.5:6379") and not is_loopback("auto")
    before = (os.environ.get(MULTI_NODE_ENV), constants.ENABLE_RAY_CLUSTER)
    with loopback_only("127.0.0.1:6379"):
        assert os.environ[MULTI_NODE_ENV] == "0" and constants.ENABLE_RAY_CLUSTER is False
    assert (os.environ.get(MULTI_NODE_ENV), constants.ENABLE_RAY_CLUSTER) == before
    with loopback_only("10.0.0.5:6379"):
        assert (os.environ.get(MULTI_NODE_ENV), constants.ENABLE_RAY_CLUSTER) == before


def test_a_local_ray_starts_with_a_home_that_stops_its_cloud_probe(tmp_path, monkeypatch):
    """The processes a local start spawns inherit HOME: ours holds the config whose presence skips Ray's
    request to the cloud metadata address, so a local run sends nothing beyond loopback."""
    from ptm_core.features.ray_cluster import no_cloud_probe

    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    with no_cloud_probe():
        home = Path(os.environ["HOME"])
        assert home != tmp_path / "user" and (home / "ray_bootstrap_config.yaml").read_text() == "{}\n"
    assert os.environ["HOME"] == str(tmp_path / "user")

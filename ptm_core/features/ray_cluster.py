"""Starting or joining Ray for `extract --engine ray`, and checking that every node can see the images.

Loopback. Ray 2.60 takes 127.0.0.1, localhost and ::1 to mean "this machine" and swaps them for the machine's
interface address (`resolve_ip_for_localhost`), in `ray start --head --node-ip-address 127.0.0.1` and in
`ray.init(address="127.0.0.1:PORT")` alike, unless its multi-node mode is off: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
which Ray reads once, at import. A head started with that variable keeps 127.0.0.1, and its GCS and raylet listen
on 127.0.0.1 only; a head started without it advertises the interface address and listens on every interface.
A driver that swapped the address it was given dialled `<interface>:PORT` ("Failed to connect to Ray cluster at
...") where a loopback head does not listen. `loopback_only` turns the mode off around `ray.init` for a loopback
address or a local start (so a local Ray really stays on 127.0.0.1), and back on after.

Nodes. In-memory datasets (mnist5k, digits, shapes, most tv:) travel with the job through the object store; `folder:`
and `zip:` images are read by path on whichever node decodes them. `check_paths_on_nodes` asks each alive node,
with a task pinned to it, whether it sees the first image, so a node without them is one sentence before any work.
"""
from __future__ import annotations

import logging
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import ptm_core
from ptm_core.data import Dataset, LazyItems
from ptm_core.data.imaging import first_line
from ptm_core.base.errors import PTMError

INSTALL_HINT = "pip install -r requirements-scale.txt"
CONNECT_TIMEOUT_S = 5.0
NODE_CHECK_TIMEOUT_S = 120.0  # a node's first task starts a worker process: seconds, more on a busy node
AUTH_MODE_ENV = "RAY_AUTH_MODE"  # "token" or "disabled"; unset: ray start --head uses a token when it finds one
MULTI_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray keeps loopback addresses as given
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})  # what Ray's `is_localhost` swaps
# tv:flowers102 and tv:oxfordiiitpet hold file paths too (torchvision opens each image by path), unchecked here.
TRAVELLING_DATASETS = "mnist5k, digits, shapes, or tv: other than flowers102 and oxfordiiitpet"


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (fails without the [data] extra: pyarrow, pandas)
    except ImportError:
        raise PTMError(f"--engine ray needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


def host_port(address: str) -> tuple[str, int] | None:
    """host and port of 'host:port' or 'ray://host:port'; None for 'auto' and other forms Ray resolves."""
    bare = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = bare.rpartition(":")
    if not sep:
        return None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise PTMError(f"--address {address}: expected host:port (e.g. 10.0.0.5:6379) or ray://host:10001.")
    return host.strip("[]") or "127.0.0.1", int(port)


def check_reachable(address: str) -> None:
    """Fail in seconds with a plain sentence; ray.init would retry an unreachable head for a minute."""
    target = host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise PTMError(f"Cannot reach a Ray cluster at {address} ({exc.strerror or exc}); start the head with "
                       f"`ray start --head` and pass its address, or leave --address out to run locally.") from None


def is_loopback(address: str | None) -> bool:
    """A local start (no address) or a head on this machine's loopback."""
    if not address:
        return True
    target = host_port(address)
    return target is not None and target[0].lower() in LOOPBACK_HOSTS


@contextmanager
def loopback_only(address: str | None) -> Iterator[None]:
    """Ray's multi-node mode off while joining a loopback head or starting a local Ray; as it was after."""
    if not is_loopback(address):
        yield
        return
    # No public setting: Ray 2.60 reads the variable once, at import, into this constant, which its address
    # resolution looks up at each call. The variable also reaches the processes a local ray.init starts.
    import ray._private.ray_constants as constants

    saved_env, saved_flag = os.environ.get(MULTI_NODE_ENV), getattr(constants, "ENABLE_RAY_CLUSTER", True)
    os.environ[MULTI_NODE_ENV] = "0"
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(MULTI_NODE_ENV, None)
        else:
            os.environ[MULTI_NODE_ENV] = saved_env


def _head_wants_token(address: str) -> bool:
    """Whether the head refuses a driver without a token: one GCS handshake, milliseconds either way."""
    try:
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except ImportError:  # a Ray without token auth
        return False
    try:
        GcsClient(address=address.split("://", 1)[-1].rstrip("/"))
    except AuthenticationError:
        return True
    except Exception:  # noqa: BLE001  (anything else is ray.init's to report, in its words)
        return False
    return False


def match_head_auth(address: str) -> None:
    """Token auth for this driver when, and only when, the head uses it (RAY_AUTH_MODE unset).

    Ray 2.60's `ray start --head` turns token auth on whenever it finds a token (any local `ray.init()` writes
    ~/.ray/auth_token), but a driver given an explicit address never does, and is refused ("Failed to connect to
    Ray cluster at ..."). Token auth the head does not use breaks too: its raylet's calls to the driver are refused.
    """
    if os.environ.get(AUTH_MODE_ENV) or address.startswith("ray://") or not _head_wants_token(address):
        return  # an explicit choice is the user's; Ray Client has its own
    from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available

    ray_logger = logging.getLogger("ray")
    level = ray_logger.level
    ray_logger.setLevel(logging.ERROR)  # its "token authentication is enabled" notice is not the CLI's line
    try:
        found = maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        ray_logger.setLevel(level)
    if not found or _head_wants_token(address):
        held = "has another token than the head's" if found else "has no token"
        raise PTMError(f"The Ray cluster at {address} uses token authentication and this machine {held}: run "
                       f"`ray get-auth-token` on the head and put its output in ~/.ray/auth_token here (or set "
                       f"RAY_AUTH_TOKEN_PATH to a file holding it).")


def _log_level() -> int:
    return logging.INFO if os.environ.get("PTM_DEBUG") else logging.ERROR


def quiet(ray) -> None:
    """Keep the CLI's stderr to our own lines: Ray's notices go to its session logs (PTM_DEBUG=1 shows them)."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # progress goes through our callback; stdout stays the CLI's
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(_log_level())


@contextmanager
def no_cloud_probe() -> Iterator[None]:
    """HOME pointed, while a local Ray starts, at a folder of ours holding an empty `ray_bootstrap_config.yaml`.

    A starting Ray head asks the cloud metadata address (169.254.169.254) which cloud it runs on, usage statistics
    on or off, unless that file exists in HOME (Ray 2.60's usage_stats_head); an empty one, `{}`, reads as no
    cluster config.
    A local run then sends nothing beyond loopback, and its token (~/.ray/auth_token) stays out of the user's HOME.
    """
    from ptm_core.runs.artifacts import artifact_dir

    home = artifact_dir("ray-home")
    (home / "ray_bootstrap_config.yaml").write_text("{}\n")
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved


def start_ray(address: str | None = None) -> None:
    """Join the cluster at `address`, or start a local instance: all cores, no dashboard, loopback only."""
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Workers import ptm_core from this copy, shipped with the job: nodes need only timm, torch and Ray.
    runtime_env = {"py_modules": [str(Path(ptm_core.__file__).parent)]}
    common = dict(runtime_env=runtime_env, logging_level=_log_level(), log_to_driver=False)
    try:
        with loopback_only(address):
            if address:
                check_reachable(address)
                match_head_auth(address)
                # No _node_ip_address: the driver takes the address of this machine's raylet from the head,
                # whichever address that head advertises.
                ray.init(address=address, **common)
            else:
                with no_cloud_probe():
                    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                             _node_ip_address="127.0.0.1", **common)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise PTMError(f"Could not start or join {where}: {first_line(exc)}") from None
    quiet(ray)


@contextmanager
def ray_session(address: str | None) -> Iterator[object]:
    """Ray for one run; one this process already joined is used and left running (tests, notebooks)."""
    ray = import_ray()
    if ray.is_initialized():
        quiet(ray)
        yield ray
        return
    start_ray(address)
    try:
        yield ray
    finally:
        ray.shutdown()


def first_path(dataset: Dataset) -> Path | None:
    """The first image's path for datasets read by path (folder:, zip:); None for in-memory ones."""
    items = dataset.items
    if isinstance(items, LazyItems) or not len(items):  # tv: sources are in memory, and fetching one decodes it
        return None
    return items[0] if isinstance(items[0], Path) else None


def nodes_without(ray, path: str) -> list[str]:
    """Addresses of the alive nodes where `path` is not a file, each asked by a task pinned to that node."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    is_file = ray.remote(num_cpus=0, max_retries=0)(os.path.isfile)  # a stdlib function: nothing to ship
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    refs = [is_file.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
            .remote(path) for node in nodes]
    try:
        seen = ray.get(refs, timeout=NODE_CHECK_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        raise PTMError(f"Could not check within {NODE_CHECK_TIMEOUT_S:.0f} s that every Ray node sees {path}: "
                       f"a node did not run a task; check `ray status`.") from None
    except ray.exceptions.RayError as exc:
        raise PTMError(f"Could not check that every Ray node sees {path}: {first_line(exc)}") from None
    return [node["NodeManagerAddress"] for node, ok in zip(nodes, seen) if not ok]


def check_paths_on_nodes(ray, dataset: Dataset) -> None:
    """One sentence, before any work, when a node cannot see the images of a dataset read by path."""
    path = first_path(dataset)
    if path is None:
        return
    missing = nodes_without(ray, str(path))
    if missing:
        more = f" (and {len(missing) - 1} other node(s))" if len(missing) > 1 else ""
        raise PTMError(f"folder: and zip: datasets are read by path on every Ray node; node {missing[0]}{more} "
                       f"cannot see {path}: put the images on a shared filesystem at the same path on every node, "
                       f"or use a dataset that travels with the job ({TRAVELLING_DATASETS}).")

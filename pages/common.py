"""UI pieces shared by pages: the process-wide job manager, cached look-ups, the job panel."""
from __future__ import annotations

import streamlit as st

from ptm_core import backbones
from ptm_core import data as datasets
from ptm_core.configs import DatasetConfig
from ptm_core.errors import PTMError
from ptm_core.jobs import DONE, FINISHED, QUEUED, RUNNING, Job, JobManager
from ptm_core.projection import compile_umap
from ptm_core.store import RunStore


def mark_routed() -> None:
    st.session_state["_routed"] = True


def ensure_router() -> None:
    """Send a page that Streamlit ran on its own back through app.py's router.

    A `pages/` folder next to app.py makes Streamlit run pages/<name>.py directly, without the
    router, for the first request of a fresh server whose URL names a page; st.navigation turns
    that off for the process, but only once app.py has run.
    """
    if st.session_state.get("_routed"):
        return
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
    st.rerun()


@st.cache_resource
def job_manager() -> JobManager:
    # One per server process: jobs outlive script reruns, page switches and browser refreshes,
    # and the run store keeps them across server restarts.
    return JobManager(max_concurrent=1, store=RunStore())


@st.cache_resource
def start_background_services() -> bool:
    # Streamlit runs a full gc.collect(2) after every script run; with torch, timm and numba loaded
    # that holds the GIL for most of each second while a progress fragment reruns every second,
    # starving the job threads (a 4 s probe took minutes). Collect as Python normally does instead.
    from streamlit import config

    config.set_option("runner.postScriptGC", False)
    # The UMAP compile goes first in the map lane: maps wait for it (one UMAP at a time), probes do not.
    job_manager().submit("warm-up-umap", "Preparing UMAP (a one-off compile after the server starts)",
                         lambda ctx: compile_umap(), kind="warm-up", record=False, lane="map")
    return True


@st.cache_data(show_spinner=False)
def backbone_names(filter_glob: str = "") -> list[str]:
    return backbones.catalog(filter_glob)


@st.cache_data(show_spinner="Reading the model card…")
def model_card(name: str) -> dict:
    return backbones.model_card(name).to_dict()


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def load_dataset(config: DatasetConfig) -> datasets.Dataset:
    return datasets.load_dataset(config)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"


def job_panel(job: Job) -> None:
    """Progress, estimate, cancel and the one-line failure reason for a job."""
    if job.status in (QUEUED, RUNNING):
        label = job.message if job.status == RUNNING else "queued: waiting for the running job to finish"
        st.progress(job.progress, text=f"{label} — {job.progress:.0%}, about {format_seconds(job.eta_seconds)} left")
        if st.button("Cancel", key=f"cancel-{job.id}", icon=":material/stop_circle:"):
            job.cancel()
            st.toast("Cancelling…")
    elif job.status == "failed":
        st.error(job.error or "The job failed.", icon=":material/error:")
    elif job.status in ("cancelled", "interrupted"):
        st.warning(f"{job.title}: {job.status}. Start it again to continue.", icon=":material/info:")


def job_outcome(job: Job, show_result) -> None:
    """A started job as the page shows it: its result once done, else its failure or live progress."""
    if job.status == DONE:
        st.success(f"{job.title} — done in {format_seconds(job.elapsed)}.", icon=":material/check_circle:")
        show_result(job.result)
    elif job.status in FINISHED:
        job_panel(job)
    else:
        st.markdown(f"**{job.title}**")
        live_job(job.id)


def restore_choices(page: str, defaults: dict, choices: dict[str, list] | None = None) -> None:
    """Give widgets their values before they are drawn: this session's last choices, else the URL.

    Streamlit drops a widget's state when its page is left; a plain dict keeps it across page
    switches, and the URL keeps it across a browser refresh (and makes a shareable link).
    """
    saved = st.session_state.setdefault(f"{page}_choices", {})
    for key, default in defaults.items():
        if key in st.session_state:
            continue
        value = saved.get(key, default)
        if key not in saved and key in st.query_params:
            try:
                text = st.query_params[key]
                # bool("False") is True: read booleans by name.
                value = text == "True" if isinstance(default, bool) else type(default)(text)
            except ValueError:
                value = default
        if choices and key in choices and value not in choices[key]:
            value = default
        st.session_state[key] = value


def remember_choices(page: str, keys) -> None:
    saved = st.session_state.setdefault(f"{page}_choices", {})
    for key in keys:
        if key in st.session_state:
            saved[key] = st.session_state[key]
            st.query_params[key] = str(st.session_state[key])


@st.fragment(run_every=1.0)
def live_job(job_id: str, extra=None) -> None:
    """Progress of a queued or running job, polled once a second; the whole page reruns when it ends."""
    job = job_manager().get(job_id)
    if job is None:
        return
    job_panel(job)
    if extra is not None:
        extra(job)
    if job.status in FINISHED:
        st.rerun(scope="app")


def gallery(dataset_config: DatasetConfig, indices, captions, empty: str = "No images.", size: int = 80) -> None:
    """Images of a dataset by index, each with its caption, in a wrapping grid."""
    if len(indices) == 0:
        st.caption(empty)
        return
    dataset = load_dataset(dataset_config)
    st.image([dataset.image(int(i)).resize((size, size)) for i in indices], caption=list(captions))


def dataset_or_error(config: DatasetConfig) -> datasets.Dataset | None:
    try:
        return load_dataset(config)
    except PTMError as exc:
        st.error(str(exc), icon=":material/error:")
        return None


__all__ = ["ensure_router", "mark_routed", "live_job", "job_manager", "job_panel", "format_seconds", "backbone_names", "model_card",
           "dataset_or_error", "gallery", "job_outcome", "start_background_services", "restore_choices", "remember_choices"]

"""Process-wide services the pages share: the job manager, background work, cached look-ups."""
from __future__ import annotations

import streamlit as st

from ptm_core.models import catalog as backbones

from ptm_core import data

from ptm_core.flows import explore
from ptm_core.base.configs import DatasetConfig
from ptm_core.base.errors import PTMError
from ptm_core.data.ingest import clean_stale_extractions, upload_limit_bytes
from ptm_core.runs.jobs import JobManager
from ptm_core.maps.projection import compile_umap
from ptm_core.runs.store import RunStore
from pages.ui.choices import default_source
from pages.ui.text import md


@st.cache_resource
def job_manager() -> JobManager:
    # One per server process: jobs outlive script reruns, page switches and browser refreshes,
    # and the run store keeps them across server restarts.
    return JobManager(max_concurrent=1, store=RunStore())


@st.cache_resource
def start_background_services() -> bool:
    try:  # half-written zip extractions of a killed server (hundreds of MB) go first
        clean_stale_extractions()
    except OSError:
        pass
    # The map lane starts with two warm-ups, one after the other: the default run's first steps (MNIST-5k read,
    # the default backbone converted for OpenVINO in a child process once per data directory, then compiled
    # here, and the fastest runtime and precision measured at the default image size, once per machine; an
    # extraction started meanwhile switches over when it is done), then UMAP's compile, needed only
    # once features exist. Side by side they left a user's first extraction less of the two cores (the default
    # first run's map 85 vs 68 s after the click, benchmarks/first_run.py). Maps wait for them (one UMAP at a
    # time), probes do not. UMAP's compile also waits while the compute lane works, unless a map is queued:
    # it holds the GIL for most of its ~14 s, and beside an extraction it took 41 s and slowed the extraction
    # from ~110 to ~38 img/s (one after the other is sooner for both).
    manager = job_manager()
    manager.submit("warm-up-default", "Preparing the default run (MNIST-5k, OpenVINO; once)",
                   lambda ctx: explore.warm_up(default_source()), kind="warm-up", record=False, lane="map")
    manager.submit("warm-up-umap", "Preparing UMAP (a one-off compile after the server starts)",
                   lambda ctx: (manager.yield_to("compute", "map"), compile_umap()), kind="warm-up", record=False,
                   lane="map")
    return True


@st.cache_data(show_spinner=False)
def backbone_names(filter_glob: str = "") -> list[str]:
    return backbones.catalog(filter_glob)


@st.cache_data(show_spinner="Reading the model card…")
def model_card(name: str) -> dict:
    return backbones.model_card(name).to_dict()


@st.cache_data(show_spinner=False)
def dataset_kinds() -> list[str]:
    return [entry.name for entry in data.list_datasets()]


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def load_dataset(config: DatasetConfig) -> data.Dataset:
    return data.load_dataset(config)


def dataset_or_error(config: DatasetConfig) -> data.Dataset | None:
    try:
        return load_dataset(config)
    except PTMError as exc:
        st.error(md(exc.for_ui()), icon=":material/error:")
        return None


def upload_limit_mb() -> int | None:
    """One upload limit: the engine's (PTM_UPLOAD_MAX_BYTES), never above the server's (server.maxUploadSize).

    None, after one line saying why, when PTM_UPLOAD_MAX_BYTES is not a positive integer: no upload then.
    """
    from streamlit import config

    try:
        engine = upload_limit_bytes() // 1024**2
    except PTMError as exc:
        st.error(md(exc.for_ui()), icon=":material/error:")
        return None
    return max(1, min(engine, int(config.get_option("server.maxUploadSize"))))

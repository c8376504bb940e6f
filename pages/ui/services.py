"""Process-wide services the pages share: the job manager, background work, cached look-ups."""
from __future__ import annotations

import streamlit as st

from pages.ui.i18n import _
from pages.ui.choices import default_source
from pages.ui.text import md
from ptm_core.base import DatasetConfig, PTMError
from ptm_core.flows import (Dataset, JobManager, bundled_zoo, catalog, list_datasets, new_job_manager,
                            start_background_work, upload_limit_bytes)
from ptm_core.flows import load_dataset as read_dataset, model_card as read_model_card


@st.cache_resource
def job_manager() -> JobManager:
    return new_job_manager()  # one per server process: see new_job_manager


@st.cache_resource
def start_background_services() -> bool:
    start_background_work(job_manager(), default_source())  # once per server process: see warm_up_specs
    return True


@st.cache_data(show_spinner=False)
def backbone_names(filter_glob: str = "") -> list[str]:
    return catalog(filter_glob)


@st.cache_data(show_spinner=False)
def bundled_backbones() -> list[dict]:
    return bundled_zoo()


@st.cache_data(show_spinner=False)
def cached_model_card(name: str) -> dict:
    return read_model_card(name).to_dict()


def model_card(name: str) -> dict:
    # Spinner texts in the reader's language: a cache decorator's text is fixed when the module loads.
    with st.spinner(_("Reading the model card…")):
        return cached_model_card(name)


@st.cache_data(show_spinner=False)
def dataset_kinds() -> list[str]:
    return [entry.name for entry in list_datasets()]


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_dataset(config: DatasetConfig) -> Dataset:
    return read_dataset(config)


def load_dataset(config: DatasetConfig) -> Dataset:
    with st.spinner(_("Loading the dataset…")):
        return cached_dataset(config)


def dataset_or_error(config: DatasetConfig) -> Dataset | None:
    try:
        return load_dataset(config)
    except PTMError as exc:
        st.error(md(exc.for_ui()), icon=":material/error:")
        return None


def upload_limit_mb() -> int | None:
    """One upload limit: the engine's (PTM_UPLOAD_MAX_BYTES), never above the server's (server.maxUploadSize).

    None, after one line saying why, when PTM_UPLOAD_MAX_BYTES is not a positive integer: no upload then.
    """
    try:
        engine = upload_limit_bytes() // 1024**2
    except PTMError as exc:
        st.error(md(exc.for_ui()), icon=":material/error:")
        return None
    return max(1, min(engine, int(st.get_option("server.maxUploadSize"))))

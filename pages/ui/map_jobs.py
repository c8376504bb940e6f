"""Which map a page draws: PCA at once, the chosen UMAP or t-SNE from the map lane once it is ready."""
from __future__ import annotations

import streamlit as st

from pages.ui.i18n import _
from pages.ui.job_views import format_seconds, job_panel, live_job
from pages.ui.maps import METHODS
from pages.ui.services import job_manager
from pages.ui.text import md
from ptm_core.base import PTMError, ProjectionConfig
from ptm_core.flows import DONE, FINISHED, FeatureSet, Job, MapResult, compute_map, map_plan


@st.cache_data(show_spinner=False, max_entries=16)
def cached_quick_map(_features: FeatureSet, feature_key: str, config: ProjectionConfig) -> MapResult:
    return compute_map(_features, config)


def quick_map(features: FeatureSet, feature_key: str, config: ProjectionConfig) -> MapResult:
    # The spinner's text in the reader's language (a cache decorator's text is fixed when the module loads).
    with st.spinner(_("Drawing a PCA map…")):
        return cached_quick_map(features, feature_key, config)


def map_job(fs: FeatureSet, config: ProjectionConfig, source: str, button_key: str = "draw_map") -> Job | None:
    """The job computing this map: found, started when cheap or cached, or started by the user's click."""
    manager = job_manager()
    plan = map_plan(fs, config, source, manager)
    if plan.job is not None:
        return plan.job
    label = _("Draw the {method} map (about {time})").format(method=METHODS[config.method],
                                                             time=format_seconds(max(plan.estimate_s, 1)))
    clicked = not plan.starts_itself and st.button(label, type="primary", icon=":material/scatter_plot:",
                                                   key=button_key)
    return manager.attach(plan.spec, start=plan.starts_itself or clicked)


def chosen_map(fs: FeatureSet, config: ProjectionConfig, source: str, button_key: str = "draw_map") -> MapResult | None:
    """The chosen map when it is ready; until then a PCA map (about a second) and the job's progress.

    None, with the reason in one line, when these features cannot be mapped at all (e.g. every image of a
    class identical: too few different rows); the rest of the page still shows.
    """
    try:
        return _chosen_map(fs, config, source, button_key)
    except PTMError as exc:
        st.error(md(exc.for_ui()), icon=":material/error:")
        return None


def _chosen_map(fs: FeatureSet, config: ProjectionConfig, source: str, button_key: str) -> MapResult:
    if config.method == "pca":
        return quick_map(fs, fs.key, config)
    job = map_job(fs, config, source, button_key)
    if job is not None and job.status == DONE:
        return job.result
    pca = ProjectionConfig(method="pca", n_components=config.n_components, seed=config.seed)
    preview = quick_map(fs, fs.key, pca)
    if job is None:
        return preview
    # A small map often finishes while the preview is drawn: read the status once, after the preview,
    # and branch on that one reading (a job seen running, then done, would be left showing the preview).
    status = job.status
    if status == DONE:
        return job.result
    st.info(_("Showing a PCA map until the {method} map is ready.").format(method=METHODS[config.method]),
            icon=":material/hourglass_top:")
    if status in FINISHED:
        job_panel(job)
    else:
        live_job(job.id)
    return preview

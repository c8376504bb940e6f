"""Features & probe: pick data and a backbone, extract features, see the map and the probe's accuracy."""
from functools import partial

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages.common import ensure_router, format_seconds, job_manager, job_panel, live_job
from pages.controls import source_controls
from ptm_core.configs import ProbeConfig, ProjectionConfig
from ptm_core.jobs import DONE, FINISHED
from ptm_core.pipeline import ExploreRequest, ExploreResult, run_explore

MAP_METHODS = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}


def current_request() -> ExploreRequest:
    dataset, backbone, extraction = source_controls()
    with st.sidebar:
        st.subheader("Map")
        method = st.radio("Projection", list(MAP_METHODS), format_func=MAP_METHODS.get, horizontal=True, key="map")
    return ExploreRequest(dataset, backbone, extraction, ProbeConfig(seed=dataset.seed),
                          ProjectionConfig(method=method, seed=dataset.seed))


def map_figure(result: ExploreResult):
    fs = result.features
    frame = pd.DataFrame({"x": result.coords[:, 0], "y": result.coords[:, 1],
                          "class": np.asarray(fs.class_names)[fs.labels], "id": fs.ids})
    fig = px.scatter(frame, x="x", y="y", color="class", hover_data={"id": True, "x": False, "y": False},
                     category_orders={"class": fs.class_names}, render_mode="webgl", height=620,
                     labels={"x": "", "y": ""})
    fig.update_traces(marker={"size": 5, "opacity": 0.8})
    fig.update_layout(legend_title_text="Class (click to hide)", margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def faithfulness_panel(f: dict) -> None:
    st.markdown("**How faithful is this map?**")
    cols = st.columns(4)
    cols[0].metric("Trustworthiness", f"{f['trustworthiness']:.2f}",
                   help="1.0: every map neighbour is also a neighbour in the full feature space.")
    if f.get("knn_accuracy_features") is not None:
        cols[1].metric(f"{f['k']}-NN accuracy, features", f"{f['knn_accuracy_features']:.1%}")
        cols[2].metric(f"{f['k']}-NN accuracy, map", f"{f['knn_accuracy_map']:.1%}")
    cols[3].metric("PCA variance in 2-D", f"{f['pca_variance_2d']:.1%}")
    st.caption(f["summary"])


def sweep_figure(result: ExploreResult):
    frame = pd.DataFrame(result.probe.val_curve, columns=["C", "validation accuracy"])
    fig = px.line(frame, x="C", y="validation accuracy", markers=True, log_x=True, height=260)
    fig.add_vline(x=result.probe.best_C, line_dash="dot", annotation_text="chosen C")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def show_result(result: ExploreResult) -> None:
    fs, probe = result.features, result.probe
    cols = st.columns(4)
    cols[0].metric("Linear-probe test accuracy", f"{probe.test_accuracy:.1%}",
                   help=f"Logistic regression on standardised features; C chosen on a validation split "
                        f"carved from train; scored on a stratified 20% test split ({probe.n_test} images).")
    cols[1].metric("Features", f"{fs.features.shape[0]:,} × {fs.features.shape[1]:,}")
    speed = "from cache" if fs.meta.get("cache_hit") else f"{fs.meta.get('images_per_s', 0):.0f} img/s"
    cols[2].metric("Extraction", speed)
    cols[3].metric("Chosen C", f"{probe.best_C:g}", help=f"Probe sweep and refit took {probe.seconds:.1f} s.")
    if fs.meta.get("n_skipped"):
        with st.expander(f"{fs.meta['n_skipped']} files were skipped (not images, corrupt or too large)",
                         icon=":material/warning:"):
            st.dataframe(pd.DataFrame(fs.meta["skipped"], columns=["file", "reason"]), hide_index=True, width="stretch")
    st.plotly_chart(map_figure(result), width="stretch", key="umap_map")
    method = MAP_METHODS.get(result.projection_meta.get("method"), "Map")
    st.caption(f"{method} of {fs.features.shape[0]:,} feature vectors, coloured by true class.")
    faithfulness_panel(result.faithfulness)
    with st.expander("Probe sweep: validation accuracy vs C"):
        st.plotly_chart(sweep_figure(result), width="stretch", key="sweep")


ensure_router()
st.title("Features & probe")
st.caption("How well does a frozen pretrained backbone separate your classes? Extract features, look at the map, "
           "and read what a linear probe gets — then switch to random weights to see what pretraining buys.")

def submit(request: ExploreRequest):
    work = partial(run_explore, request)
    return job_manager().submit(request.key(), request.title(), work, kind="explore", config=request.to_dict())


request = current_request()
manager = job_manager()
job = manager.find(request.key())
if job is None and manager.store is not None and manager.store.latest(request.key(), DONE):
    job = submit(request)  # finished before a server restart: every step now reads back from disk
if st.button("Extract & analyse", type="primary", icon=":material/play_arrow:", key="run"):
    if job is None or job.status not in ("queued", "running", DONE):
        job = submit(request)
    st.session_state["explore_job"] = job.id

if job is None:
    # Settings changed since: keep showing this session's last run, or whatever explore job is running.
    job = manager.get(st.session_state.get("explore_job")) or next(
        (j for j in manager.jobs() if j.kind == "explore" and j.status in ("queued", "running")), None)
    if job is not None:
        st.info(f"Showing **{job.title}**; the settings now describe another run — press the button to start it.")

if job is None:
    st.info(f"Ready: **{request.title()}**. Press **Extract & analyse**.", icon=":material/arrow_upward:")
elif job.status == DONE:
    st.success(f"{job.title} — done in {format_seconds(job.elapsed)}.", icon=":material/check_circle:")
    show_result(job.result)
elif job.status in FINISHED:
    job_panel(job)
else:
    st.markdown(f"**{job.title}**")
    live_job(job.id)

"""Features & probe: pick data and a backbone, extract features, explore the map, read the probe's accuracy."""
from functools import partial

import pandas as pd
import plotly.express as px
import streamlit as st

from pages import map_jobs
from pages import map_views as views
from pages.common import ensure_router, job_manager, job_outcome
from pages.controls import source_controls
from ptm_core.configs import ProbeConfig, ProjectionConfig
from ptm_core.jobs import DONE, Job
from ptm_core.pipeline import ExploreRequest, ExploreResult, map_key, run_explore


def current_request() -> ExploreRequest:
    dataset, backbone, extraction = source_controls()
    return ExploreRequest(dataset, backbone, extraction, ProbeConfig(seed=dataset.seed))


def submit(request: ExploreRequest) -> Job:
    work = partial(run_explore, request)
    return job_manager().submit(request.key(), request.title(), work, kind="explore", config=request.to_dict())


def map_section(result: ExploreResult, config: ProjectionConfig) -> None:
    fs, probe = result.features, result.probe
    shown = map_jobs.chosen_map(fs, config, result.request.title())
    colour = st.segmented_control("Colour by", list(views.COLOUR_BY), format_func=views.COLOUR_BY.get,
                                  default="class", key="colour_by") or "class"
    map_id = map_key(fs.key, ProjectionConfig(**shown.meta["config"]))
    rows = views.current_selection(map_id)
    frame = views.point_frame(fs, probe, shown.coords, selected=rows)
    # No highlight rings here: they would change the figure, remount the chart, and drop plotly's own
    # display of the selection that was just made.
    fig = views.map_figure(frame, colour, fs.class_names)
    views.show_map(fig, three_d=shown.coords.shape[1] == 3, map_id=map_id, chart_key=f"chart-{map_id}")
    st.caption(views.map_caption(shown) + " Probe colours use in-sample predictions on the train split "
                                          "(hover shows the split).")
    views.faithfulness_panel(shown.faithfulness, shown.coords.shape[1])
    views.clear_selection_button(map_id)
    views.selection_panel(result.request.dataset, fs, frame, rows)
    views.export_buttons(frame, fig, f"map-{fs.key}")


def sweep_figure(result: ExploreResult):
    frame = pd.DataFrame(result.probe.val_curve, columns=["C", "validation accuracy"])
    fig = px.line(frame, x="C", y="validation accuracy", markers=True, log_x=True, height=260)
    fig.add_vline(x=result.probe.best_C, line_dash="dot", annotation_text="chosen C")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def show_result(result: ExploreResult, config: ProjectionConfig) -> None:
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
    map_section(result, config)
    with st.expander("Probe sweep: validation accuracy vs C"):
        st.plotly_chart(sweep_figure(result), width="stretch", key="sweep")


ensure_router()
st.title("Features & probe")
st.caption("How well does a frozen pretrained backbone separate your classes? Extract features, look at the map, "
           "and read what a linear probe gets — then switch to random weights to see what pretraining buys.")

request = current_request()
projection = views.map_controls(request.dataset.seed)
manager = job_manager()
job = manager.find(request.key())
if job is None and manager.store is not None and manager.store.latest(request.key(), DONE):
    job = submit(request)  # finished before a server restart: every step now reads back from disk
if job is not None and job.status == DONE:
    st.sidebar.caption(views.estimate_text(*job.result.features.features.shape, projection))
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
else:
    job_outcome(job, lambda result: show_result(result, projection))

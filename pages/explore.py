"""Features & probe: pick data and a backbone, extract features, see the map and the probe's accuracy."""
from functools import partial

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages.common import (backbone_names, format_seconds, job_manager, job_panel, model_card, remember_choices,
                          restore_choices)
from ptm_core.backbones import DEFAULT_BACKBONE
from ptm_core.configs import BackboneConfig, DatasetConfig, ExtractionConfig, ProbeConfig, ProjectionConfig
from ptm_core.datasets import list_datasets
from ptm_core.errors import PTMError
from ptm_core.ingest import ingest_upload
from ptm_core.tv_datasets import SOURCES as TV_SOURCES
from ptm_core.jobs import DONE, FINISHED
from ptm_core.pipeline import ExploreRequest, ExploreResult, run_explore

IMAGE_SIZES = [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 384]
WEIGHT_CHOICES = {"bundled": "Bundled (offline ImageNet)", "hub": "Hugging Face hub", "random": "Random init",
                  "file": "Local file"}


def zip_controls() -> str:
    upload = st.file_uploader("Upload a zip (one folder per class, or images + labels.csv)", type=["zip"],
                              key="zip_upload")
    if upload is not None:
        try:
            st.session_state["zip_path"] = ingest_upload(upload.getvalue(), upload.name).removeprefix("zip:")
        except PTMError as exc:
            st.error(str(exc), icon=":material/error:")
    return st.text_input("Zip path", key="zip_path", placeholder="/path/to/data.zip")


def dataset_controls() -> DatasetConfig:
    st.subheader("Data")
    entries = {e.name: e for e in list_datasets()}
    name = st.selectbox("Dataset", list(entries), key="dataset",
                        help="\n".join(f"- **{e.name}**: {e.description}" for e in entries.values()))
    arg = ""
    if name == "folder":
        arg = st.text_input("Folder path", key="folder_path", placeholder="/path/to/root (one sub-folder per class)")
    elif name == "zip":
        arg = zip_controls()
    elif name == "tv":
        cols = st.columns(2)
        tv_name = cols[0].selectbox("torchvision set", list(TV_SOURCES), key="tv_name")
        split = cols[1].selectbox("Split", TV_SOURCES[tv_name].splits, key="tv_split")
        arg = f"{tv_name}:{split}"
    elif name == "shapes":
        cols = st.columns(2)
        n = cols[0].number_input("Images", 20, 20000, step=100, key="shapes_n")
        classes = cols[1].number_input("Classes", 2, 8, key="shapes_classes")
        arg = f"n={n},classes={classes}"
    limit = st.number_input("Limit (0 = all images)", 0, 1_000_000, step=100, key="limit",
                            help="A seeded, stratified subset: quicker on a CPU.")
    seed = st.number_input("Seed", 0, 2**31 - 1, key="seed", help="Subset, split and projection seed.")
    spec = f"{name}:{arg}" if arg else name
    return DatasetConfig(spec, int(limit) or None, int(seed))


def backbone_controls(seed: int) -> tuple[BackboneConfig, ExtractionConfig]:
    st.subheader("Backbone")
    pattern = st.text_input("Filter models", key="model_filter", placeholder="e.g. *resnet* or vit_small")
    names = backbone_names(pattern)
    options = ([DEFAULT_BACKBONE] if not pattern else []) + names
    if not names:
        st.warning(f"No pretrained timm model matches '{pattern}'.")
    if st.session_state["backbone"] not in options:  # keep the current choice selectable under any filter
        options.insert(0, st.session_state["backbone"])
    name = st.selectbox(f"Model ({len(names)} with pretrained weights)", options, key="backbone")
    weights = st.radio("Weights", list(WEIGHT_CHOICES), format_func=WEIGHT_CHOICES.get, key="weights")
    if weights == "file":
        weights = st.text_input("Checkpoint path", key="weights_path", placeholder=".safetensors / .pth / .pt / .bin")
    size = st.select_slider("Image size (px)", IMAGE_SIZES, key="image_size",
                            help="Smaller is much faster on a CPU; 224 is the usual ImageNet size.")
    with st.expander("Model card"):
        try:
            card = model_card(name)
            st.dataframe(pd.Series({k: str(v) for k, v in card.items()}, name="value"), width="stretch")
        except PTMError as exc:
            st.error(str(exc))
    return BackboneConfig(name, weights or "file", seed), ExtractionConfig(image_size=int(size))


DEFAULTS = {"dataset": "mnist5k", "folder_path": "", "zip_path": "", "tv_name": "cifar10", "tv_split": "train", "shapes_n": 600, "shapes_classes": 6, "limit": 0, "seed": 0,
            "model_filter": "", "backbone": DEFAULT_BACKBONE, "weights": "bundled", "weights_path": "",
            "image_size": 128}


def current_request() -> ExploreRequest:
    restore_choices("explore", DEFAULTS, {"dataset": [e.name for e in list_datasets()], "image_size": IMAGE_SIZES,
                                          "weights": list(WEIGHT_CHOICES),
                                          "backbone": [DEFAULT_BACKBONE, *backbone_names("")]})
    with st.sidebar:
        dataset = dataset_controls()
        backbone, extraction = backbone_controls(dataset.seed)
    remember_choices("explore", DEFAULTS)
    return ExploreRequest(dataset, backbone, extraction, ProbeConfig(seed=dataset.seed),
                          ProjectionConfig(seed=dataset.seed))


def map_figure(result: ExploreResult):
    fs = result.features
    frame = pd.DataFrame({"x": result.coords[:, 0], "y": result.coords[:, 1],
                          "class": np.asarray(fs.class_names)[fs.labels], "id": fs.ids})
    fig = px.scatter(frame, x="x", y="y", color="class", hover_data={"id": True, "x": False, "y": False},
                     category_orders={"class": fs.class_names}, render_mode="webgl", height=620,
                     labels={"x": "UMAP 1", "y": "UMAP 2"})
    fig.update_traces(marker={"size": 5, "opacity": 0.8})
    fig.update_layout(legend_title_text="Class (click to hide)", margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


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
    st.caption(f"UMAP of {fs.features.shape[0]:,} feature vectors, coloured by true class. "
               f"Nearby points have similar features; a map can separate classes the features do not, and the other way round.")
    with st.expander("Probe sweep: validation accuracy vs C"):
        st.plotly_chart(sweep_figure(result), width="stretch", key="sweep")


@st.fragment(run_every=1.0)
def live_job(job_id: str) -> None:
    job = job_manager().get(job_id)
    if job is None:
        return
    job_panel(job)
    if job.status in FINISHED:
        st.rerun(scope="app")


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

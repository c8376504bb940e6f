"""Compare two backbones: two maps of the same images, linked selection, where their neighbourhoods disagree."""
import dataclasses
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from pages import map_jobs
from pages import map_views as views
from pages.common import (backbone_names, ensure_router, gallery, job_manager, job_outcome, remember_choices,
                          restore_choices)
from pages.controls import IMAGE_SIZES, WEIGHT_CHOICES, source_controls
from ptm_core.backbones import DEFAULT_BACKBONE
from ptm_core.compare import CompareRequest, CompareResult, run_compare
from ptm_core.configs import BackboneConfig, ExtractionConfig, ProjectionConfig, stable_hash
from ptm_core.jobs import DONE

B_DEFAULTS = {"backbone_b": DEFAULT_BACKBONE, "weights_b": "random", "image_size_b": 128, "compare_k": 10}
COLOURS = {"class": "True class", "agreement": "Neighbour agreement"}


def side_b_controls(seed: int) -> tuple[BackboneConfig, ExtractionConfig, int]:
    restore_choices("compare", B_DEFAULTS, {"weights_b": ["bundled", "hub", "random"], "image_size_b": IMAGE_SIZES})
    with st.sidebar:
        st.subheader("Compare with (B)")
        names = [DEFAULT_BACKBONE, *backbone_names("")]
        if st.session_state["backbone_b"] not in names:
            names.insert(0, st.session_state["backbone_b"])
        name = st.selectbox("Model B", names, key="backbone_b")
        weights = st.radio("Weights B", ["bundled", "hub", "random"], format_func=WEIGHT_CHOICES.get, key="weights_b")
        size = st.select_slider("Image size B (px)", IMAGE_SIZES, key="image_size_b")
        k = st.slider("Neighbours compared (k)", 5, 50, key="compare_k")
    remember_choices("compare", B_DEFAULTS)
    return BackboneConfig(name, weights, seed), ExtractionConfig(image_size=int(size)), int(k)


def current_request() -> CompareRequest:
    dataset, backbone, extraction = source_controls()
    backbone_b, extraction_b, k = side_b_controls(dataset.seed)
    return CompareRequest(dataset, backbone, extraction, backbone_b, extraction_b, k)


def maps_side_by_side(result: CompareResult, config: ProjectionConfig, colour: str) -> str:
    """Both maps, each selection highlighting the same images in the other; returns the shared selection id."""
    comparison = result.comparison
    selection_id = stable_hash(["compare-selection", result.request.key(), config.key()])
    rows = views.current_selection(selection_id)
    for side, fs, title, column in zip("AB", (result.a, result.b), result.request.titles(), st.columns(2)):
        with column:
            st.markdown(f"**{side}:** {title}")
            shown = map_jobs.chosen_map(fs, config, title, button_key=f"draw_map_{side}")
            frame = views.point_frame(fs, None, shown.coords)
            frame["agreement"] = comparison.agreement
            fig = views.map_figure(frame, colour, fs.class_names, highlight=rows, height=480)
            fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title_text": ""})
            if colour == "agreement":
                fig.update_coloraxes(colorscale="RdYlBu", cmin=0, cmax=1, colorbar={"title": {"text": "agreement"},
                                                                                    "thickness": 12})
            views.show_map(fig, three_d=shown.coords.shape[1] == 3, map_id=selection_id, chart_key=f"chart-{side}-{selection_id}")
            st.caption(views.map_caption(shown))
    return selection_id


def disagreement_table(result: CompareResult, rows: np.ndarray, n: int = 24) -> None:
    c, labels = result.comparison, result.a.labels
    names = np.asarray(result.a.class_names)
    picked = rows if len(rows) else c.most_disagreeing(n)
    what = f"the {len(rows)} selected images" if len(rows) else f"the {n} images whose neighbourhoods differ most"
    st.markdown(f"**{what.capitalize()}**: neighbour agreement is the overlap (Jaccard) of an image's "
                f"{c.k} nearest neighbours in A and in B; *same class* is the share of those neighbours of its class.")
    table = pd.DataFrame({"image": picked, "id": np.asarray(result.a.ids)[picked], "class": names[labels[picked]],
                          "agreement": c.agreement[picked], "same class in A": c.same_class_a[picked],
                          "same class in B": c.same_class_b[picked]})
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        col: st.column_config.ProgressColumn(col, min_value=0.0, max_value=1.0, format="%.2f")
        for col in ("agreement", "same class in A", "same class in B")})
    shown = picked[:views.GALLERY_MAX]
    gallery(result.request.dataset, shown, [f"#{i} · {names[labels[i]]} · {c.agreement[i]:.2f}" for i in shown])


def show_comparison(result: CompareResult, config: ProjectionConfig) -> None:
    c = result.comparison
    cols = st.columns(3)
    cols[0].metric("Mean neighbour agreement", f"{c.agreement.mean():.2f}",
                   help="1: every image has the same k nearest neighbours in both feature spaces; 0: none shared.")
    cols[1].metric("Same-class neighbours, A", f"{c.same_class_a.mean():.1%}")
    cols[2].metric("Same-class neighbours, B", f"{c.same_class_b.mean():.1%}")
    colour = st.segmented_control("Colour by", list(COLOURS), format_func=COLOURS.get, default="agreement",
                                  key="compare_colour") or "agreement"
    selection_id = maps_side_by_side(result, config, colour)
    views.clear_selection_button(selection_id)
    disagreement_table(result, views.current_selection(selection_id))


ensure_router()
st.title("Compare two backbones")
st.caption("The same images through two feature extractors (two models, pretrained vs random weights, two sizes): "
           "two maps side by side, a selection in one lights up the same images in the other, and the images "
           "whose nearest neighbours differ most between the two.")

request = current_request()
projection = views.map_controls(request.dataset.seed)
manager = job_manager()
job = manager.find(request.key())
if st.button("Compare", type="primary", icon=":material/compare:", key="run_compare"):
    if job is None or job.status not in ("queued", "running", DONE):
        job = manager.submit(request.key(), request.title(), partial(run_compare, request), kind="compare",
                             config=dataclasses.asdict(request))
if job is None:
    st.info(f"Ready: **{request.title()}**. Press **Compare**.", icon=":material/arrow_upward:")
else:
    job_outcome(job, lambda result: show_comparison(result, projection))

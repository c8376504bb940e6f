"""Compare two backbones: two maps of the same images, linked selection, where their neighbourhoods disagree."""
import numpy as np
import streamlit as st

from pages.ui import map_jobs, settings
from pages.ui import maps as views
from pages.ui.choices import IMAGE_SIZES, CompareChoice
from pages.ui.gallery import gallery
from pages.ui.i18n import N_, _
from pages.ui.intervals import accuracy_metric, test_sentence
from pages.ui.job_views import job_outcome
from pages.ui.services import backbone_names, job_manager
from pages.ui.similarity_views import cka_metric
from pages.ui.sidebar import WEIGHT_LABELS, source_controls, source_header
from pages.ui.text import md
from ptm_core.base import ProjectionConfig, describe_map, stable_hash
from ptm_core.flows import (CompareRequest, CompareResult, compare_spec, disagreement_frame, point_frame,
                            stratified_sample)

COLOURS = {"class": N_("True class"), "agreement": N_("Neighbour agreement")}


def side_b_controls() -> None:
    with st.sidebar:
        st.subheader(_("Compare with (B)"))
        names = list(backbone_names(""))  # the bundled zoo first
        if settings.get(CompareChoice).backbone_b not in names:
            names.insert(0, settings.get(CompareChoice).backbone_b)
        settings.bound(st.selectbox, _("Model B"), CompareChoice, "backbone_b", options=names)
        settings.bound(st.radio, _("Weights B"), CompareChoice, "weights_b", options=["bundled", "hub", "random"],
                       format_func=lambda w: _(WEIGHT_LABELS[w]))
        settings.bound(st.select_slider, _("Image size B (px)"), CompareChoice, "image_size_b", options=list(IMAGE_SIZES))
        settings.bound(st.slider, _("Neighbours compared (k)"), CompareChoice, "compare_k", min_value=5, max_value=50)


def maps_side_by_side(result: CompareResult, config: ProjectionConfig, colour: str) -> str:
    """Both maps, each selection highlighting the same images in the other; returns the shared selection id."""
    comparison = result.comparison
    selection_id = stable_hash(["compare-selection", result.request.key(), config.key()])
    rows = views.current_selection(selection_id)
    for side, fs, title, column in zip("AB", (result.a, result.b), result.request.titles(), st.columns(2)):
        with column:
            st.markdown(f"**{side}:** {md(title)}")
            shown = map_jobs.chosen_map(fs, config, title, button_key=f"draw_map_{side}")
            if shown is None:  # these features cannot be mapped; chosen_map said why
                continue
            frame = point_frame(fs, None, shown.coords)
            frame["agreement"] = comparison.agreement
            fig = views.map_figure(frame, colour, fs.class_names, method=shown.meta.get("method", "map"),
                                   highlight=rows, height=480)
            fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title_text": ""})
            if colour == "agreement":
                fig.update_coloraxes(colorscale="RdYlBu", cmin=0, cmax=1, colorbar={"title": {"text": _("agreement")},
                                                                                    "thickness": 12})
            views.show_map(fig, three_d=shown.coords.shape[1] == 3, map_id=selection_id,
                           chart_key=f"chart-{side}-{selection_id}")
            st.caption(views.map_caption(shown, title))
    return selection_id


def disagreement_table(result: CompareResult, rows: np.ndarray, n: int = 24) -> None:
    c = result.comparison
    names = np.asarray(result.a.class_names)
    picked = rows if len(rows) else c.most_disagreeing(n, seed=result.request.dataset.seed)
    what = _("The {n} selected images").format(n=len(rows)) if len(rows) else _(
        "The {n} images whose neighbourhoods differ most (lowest agreement; ties: the largest gap in same-class "
        "share between A and B first)").format(n=n)
    st.markdown(_("**{what}**: neighbour agreement is the overlap (Jaccard) of an image's {k} nearest neighbours in "
                  "A and in B; *same class* is the share of those neighbours of its class.").format(what=what, k=c.k))
    st.dataframe(disagreement_frame(result, picked), hide_index=True, width="stretch", column_config={
        col: st.column_config.ProgressColumn(col, min_value=0.0, max_value=1.0, format="%.2f")
        for col in ("agreement", "same class in A", "same class in B")})
    labels = result.a.labels
    # A selection's gallery: the explorer's seeded sample in proportion to each class's share, not the first rows
    # by index (all of class 0 on sorted data).
    shown = stratified_sample(picked, labels, views.GALLERY_MAX, seed=result.request.dataset.seed)
    if len(picked) > len(shown):
        st.caption(_("{shown} of {n} shown: a seeded sample from every selected class in proportion to its share of "
                     "the selection.").format(shown=len(shown), n=f"{len(picked):,}"))
    gallery(result.request.dataset, shown, [f"#{i} · {names[labels[i]]} · {c.agreement[i]:.2f}" for i in shown],
            feature_ids=result.a.ids)


def probe_comparison(result: CompareResult) -> None:
    """The same linear probe on A and on B: each accuracy with its interval, and McNemar's verdict in words."""
    if result.probe_test is None:
        return
    test, titles = result.probe_test, result.request.titles()
    cols = st.columns(2)
    for column, side, accuracy, title in zip(cols, "AB", (test.a_accuracy, test.b_accuracy), titles):
        accuracy_metric(column, _("Linear probe, {side}").format(side=side), accuracy, test.n_test, md(title))
    st.markdown(_("**Which probe reads its features better** · {sentence}").format(
        sentence=test_sentence("A", "B", test)))


def show_comparison(result: CompareResult, config: ProjectionConfig) -> None:
    c, produced_by = result.comparison, result.request.title()
    st.success(_("{title} — done.").format(title=md(produced_by)), icon=":material/check_circle:")
    cols = st.columns(4)
    cols[0].metric(_("Mean neighbour agreement"), f"{c.agreement.mean():.2f}",
                   help=_("1: every image has the same {k} nearest neighbours in both feature spaces; 0: none "
                          "shared. {produced_by}.").format(k=c.k, produced_by=md(produced_by)))
    cols[1].metric(_("Same-class neighbours, A"), f"{c.same_class_a.mean():.1%}", help=md(result.request.titles()[0]))
    cols[2].metric(_("Same-class neighbours, B"), f"{c.same_class_b.mean():.1%}", help=md(result.request.titles()[1]))
    cka_metric(cols[3], result, produced_by)
    probe_comparison(result)
    colour = st.segmented_control(_("Colour by"), list(COLOURS), format_func=lambda c: _(COLOURS[c]), default="agreement",
                                  key="compare_colour") or "agreement"
    selection_id = maps_side_by_side(result, config, colour)
    views.clear_selection_button(selection_id)
    if note := views.ring_note(len(views.current_selection(selection_id))):
        st.caption(note)
    disagreement_table(result, views.current_selection(selection_id))


st.title(_("Compare two backbones"))
st.caption(_("The same images through two feature extractors (two models, pretrained vs random weights, two sizes): "
             "two maps side by side, a selection in one lights up the same images in the other, and the images "
             "whose nearest neighbours differ most between the two."))

source = source_controls()
side_b_controls()
views.map_controls()
projection = views.current_map(source.dataset.seed)
choice = settings.get(CompareChoice)
request = CompareRequest(source, choice.source(source), choice.compare_k)
source_header(source)
st.caption(_("B: {title} · k = {k} · map: {map}").format(title=md(request.titles()[1]), k=request.k,
                                                        map=md(describe_map(projection))))
clicked = st.button(_("Compare"), type="primary", icon=":material/compare:", key="run_compare")
job = job_manager().attach(compare_spec(request), start=clicked)
if job is None:
    st.info(_("Ready: **{title}**. Press **Compare**.").format(title=md(request.title())), icon=":material/arrow_upward:")
else:
    job_outcome(job, lambda result: show_comparison(result, projection))

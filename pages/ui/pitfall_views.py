"""Map pitfalls, live: beside tour steps 2 and 3, the pretrained features' map drawn again with few and many UMAP
neighbours; what moved (the picture, by how many map neighbours the two keep) and what did not (the probe's accuracy).
The engine: ptm_core/flows/map_pitfalls.py."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages.ui.i18n import _, show_chart, style_figure
from pages.ui.intervals import accuracy_metric
from pages.ui.job_views import job_panel
from pages.ui.lesson_views import caption, note, text
from pages.ui.maps import PALETTE
from pages.ui.services import job_manager
from pages.ui.text import md
from pages.ui.tour_views import estimate_text, live_step
from ptm_core.flows import (DONE, FINISHED, ContrastResult, PitfallConfig, PitfallMap, PitfallResult, TourPlan,
                            interval_text, pitfall_seconds, pitfalls_spec)

DISTILL = "https://distill.pub/2016/misread-tsne/"


def map_title(m: PitfallMap, number: int) -> str:
    """"Step 2's map: PCA", "Step 2's map: UMAP, 15 neighbours", "Few: UMAP, 5 neighbours"."""
    method = (_("UMAP, {n} neighbours").format(n=m.n_neighbors) if m.config.method == "umap" else
              {"pca": "PCA", "tsne": "t-SNE"}.get(m.config.method, m.config.method))
    who = {"step": _("Step {n}'s map").format(n=number), "few": _("Few neighbours"),
           "many": _("Many neighbours")}[m.setting]
    return _("{who}: {method}").format(who=who, method=method)


def pitfall_map(result: PitfallResult, m: PitfallMap) -> go.Figure:
    frame = pd.DataFrame({"x": m.coords[:, 0], "y": m.coords[:, 1],
                          "class": [result.class_names[i] for i in result.labels]})
    fig = px.scatter(frame, x="x", y="y", color="class", render_mode="webgl", color_discrete_sequence=PALETTE,
                     category_orders={"class": result.class_names}, height=300)
    fig.update_xaxes(showticklabels=False, title=None).update_yaxes(showticklabels=False, title=None)
    fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0}, legend_title_text="", showlegend=m.setting == "many")
    return style_figure(fig, marker_size=4)


def accuracy_sentence(result: PitfallResult, accuracy: float, n_test: int, number: int) -> str:
    """What did not move: the probe's accuracy, worded from the step's number and the one the card's job read back
    (the same cached probe: they agree unless the caches changed since the step ran, which it then says)."""
    if (result.accuracy, result.n_test) != (accuracy, n_test):
        return _("The probe read back now ({now} on {n_now} test images) is not step {number}'s ({then} on {n} test "
                 "images): its cache changed since the step ran. Run step {number} again.").format(
            now=f"{result.accuracy:.1%}", n_now=f"{result.n_test:,}", number=number, then=f"{accuracy:.1%}",
            n=f"{n_test:,}")
    return _("**What did not move:** the linear probe's accuracy, {acc} (95 % CI {ci}, {n} test images), is step "
             "{number}'s number under all three maps. The probe reads the {dim}-dim features, not the 2-D map, and "
             "no map setting changes the features.").format(
        acc=f"{accuracy:.1%}", ci=interval_text(*result.ci95), n=f"{n_test:,}", number=number,
        dim=f"{result.feature_dim:,}")


def picture_sentence(result: PitfallResult) -> str:
    """What moved, or did not: decided by the neighbour agreement between the two re-drawn maps (the share of each
    image's k nearest map neighbours that both keep), with the change in trustworthiness as a second number."""
    few, many = result.map("few"), result.map("many")
    values = {"kept": f"{result.kept_share * result.k:.1f}", "k": result.k, "few": few.n_neighbors,
              "many": many.n_neighbors, "t_few": f"{few.trustworthiness:.2f}", "t_many": f"{many.trustworthiness:.2f}",
              "delta": f"{result.trust_change:+.2f}", "limit": f"{result.changed_below * result.k:g}"}
    if result.picture_changed:
        return _("**What moved:** the picture. Of an image's {k} nearest neighbours in the {few}-neighbour map, on "
                 "average only {kept} are still among its {k} nearest in the {many}-neighbour map (neighbour "
                 "agreement; below {limit} of {k} is a different picture), and trustworthiness goes from {t_few} to "
                 "{t_many} ({delta}).").format(**values)
    return _("**Here the setting barely moved the picture:** of an image's {k} nearest neighbours in the "
             "{few}-neighbour map, on average {kept} are still among its {k} nearest in the {many}-neighbour map "
             "(neighbour agreement; {limit} of {k} or more reads as the same picture); trustworthiness {t_few} and "
             "{t_many} ({delta}).").format(**values)


def pitfall_sentences(result: PitfallResult, accuracy: float, n_test: int, number: int) -> list[str]:
    """The card's sentences, each following its numbers: the accuracy, the picture, how to read any map, and a PCA
    step map named as such."""
    sentences = [accuracy_sentence(result, accuracy, n_test, number), picture_sentence(result),
                 _("**How to read any of them** ([Distill, \"How to Use t-SNE Effectively\"]({url}); it holds for "
                   "UMAP too): the size of a cluster and the distance between two clusters mean little; which images "
                   "sit together means something, and only as far as the trustworthiness says.").format(url=DISTILL)]
    if result.map("step").config.method != "umap":
        sentences.append(_("Step {number}'s map is PCA, a linear projection with no neighbours setting; the two "
                           "re-drawn maps are UMAP.").format(number=number))
    return sentences


def map_caption(result: PitfallResult, m: PitfallMap) -> str:
    f = m.faithfulness
    text = ""
    if f.get("knn_accuracy_map") is not None:
        text = _("{k}-NN accuracy in this map: {in_map} (in the features: {in_features}; {n} test images).").format(
            k=f["k"], in_map=f"{f['knn_accuracy_map']:.1%}", in_features=f"{f['knn_accuracy_features']:.1%}",
            n=f"{f['knn_n_test']:,}")
    if m.setting != "step":
        text += " " + _("Keeps {kept} of each image's {k} nearest neighbours in the step's map.").format(
            kept=f"{m.kept_from_step * result.k:.1f}", k=result.k)
    return text.strip()


def pitfall_view(result: PitfallResult, contrast: ContrastResult, number: int) -> None:
    row = contrast.row("pretrained")
    accuracy_metric(st, _("Linear-probe accuracy under every map"), row.accuracy, row.n_test, md(row.produced_by))
    for column, m in zip(st.columns(3), result.maps):
        with column:
            st.markdown(f"**{md(map_title(m, number))}**")
            st.metric(_("Trustworthiness"), f"{m.trustworthiness:.2f}",
                      help=_("1.0: every map neighbour is also a neighbour in the full feature space "
                             "(sklearn's trustworthiness, {k} neighbours).").format(k=m.faithfulness["k"]))
            show_chart(pitfall_map(result, m), width="stretch", key=f"pitfall-{result.dataset.spec}-{m.setting}")
            st.caption(map_caption(result, m))
    note("caption", _("Maps, left to right: {maps}.").format(maps="; ".join(
        f"{md(map_title(m, number))} ({_('Trustworthiness')} {m.trustworthiness:.2f})" for m in result.maps)))
    text("\n".join(f"- {sentence}" for sentence in pitfall_sentences(result, row.accuracy, row.n_test, number)))
    caption(md(result.produced_by))


def map_pitfalls_card(plan: TourPlan, result: ContrastResult, data_key: str) -> None:
    """A card under step 2's or 3's maps: the pretrained map drawn again with few and many UMAP neighbours (a job:
    its clock and Cancel while it runs, the three maps and what they show once done)."""
    number = 2 if data_key == "shapes" else 3
    config = PitfallConfig()
    spec = pitfalls_spec(plan, result.dataset, config)
    manager = job_manager()
    job = manager.attach(spec)
    with st.expander(_("Map pitfalls: the same features, drawn three ways"), icon=":material/warning:",
                     expanded=job is not None):
        st.markdown(_("A map is a picture of the features, drawn by a method with settings. UMAP's *neighbours* "
                      "setting says how many neighbours each image tries to keep close: few ({few}) favour very local "
                      "structure, many ({many}) more of the overall layout. Here the pretrained features of this step "
                      "are drawn again with both, beside the step's own map.").format(few=config.few, many=config.many))
        status = None if job is None else job.status
        if status == DONE:
            pitfall_view(job.result, result, number)
            return
        if status is not None and status not in FINISHED:
            live_step(job.id)
            return
        if status is not None:
            job_panel(job)  # failed or cancelled: why, then the button again
        label = _("Re-draw with other settings ({estimate})").format(
            estimate=estimate_text(pitfall_seconds(plan, result.dataset, config)))
        if st.button(label, key=f"pitfalls-run-{data_key}", icon=":material/scatter_plot:"):
            if job is None:
                manager.attach(spec, start=True)
            else:
                manager.start(spec)
            st.rerun()

"""CKA in the UI: the lab's layer x layer heatmap, its plain reading, pretrained vs fine-tuned per stage, and the
Compare page's backbone x backbone number."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from pages.ui.i18n import _, show_chart
from pages.ui.text import md, plot_text

MARGINS = {"l": 10, "r": 10, "t": 40, "b": 10}
ALIKE = 0.8  # neighbouring layers at least this alike are read as one block


def blocks(values: np.ndarray, names: list[str], alike: float = ALIKE) -> list[tuple[str, str]]:
    """Runs of two or more neighbouring layers whose adjacent CKA is at least `alike`: (first, last) names."""
    runs, start = [], 0
    for i in range(1, len(names) + 1):
        if i == len(names) or values[i - 1, i] < alike:
            if i - start > 1:
                runs.append((names[start], names[i - 1]))
            start = i
    return runs


def estimator_text(cka: dict) -> str:
    if cka.get("method") == "minibatch":
        return _("minibatch estimate, batch {batch}, {count} batches (unbiased HSIC, Nguyen et al. 2021)").format(
            batch=f"{cka['batch_size']:,}", count=cka["n_batches"])
    return _("exact")


def layer_heatmap(cka: dict, produced_by: str) -> go.Figure:
    values, names = np.asarray(cka["values"]), cka["names"]
    fig = go.Figure(go.Heatmap(z=values, x=names, y=names, zmin=0, zmax=1, colorscale="Viridis",
                               text=np.round(values, 2), texttemplate="%{text}", hovertemplate=_(
                                   "%{y} vs %{x}: CKA %{z:.3f}") + "<extra></extra>",
                               colorbar={"title": {"text": "CKA"}, "thickness": 12}))
    fig.update_xaxes(type="category", tickangle=-30)
    fig.update_yaxes(type="category", autorange="reversed")
    title = _("Linear CKA between layers, shallow → deep · {produced_by}").format(produced_by=plot_text(produced_by))
    return fig.update_layout(title=title, height=max(360, 48 * len(names) + 140), margin=MARGINS)


def heatmap_caption(cka: dict, produced_by: str) -> str:
    """What produced the heatmap, and its block structure in words."""
    values, names = np.asarray(cka["values"]), cka["names"]
    text = _("Linear CKA (Kornblith et al. 2019) between the globally pooled outputs of every pair of layers of "
             "{produced_by}, on the same {n} images ({estimator}). 1: the two layers arrange these images alike (up "
             "to rotation and scale); 0: unrelated.").format(produced_by=md(produced_by), n=f"{cka['n']:,}",
                                                          estimator=estimator_text(cka))
    runs = blocks(values, names)
    if runs:
        text += " " + _("Blocks of alike neighbouring layers (CKA ≥ {alike}): {blocks}.").format(
            alike=ALIKE, blocks="; ".join(f"{md(a)} – {md(b)}" for a, b in runs))
    else:
        text += " " + _("No two neighbouring layers reach CKA {alike}: each stage re-arranges the images.").format(
            alike=ALIKE)
    if len(names) > 2:
        text += " " + _("The first and the last layer: CKA {value:.2f}.").format(value=values[0, -1])
    return text


def stage_cka_chart(rows: list[dict], produced_by: str) -> go.Figure:
    """One bar per stage: linear CKA between the pretrained and the fine-tuned network's pooled output."""
    names = [row["name"] for row in rows]
    fig = go.Figure(go.Bar(x=names, y=[row["cka"] for row in rows], text=[f"{row['cka']:.2f}" for row in rows],
                           customdata=[row["dim"] for row in rows],
                           hovertemplate=_("%{x} (%{customdata} dims): CKA %{y:.3f}") + "<extra></extra>"))
    fig.update_xaxes(type="category", title=_("stage"))
    fig.update_yaxes(range=[0, 1.05], title=_("CKA, pretrained vs fine-tuned"))
    title = _("How much fine-tuning changed each stage · {produced_by}").format(produced_by=plot_text(produced_by))
    return fig.update_layout(title=title, height=320, margin=MARGINS)


def stage_cka_section(result: dict, produced_by: str) -> None:
    rows = result.get("stage_cka")
    if not rows:
        return
    show_chart(stage_cka_chart(rows, produced_by), width="stretch", key="drift-stage-cka")
    text = _("Linear CKA (Kornblith et al. 2019) between each stage's pooled output before and after fine-tuning, on "
             "the same {n} images at the fine-tune's size: 1 is unchanged (up to rotation and scale), lower is more "
             "changed (the comparison of Neyshabur et al., NeurIPS 2020).").format(n=f"{rows[0]['n']:,}")
    if result.get("pooled_cka") is not None:
        text += " " + _("The pooled pre-logit features: CKA {value:.2f}.").format(value=result["pooled_cka"])
    st.caption(text)


def cka_metric(column, result, produced_by: str) -> None:
    """The Compare page's backbone x backbone linear CKA, beside neighbour agreement."""
    similarity = result.cka
    if similarity is None:
        return
    column.metric(_("Linear CKA"), f"{similarity.cka:.2f}", help=_(
        "Centred kernel alignment of A's and B's features (Kornblith et al., ICML 2019): 1 when one is a rotation "
        "and scaling of the other, 0 when unrelated. On the {n} images both hold ({estimator}). {produced_by}.").format(
        n=f"{similarity.n:,}", estimator=estimator_text({"method": similarity.method,
                                                         "batch_size": similarity.batch_size,
                                                         "n_batches": similarity.n_batches}),
        produced_by=md(produced_by)))

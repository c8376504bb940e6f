"""Retrieval metrics beside the k-NN probe's accuracy: precision@1, R-precision and MAP@R (Musgrave et al. 2020),
each with its definition and interval in the help."""
from __future__ import annotations

import streamlit as st

from pages.ui.i18n import _
from pages.ui.text import md
from ptm_core.flows import interval_text

CITATION = "Musgrave, Belongie & Lim, “A Metric Learning Reality Check”, ECCV 2020"


def _metric(column, label: str, value: float, ci: tuple[float, float], definition: str, how: str) -> None:
    shown = interval_text(*ci)
    column.metric(label, f"{value:.1%}", delta=_("95 % CI {interval}").format(interval=shown), delta_color="off",
                  delta_arrow="off", help=f"{definition} {how}")


def retrieval_row(retrieval, produced_by: str) -> None:
    """Three metrics in a row (nothing for a result computed before they were)."""
    if retrieval is None:
        return
    n = f"{retrieval.n_queries:,}"
    where = _("Every one of the {n} images queries all the others by cosine similarity (itself excluded); R is the "
              "number of other images of its class, at most {max_r}. {citation}. {produced_by}.").format(
        n=n, max_r=retrieval.max_r, citation=CITATION, produced_by=md(produced_by))
    mean_ci = _("95 % CI: Student's t over the {n} queries.").format(n=n)
    cols = st.columns(3)
    _metric(cols[0], _("Precision@1"), retrieval.precision_at_1, retrieval.precision_at_1_ci95,
            _("The share of images whose nearest other image has their class."),
            where + " " + _("95 % CI: Wilson, n = {n} queries.").format(n=n))
    _metric(cols[1], _("R-precision"), retrieval.r_precision, retrieval.r_precision_ci95,
            _("For each image, the share of its class among its R nearest neighbours; averaged over images."),
            where + " " + mean_ci)
    _metric(cols[2], _("MAP@R"), retrieval.map_at_r, retrieval.map_at_r_ci95,
            _("Mean average precision at R: like R-precision, but each right neighbour counts the precision up to "
              "its rank, so right images ranked first score higher."), where + " " + mean_ci)
    if retrieval.n_excluded:
        st.caption(_("{n} images alone in their class have nothing to retrieve and are left out.").format(
            n=f"{retrieval.n_excluded:,}"))

"""The answer forming: what the images extracted so far say, redrawn while the extraction runs."""
from __future__ import annotations

import numpy as np
import plotly.express as px
import streamlit as st

from pages.ui.i18n import _, language, presenter, show_chart, style_figure
from pages.ui.intervals import accuracy_metric
from pages.ui.maps import PALETTE
from pages.ui.text import md
from ptm_core.flows import RUNNING, Job, Preview


def preview_figure(preview: Preview):
    classes = np.asarray(preview.class_names, dtype=object)[preview.labels]
    fig = px.scatter(x=preview.coords[:, 0], y=preview.coords[:, 1], color=classes, render_mode="webgl", height=380,
                     color_discrete_sequence=PALETTE, category_orders={"color": preview.class_names},
                     labels={"x": "PCA 1", "y": "PCA 2", "color": _("class")})
    fig.update_layout(margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return style_figure(fig, marker_size=4)


@st.cache_data(show_spinner=False, max_entries=4)
def _cached_figure(_preview: Preview, job_id: str, n_done: int, lang: str, big: bool):
    # Once per preview (a new one every few seconds), not at each of the progress fragment's reruns every second:
    # plotly express took ~70 ms of the server's Python each time, a cached copy ~13 ms.
    return preview_figure(_preview)


def preview_panel(job: Job, produced_by: str) -> None:
    """The latest preview of a running extraction (nothing before the first one is ready)."""
    preview: Preview | None = job.preview
    if preview is None or job.status != RUNNING:
        return
    left, right = st.columns(2)
    so_far = _("Tested on {n_test} of the images done so far; the final number replaces it.").format(
        n_test=preview.n_test)
    if preview.accuracy is None or not preview.n_test:
        left.metric(_("Linear probe so far"), "—", help=so_far)
    else:
        accuracy_metric(left, _("Linear probe so far"), preview.accuracy, preview.n_test, so_far)
    right.metric(_("Images so far"), f"{preview.n_done:,} / {preview.n_total:,}")
    if preview.accuracy is None:
        note = _("Preview of the {done} images extracted so far: too few of the rarest class for a probe yet.")
    else:
        note = _("Preview of the {done} images extracted so far, a seeded random sample of the whole set: a probe "
                 "(C={C:g}) tested on {n_test} of them, and a PCA map of {shown} of them. The full result replaces "
                 "it when the extraction ends.")
    st.caption(note.format(done=f"{preview.n_done:,}", C=preview.best_C or 0, n_test=f"{preview.n_test:,}",
                           shown=f"{len(preview.coords):,}") + " " + md(produced_by) + ".")
    if not len(preview.coords):  # too few different rows for a map yet: the probe alone
        return
    figure = _cached_figure(preview, job.id, preview.n_done, language(), presenter())
    show_chart(figure, width="stretch", key=f"preview-{job.id}")

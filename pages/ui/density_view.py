"""The map of a large set (beyond density_map.SCATTERGL_MAX_POINTS): a datashader image with click targets.

The selection it returns is turned into rows on the server (ptm_core.maps.density.selected_rows) and
stored where `maps.current_selection` reads it, so the gallery, neighbours and counts work as on a
scatter map.
"""
from __future__ import annotations

import copy
from functools import partial

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages.ui.i18n import _, show_chart
from pages.ui.maps import CORRECT_COLOURS, FITTED_COLOURS, METHODS, MODEBAR, PALETTE, remember_rows
from ptm_core.flows import density as density_map

CONFIDENCE_BINS = 10


def _categories(frame: pd.DataFrame, colour_by: str, class_names: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """(one category code per point, the categories' names, their colours) for the chosen colouring."""
    if colour_by == "confidence" and "confidence" in frame:
        # Continuous: ten bands of Viridis, as the scatter's colour scale would show them.
        edges = np.linspace(0, 1, CONFIDENCE_BINS + 1)
        codes = pd.cut(frame["confidence"], edges, labels=False, include_lowest=True).fillna(-1).astype(int).to_numpy()
        names = [f"{lo:.1f}–{hi:.1f}" for lo, hi in zip(edges[:-1], edges[1:])]
        return codes, names, px.colors.sample_colorscale("Viridis", CONFIDENCE_BINS)
    if colour_by == "correct" and "correct" in frame:
        column, names, colours = "correct", list(CORRECT_COLOURS), list(CORRECT_COLOURS.values())
    elif colour_by == "fitted" and "fitted" in frame:
        column, names, colours = "fitted", list(FITTED_COLOURS), list(FITTED_COLOURS.values())
    else:
        column = "prediction" if colour_by == "prediction" and "prediction" in frame else "class"
        names, colours = list(class_names), [PALETTE[i % len(PALETTE)] for i in range(len(class_names))]
    return pd.Categorical(frame[column], categories=names).codes, names, colours


def density_figure(frame: pd.DataFrame, colour_by: str, class_names: list[str], method: str = "map",
                   height: int = 600) -> go.Figure:
    """Every point as one server-rendered image, a legend, and invisible click targets for selections."""
    coords = frame[["x", "y"]].to_numpy()
    codes, names, colours = _categories(frame, colour_by, class_names)
    (x0, x1), (y0, y1) = density_map.extent(coords)
    fig = go.Figure()
    fig.add_layout_image(source=density_map.render(coords, codes, colours), xref="x", yref="y", x=x0, y=y1,
                         sizex=x1 - x0, sizey=y1 - y0, sizing="stretch", layer="below")
    targets = density_map.click_targets(coords)
    # Opacity 0, yet picked: plotly hovers, clicks and selects by position, not by what is drawn. SVG, not
    # WebGL: under a layout image Streamlit's plotly picked no scattergl point on hover, so clicks were lost.
    fig.add_trace(go.Scatter(x=targets[:, 0], y=targets[:, 1], mode="markers", marker={"size": 8, "opacity": 0},
                               hovertemplate=_("click: the nearest image") + "<extra></extra>", showlegend=False,
                               name="click targets"))
    for name, colour in zip(names, colours):  # legend entries only: the image itself has no traces
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=str(name), hoverinfo="skip",
                                   marker={"size": 9, "color": colour}))
    label = METHODS.get(method, "map")
    return fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, plot_bgcolor="white",
        xaxis={"range": [x0, x1], "title": f"{label} 1", "showgrid": False},
        yaxis={"range": [y0, y1], "title": f"{label} 2", "showgrid": False},
        legend={"itemclick": False, "itemdoubleclick": False}, meta={"data_traces": 1, "density": True})


def _remember_density_selection(chart_key: str, map_id: str, coords: np.ndarray) -> None:
    state = st.session_state.get(chart_key) or {}
    remember_rows(map_id, density_map.selected_rows(coords, state.get("selection")))


def show_density(fig: go.Figure, coords: np.ndarray, map_id: str, chart_key: str, epoch: int) -> None:
    """Draw the density map; a box, a lasso or a click selects rows of the full set."""
    key = f"{chart_key}-density-{epoch}"
    show_chart(copy.deepcopy(fig), width="stretch", key=key, config=MODEBAR,
                    selection_mode=("points", "box", "lasso"),
                    on_select=partial(_remember_density_selection, key, map_id, coords[:, :2]))
    st.caption(_("{n} points drawn as one image (density view, for maps over {limit} points): a box or lasso "
                 "selects every point inside it, a click the point nearest to it. Zooming enlarges the image.").format(
        n=f"{len(coords):,}", limit=f"{density_map.scattergl_max_points():,}"))

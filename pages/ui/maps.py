"""Maps of feature sets: the settings sidebar, the figure, selections and their galleries, exports.

Every point carries its row number as the first element of plotly `customdata`, and a selection is
read back from that alone, and only from the data traces (rings drawn on top carry none). Plotly's
own point numbers count within a trace (one trace per colour), which is how selections once came
back pointing at the wrong images (streamlit issue 8914).
"""
from __future__ import annotations

import copy
from functools import partial

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages.ui import settings
from pages.ui.choices import MapChoice
from pages.ui.gallery import gallery
from pages.ui.i18n import N_, _, show_chart, tr_stored
from pages.ui.intervals import accuracy_metric
from pages.ui.predictions import prediction_panel
from pages.ui.text import md, plot_text
from ptm_core.base import BackboneConfig, DatasetConfig, ProjectionConfig, csv_safe_frame, describe_map
from ptm_core.flows import (ISSUE_KINDS, MAP_METRICS, FeatureSet, MapResult, estimate_seconds, nearest_neighbours,
                            selection_counts, stratified_sample, umap_ready)

METHODS = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}
COLOUR_BY = {"class": N_("True class"), "prediction": N_("Probe prediction"), "correct": N_("Probe right or wrong"),
             "confidence": N_("Probe confidence"), "fitted": N_("Fitted or placed"), "cluster": N_("Cluster"),
             "issue": N_("Data quality issue")}
# "issue": offered once the data-quality report exists (pages/ui/quality_views.py).
ISSUE_COLOURS = dict(zip(ISSUE_KINDS, ("#d62728", "#1f77b4", "#ff7f0e", "#c7ccd1")))  # label issue, dup, outlier, none
# "fitted": only offered for a map fitted on a subsample; the placed points in a lighter colour.
FITTED_COLOURS = {"fitted": "#1f77b4", "placed": "#ff7f0e"}
CORRECT_COLOURS = {"right": "#9aa5b1", "wrong": "#d62728"}
# Ten classes told apart on a projector: no pale grey, no two near-identical hues (d3's Category10 with
# its grey swapped for black); larger sets continue with Dark24.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#000000", "#bcbd22",
           "#17becf", *px.colors.qualitative.Dark24]
GALLERY_MAX = 60
# Over this many selected points, rings (9 px each) cover the map in black: none are drawn (ring_note says so).
RING_MAX = 200
MODEBAR = {"displaylogo": False,
           "toImageButtonOptions": {"format": "png", "filename": "ptm-explorer-map", "scale": 2}}


def map_controls() -> None:
    """The sidebar's Map section, bound to the settings model."""
    with st.sidebar:
        st.subheader(_("Map"))
        method = settings.bound(st.radio, _("Projection"), MapChoice, "map", options=list(METHODS),
                                format_func=METHODS.get, horizontal=True)
        settings.bound(st.radio, _("Dimensions"), MapChoice, "map_dims", options=[2, 3],
                       format_func=lambda d: _("{d}-D").format(d=d), horizontal=True)
        if method == "umap":
            settings.bound(st.slider, _("Neighbours (local ↔ global)"), MapChoice, "n_neighbors", min_value=2,
                           max_value=100)
            settings.bound(st.slider, _("Minimum distance (clumped ↔ spread)"), MapChoice, "min_dist", min_value=0.0,
                           max_value=0.99, step=0.01)
        if method == "tsne":
            settings.bound(st.slider, _("Perplexity"), MapChoice, "perplexity", min_value=5.0, max_value=50.0, step=1.0)
        if method != "pca":
            settings.bound(st.selectbox, _("Distance"), MapChoice, "metric", options=list(MAP_METRICS))
            settings.bound(st.toggle, _("Reproducible (seeded, one thread)"), MapChoice, "reproducible",
                           help=_("Off: UMAP runs unseeded on every core; faster on big machines, a new map each time."))


def current_map(seed: int) -> ProjectionConfig:
    return settings.get(MapChoice).config(seed)


def estimate_text(n: int, dim: int, config: ProjectionConfig) -> str:
    seconds = estimate_seconds(n, dim, config)
    why = "" if config.method != "umap" or umap_ready() else " " + _("(UMAP's one-off compile is still running)")
    return _("{method} of {n} × {dim}: about {seconds} s").format(
        method=METHODS[config.method], n=f"{n:,}", dim=f"{dim:,}", seconds=f"{max(seconds, 1):.0f}") + why


def _hover(frame: pd.DataFrame) -> tuple[list[str], str]:
    """customdata columns (row first, for selections) and a hover template that reads them."""
    # Plotly's own %{...} fields go in through placeholders, so no translation can break them.
    columns = ["row", "id", "class"]
    lines = ["#%{customdata[0]} · %{customdata[1]}", _("class {name}").format(name="%{customdata[2]}")]
    if "prediction" in frame:
        columns += ["prediction", "confidence", "split"]
        lines += [_("probe says {prediction} (confidence {confidence})").format(prediction="%{customdata[3]}",
                                                                                confidence="%{customdata[4]:.2f}"),
                  _("{split} split").format(split="%{customdata[5]}")]
    return columns, "<br>".join(lines) + "<extra></extra>"


def map_figure(frame: pd.DataFrame, colour_by: str, class_names: list[str], method: str = "map",
               highlight=(), height: int = 600) -> go.Figure:
    """WebGL scatter (2-D) or a 3-D scatter with the project's palette; each point's row leads its customdata."""
    if colour_by not in frame:
        colour_by = "class"
    three_d = "z" in frame
    columns, template = _hover(frame)
    name = METHODS.get(method, "map")
    style = {"color": colour_by, "custom_data": columns, "height": height, "color_discrete_sequence": PALETTE,
             "category_orders": {"class": class_names, "prediction": class_names, "correct": ["right", "wrong"]},
             "labels": {"x": f"{name} 1", "y": f"{name} 2", "z": f"{name} 3"}}
    if colour_by == "correct":  # a map for this alone: it would shift the class colours along the palette
        style["color_discrete_map"] = CORRECT_COLOURS
    if colour_by == "fitted":
        style.update(color_discrete_map=FITTED_COLOURS, category_orders={"fitted": list(FITTED_COLOURS)})
    if colour_by == "issue":
        style.update(color_discrete_map=ISSUE_COLOURS, category_orders={"issue": list(ISSUE_COLOURS)})
    if colour_by == "confidence":
        style.update(color_continuous_scale="Viridis", range_color=(0, 1))
    if three_d:
        fig = px.scatter_3d(frame, x="x", y="y", z="z", **style)
        fig.update_traces(marker={"size": 2.5, "opacity": 0.8}, hovertemplate=template)
    else:
        fig = px.scatter(frame, x="x", y="y", render_mode="webgl", **style)
        fig.update_traces(marker={"size": 5, "opacity": 0.8}, hovertemplate=template)
    data_traces = len(fig.data)
    if 0 < len(highlight) <= RING_MAX:
        _add_highlight(fig, frame.loc[frame["row"].isin(np.asarray(highlight, dtype=int))], three_d)
    legend = _("Click a class to hide it") if colour_by != "confidence" else ""
    return fig.update_layout(legend_title_text=legend, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                             meta={"data_traces": data_traces})


def _add_highlight(fig: go.Figure, rows: pd.DataFrame, three_d: bool) -> None:
    # No customdata: a selection that sweeps over a ring must read the data point under it, not the ring.
    marker = {"size": 9, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 1.5}}
    if three_d:
        fig.add_trace(go.Scatter3d(x=rows["x"], y=rows["y"], z=rows["z"], mode="markers", marker=marker,
                                   name=_("selected"), hoverinfo="skip"))
    else:
        fig.add_trace(go.Scattergl(x=rows["x"], y=rows["y"], mode="markers", marker=marker, name=_("selected"),
                                   hoverinfo="skip"))


NEIGHBOUR_K = "neighbour_k"  # the neighbours panel's slider: the map rings as many neighbours as it lists
DEFAULT_K = 12


def mark_focus(fig: go.Figure, frame: pd.DataFrame, fs: FeatureSet, rows: np.ndarray, three_d: bool) -> None:
    """One clicked image: a star on it and rings on its nearest neighbours in the full feature space (those the
    panel below lists), so both can be found on a map of thousands of dots. Box and lasso selections get none."""
    if len(rows) != 1 or len(fs.labels) < 2:
        return
    row = int(rows[0])
    k = min(int(st.session_state.get(NEIGHBOUR_K, DEFAULT_K)), len(fs.labels) - 1)
    indices, _similarity = nearest_neighbours(fs.features, row, k)
    # No customdata: a selection that sweeps over a mark must read the data point under it, not the mark.
    for rows_shown, name, marker in (
            (indices, _("its {k} nearest neighbours").format(k=k),
             {"size": 11, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 2}}),
            ([row], _("clicked image"),
             {"size": 18, "symbol": "star", "color": "gold", "line": {"color": "black", "width": 1.5}})):
        points = frame.loc[frame["row"].isin(np.asarray(rows_shown, dtype=int))]
        if three_d:
            marker = {**marker, "size": marker["size"] * 0.6, "symbol": "diamond" if len(rows_shown) == 1 else "circle"}
            fig.add_trace(go.Scatter3d(x=points["x"], y=points["y"], z=points["z"], mode="markers", marker=marker,
                                       name=name, hoverinfo="skip"))
        else:
            fig.add_trace(go.Scattergl(x=points["x"], y=points["y"], mode="markers", marker=marker, name=name,
                                       hoverinfo="skip"))


def ring_note(n: int) -> str | None:
    """Why a large selection is not ringed on the map; None when it is."""
    if n <= RING_MAX:
        return None
    return _("{n} images selected: more than {max} are not ringed on the map (rings would cover it); the table and "
             "the gallery below show them.").format(n=f"{n:,}", max=RING_MAX)


def _row_of(point: dict) -> int | None:
    data = point.get("customdata")
    if isinstance(data, (list, tuple)):
        data = data[0] if data else None
    elif isinstance(data, dict):  # some plotly builds send an array as {"0": ..., "1": ...}
        data = data.get("0", data.get(0))
    try:
        return int(data)
    except (TypeError, ValueError):
        return None


def selected_rows(event, data_traces: int | None = None) -> np.ndarray:
    """Row numbers of the data points a plotly selection event names, from their customdata."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    rows = set()
    for point in points:
        if data_traces is not None and point.get("curve_number", 0) >= data_traces:
            continue
        row = _row_of(point)
        if row is not None:
            rows.add(row)
    return np.array(sorted(rows), dtype=int)


def _selection_store(map_id: str) -> str:
    return f"selection-{map_id}"


def epoch(map_id: str) -> int:
    return st.session_state.get(f"selection-epoch-{map_id}", 0)


def current_selection(map_id: str) -> np.ndarray:
    """Rows selected on this map (by any chart drawing it), kept apart from the charts' own state.

    A chart's state resets whenever its figure changes (recolouring, highlighting), so the rows are
    copied out by the selection callback, which runs before the script reruns.
    """
    return np.asarray(st.session_state.get(_selection_store(map_id), []), dtype=int)


def remember_rows(map_id: str, rows: np.ndarray) -> None:
    """Store the rows a chart selected on this map (its selection callback calls this)."""
    st.session_state[_selection_store(map_id)] = np.asarray(rows, dtype=int).tolist()


def _remember_selection(chart_key: str, map_id: str, data_traces: int) -> None:
    remember_rows(map_id, selected_rows(st.session_state.get(chart_key), data_traces))


def show_map(fig: go.Figure, three_d: bool, map_id: str, chart_key: str) -> None:
    """Draw the map; box, lasso or a click on a 2-D map sets the selection `current_selection` returns."""
    # Clearing the selection starts a new epoch: a new chart key remounts the chart without plotly's
    # own selection outline and dimming, and clicks work again at once.
    key = f"{chart_key}-{epoch(map_id)}"
    data_traces = fig.layout.meta["data_traces"]
    fig = copy.deepcopy(fig)  # st.plotly_chart rewrites the figure it draws; the caller's copy exports as is
    if three_d:
        show_chart(fig, width="stretch", key=key, config=MODEBAR)
        st.caption(_("Box and lasso selection work on 2-D maps; switch to 2-D to select images."))
        return
    show_chart(fig, width="stretch", key=key, config=MODEBAR, selection_mode=("points", "box", "lasso"),
                    on_select=partial(_remember_selection, key, map_id, data_traces))


def clear_selection_button(map_id: str) -> None:
    if len(current_selection(map_id)) and st.button(_("Clear selection"), icon=":material/deselect:",
                                                    key=f"clear-{map_id}"):
        st.session_state.pop(_selection_store(map_id), None)
        st.session_state[f"selection-epoch-{map_id}"] = epoch(map_id) + 1
        st.rerun()


def _caption(frame: pd.DataFrame, row: int, extra: str = "") -> str:
    item = frame.iloc[row]
    verdict = f" → {item['prediction']}" if "prediction" in frame and item["prediction"] != item["class"] else ""
    return f"#{row} · {item['class']}{verdict}{extra}"


def selection_panel(dataset: DatasetConfig, fs: FeatureSet, frame: pd.DataFrame, rows: np.ndarray,
                    three_d: bool = False, backbone: BackboneConfig | None = None, looks=None) -> None:
    """A clicked point's nearest neighbours, or the selected images with per-class counts; with `backbone`, what
    its pretrained head thinks the one image in focus is; `looks(row, neighbour rows)` draws below the neighbours."""
    if len(rows) == 0:
        if not three_d:
            st.caption(_("Click a point to see its nearest neighbours in the full feature space; pick Box or Lasso "
                         "Select on the map's toolbar and drag to see a group of images."))
        return
    if len(rows) == 1:
        neighbours_panel(dataset, fs, frame, int(rows[0]), backbone, looks)
        return
    st.markdown(_("**{n} images selected**").format(n=f"{len(rows):,}"))
    cols = st.columns([5, 7])
    cols[0].dataframe(selection_counts(frame, rows), width="stretch")
    # Plotly ignores clicks on points while a box is drawn, so neighbours of a selected image are one pick away too.
    focus = cols[0].selectbox(_("Nearest neighbours of"), [None, *rows[:500].tolist()], key="neighbours_of",
                              format_func=lambda r: _("choose an image…") if r is None else _caption(frame, r))
    with cols[1]:
        shown = stratified_sample(rows, fs.labels, GALLERY_MAX, seed=0)
        if len(rows) > GALLERY_MAX:
            st.caption(_("A seeded sample of {shown} of the {n} selected images, drawn from every selected class "
                         "in proportion to its share of the selection.").format(shown=len(shown), n=f"{len(rows):,}"))
        gallery(dataset, shown, [_caption(frame, r) for r in shown], feature_ids=fs.ids)
    if focus is not None:
        neighbours_panel(dataset, fs, frame, int(focus), backbone, looks)


def neighbours_panel(dataset: DatasetConfig, fs: FeatureSet, frame: pd.DataFrame, row: int,
                     backbone: BackboneConfig | None = None, looks=None) -> None:
    k = st.slider(_("Neighbours to show"), 4, 32, DEFAULT_K, step=4, key=NEIGHBOUR_K)
    k = min(k, len(fs.labels) - 1)
    indices, similarity = nearest_neighbours(fs.features, row, k)
    same = np.mean(fs.labels[indices] == fs.labels[row])
    st.markdown(_("**Image {image}** and its {k} nearest neighbours in the full {dim}-dim feature space (cosine); "
                  "{share} share its class.").format(image=md(_caption(frame, row)), k=k, dim=f"{fs.features.shape[1]:,}",
                                                     share=f"{same:.0%}"))
    gallery(dataset, [row, *indices], [_("{image} (clicked)").format(image=_caption(frame, row)),
                                       *[_caption(frame, int(i), f" · {s:.2f}") for i, s in zip(indices, similarity)]],
            feature_ids=fs.ids)
    if looks is not None:
        looks(row, indices.tolist())
    if backbone is not None:
        prediction_panel(backbone, dataset, row, fs.ids)


def faithfulness_panel(f: dict, dims: int, produced_by: str) -> None:
    st.markdown(_("**How faithful is this map?**"))
    cols = st.columns(4)
    cols[0].metric(_("Trustworthiness"), f"{f['trustworthiness']:.2f}",
                   help=_("1.0: every map neighbour is also a neighbour in the full feature space. {produced_by}.").format(
                       produced_by=md(produced_by)))
    if f.get("knn_accuracy_features") is not None:
        if f.get("knn_n_test"):  # with its interval (maps cached before the test images were counted: without)
            for column, label, key in ((cols[1], _("{k}-NN accuracy, features"), "knn_accuracy_features"),
                                       (cols[2], _("{k}-NN accuracy, map"), "knn_accuracy_map")):
                accuracy_metric(column, label.format(k=f["k"]), f[key], f["knn_n_test"], md(produced_by))
        else:
            cols[1].metric(_("{k}-NN accuracy, features").format(k=f["k"]), f"{f['knn_accuracy_features']:.1%}",
                           help=md(produced_by))
            cols[2].metric(_("{k}-NN accuracy, map").format(k=f["k"]), f"{f['knn_accuracy_map']:.1%}", help=md(produced_by))
    cols[3].metric(_("PCA variance in 2-D"), f"{f['pca_variance_2d']:.1%}", help=md(produced_by))
    note = " " + _("Measured on the first two map axes.") if dims == 3 else ""
    st.caption(md(tr_stored(f["summary"])) + note)  # read back from the map cache, it is plain English


def map_caption(result: MapResult, source: str) -> str:
    """What the map shows and what produced it: the source, the method and its settings, the time it took."""
    meta = result.meta
    config = ProjectionConfig(**meta["config"]) if "config" in meta else None
    what = describe_map(config) if config else METHODS.get(meta.get("method"), _("Map"))
    text = _("{what} of {n} feature vectors · {source}").format(what=md(what), n=f"{meta.get('n_points', len(result.coords)):,}",
                                                                 source=md(source))
    if meta.get("subsampled"):
        how = (_("by its own transform") if meta.get("placement") == "transform" else
               _("at the mean of their 10 nearest fitted neighbours"))
        text += _("; fitted on a seeded subsample of {n}, the rest placed {how}").format(n=f"{meta['n_fit']:,}", how=how)
    seconds = f"{meta.get('compute_seconds', meta.get('seconds', 0)):.1f}"
    timing = (_("computed in {seconds} s, read from cache") if meta.get("cache_hit") else
              _("computed in {seconds} s")).format(seconds=seconds)
    return _("{text} ({timing}).").format(text=text, timing=timing)


def export_name(feature_key: str, config: ProjectionConfig) -> str:
    """A file name that says which map it is: method, dimensions, settings, and the features' key."""
    parts = [config.method, f"{config.n_components}d"]
    if config.method == "umap":
        parts += [f"n{config.n_neighbors}", f"md{config.min_dist:.2f}", config.metric]
    elif config.method == "tsne":
        parts += [f"p{config.perplexity:g}", config.metric]
    return "-".join(["map", *parts, feature_key[:10]])


def exported_figure(fig: go.Figure, title: str, produced_by: str) -> go.Figure:
    """The map as a file: it travels without the page around it, so it carries its title and what produced it."""
    return copy.deepcopy(fig).update_layout(
        template="plotly_white", title={"text": f"{plot_text(title)}<br><sup>{plot_text(produced_by)}</sup>"},
        margin={"t": 80})


def export_buttons(frame: pd.DataFrame, fig: go.Figure, name: str, title: str, produced_by: str) -> None:
    exported = exported_figure(fig, title, produced_by)
    cols = st.columns(3)
    # Both files are made when clicked: a million points' CSV is tens of MB, too much to build on every rerun.
    cols[0].download_button(_("Points as CSV"), lambda: csv_safe_frame(frame).to_csv(index=False), f"{name}.csv",
                            "text/csv",
                            icon=":material/download:", key=f"csv-{name}", on_click="ignore",
                            help=_("Row, id, map coordinates, class, probe prediction and confidence, split, selected."))
    cols[1].download_button(_("Figure as HTML"), lambda: exported.to_html(include_plotlyjs=True), f"{name}.html",
                            "text/html", icon=":material/download:", key=f"html-{name}", on_click="ignore",
                            help=_("Interactive and self-contained: opens offline in any browser."))
    cols[2].caption(_("PNG: the camera button on the map's toolbar saves it at twice the screen resolution."))

"""Maps of feature sets: the settings sidebar, the figure, selections and their galleries, exports.

Every point carries its row number as plotly `customdata`, and a selection is read back from that
alone. Plotly's own point numbers count within a trace (one trace per colour), which is how
selections came back pointing at the wrong images (streamlit issue 8914).
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages.common import gallery, remember_choices, restore_choices
from ptm_core.configs import DatasetConfig, ProjectionConfig
from ptm_core.extraction import FeatureSet
from ptm_core.neighbours import nearest_neighbours
from ptm_core.pipeline import MapResult
from ptm_core.probes import ProbeResult
from ptm_core.projection import METRICS, estimate_seconds, umap_ready

METHODS = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}
COLOUR_BY = {"class": "True class", "prediction": "Probe prediction", "correct": "Probe right or wrong",
             "confidence": "Probe confidence"}
DEFAULTS = {"map": "umap", "map_dims": 2, "n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean",
            "reproducible": True, "perplexity": 30.0}
GALLERY_MAX = 60
MODEBAR = {"displaylogo": False,
           "toImageButtonOptions": {"format": "png", "filename": "ptm-explorer-map", "scale": 2}}


def map_controls(seed: int) -> ProjectionConfig:
    """The sidebar's Map section; returns the map it describes."""
    restore_choices("map", DEFAULTS, {"map": list(METHODS), "map_dims": [2, 3], "metric": list(METRICS)})
    with st.sidebar:
        st.subheader("Map")
        method = st.radio("Projection", list(METHODS), format_func=METHODS.get, horizontal=True, key="map")
        dims = st.radio("Dimensions", [2, 3], format_func=lambda d: f"{d}-D", horizontal=True, key="map_dims")
        if method == "umap":
            st.slider("Neighbours (local ↔ global)", 2, 100, key="n_neighbors")
            st.slider("Minimum distance (clumped ↔ spread)", 0.0, 0.99, step=0.01, key="min_dist")
        if method == "tsne":
            st.slider("Perplexity", 5.0, 50.0, step=1.0, key="perplexity")
        if method != "pca":
            st.selectbox("Distance", list(METRICS), key="metric")
            st.toggle("Reproducible (seeded, one thread)", key="reproducible",
                      help="Off: UMAP runs unseeded on every core; faster on big machines, a new map each time.")
    remember_choices("map", DEFAULTS)
    state = st.session_state
    return ProjectionConfig(method=method, n_components=int(dims), seed=seed, n_neighbors=int(state["n_neighbors"]),
                            min_dist=float(state["min_dist"]), metric=state["metric"],
                            reproducible=bool(state["reproducible"]), perplexity=float(state["perplexity"]))


def estimate_text(n: int, dim: int, config: ProjectionConfig) -> str:
    seconds = estimate_seconds(n, dim, config)
    why = "" if config.method != "umap" or umap_ready() else " (UMAP's one-off compile is still running)"
    return f"{METHODS[config.method]} of {n:,} × {dim:,}: about {max(seconds, 1):.0f} s{why}"


def point_frame(fs: FeatureSet, probe: ProbeResult | None, coords: np.ndarray, selected=()) -> pd.DataFrame:
    """One row per image: map position, label, the probe's verdict, and whether it is selected."""
    names = np.asarray(fs.class_names)
    frame = pd.DataFrame({"row": np.arange(len(fs.labels)), "id": fs.ids, "class": names[fs.labels]})
    for axis, column in zip("xyz", coords.T):
        frame[axis] = column
    if probe is not None and probe.all_predictions is not None:
        frame["prediction"] = names[probe.all_predictions]
        frame["correct"] = np.where(probe.all_predictions == fs.labels, "right", "wrong")
        frame["confidence"] = probe.all_confidence
        frame["split"] = probe.split(len(frame))
    frame["selected"] = frame["row"].isin(np.asarray(selected, dtype=int))
    return frame


def map_figure(frame: pd.DataFrame, colour_by: str, class_names: list[str], highlight=(), height: int = 600) -> go.Figure:
    """WebGL scatter (2-D) or a 3-D scatter, with each point's row number as customdata."""
    if colour_by not in frame:
        colour_by = "class"
    three_d = "z" in frame
    hover = {c: True for c in ("id", "class", "prediction", "confidence", "split") if c in frame}
    hover.update(x=False, y=False, **({"z": False} if three_d else {}))
    style = {"color": colour_by, "custom_data": ["row"], "hover_data": hover, "height": height,
             "category_orders": {"class": class_names, "prediction": class_names, "correct": ["right", "wrong"]},
             "color_discrete_map": {"right": "#9aa5b1", "wrong": "#d62728"}, "labels": {"x": "", "y": "", "z": ""}}
    if colour_by == "confidence":
        style.update(color_continuous_scale="Viridis", range_color=(0, 1))
    if three_d:
        fig = px.scatter_3d(frame, x="x", y="y", z="z", **style)
        fig.update_traces(marker={"size": 2.5, "opacity": 0.8})
    else:
        fig = px.scatter(frame, x="x", y="y", render_mode="webgl", **style)
        fig.update_traces(marker={"size": 5, "opacity": 0.8})
    if len(highlight):
        _add_highlight(fig, frame.loc[frame["row"].isin(np.asarray(highlight, dtype=int))], three_d)
    legend = "Click a class to hide it" if colour_by != "confidence" else ""
    return fig.update_layout(legend_title_text=legend, margin={"l": 10, "r": 10, "t": 30, "b": 10})


def _add_highlight(fig: go.Figure, rows: pd.DataFrame, three_d: bool) -> None:
    marker = {"size": 9, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 1.5}}
    if three_d:
        fig.add_trace(go.Scatter3d(x=rows["x"], y=rows["y"], z=rows["z"], mode="markers", marker=marker,
                                   name="selected", customdata=rows[["row"]].to_numpy(), hoverinfo="skip"))
    else:
        fig.add_trace(go.Scattergl(x=rows["x"], y=rows["y"], mode="markers", marker=marker, name="selected",
                                   customdata=rows[["row"]].to_numpy(), hoverinfo="skip"))


def selected_rows(event) -> np.ndarray:
    """Row numbers of the points a plotly selection event names, from their customdata."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    rows = {int(p["customdata"][0]) for p in points if p.get("customdata")}
    return np.array(sorted(rows), dtype=int)


def _selection_store(map_id: str) -> str:
    return f"selection-{map_id}"


def current_selection(map_id: str) -> np.ndarray:
    """Rows selected on this map (by any chart drawing it), kept apart from the charts' own state.

    A chart's state resets whenever its figure changes (recolouring, highlighting), so the rows are
    copied out by the selection callback, which runs before the script reruns.
    """
    return np.asarray(st.session_state.get(_selection_store(map_id), []), dtype=int)


def _remember_selection(chart_key: str, map_id: str) -> None:
    st.session_state[_selection_store(map_id)] = selected_rows(st.session_state.get(chart_key)).tolist()


def show_map(fig: go.Figure, three_d: bool, map_id: str, chart_key: str) -> None:
    """Draw the map; box, lasso or a click on a 2-D map sets the selection `current_selection` returns."""
    if three_d:
        st.plotly_chart(fig, width="stretch", key=chart_key, config=MODEBAR)
        st.caption("Box and lasso selection work on 2-D maps; switch to 2-D to select images.")
        return
    st.plotly_chart(fig, width="stretch", key=chart_key, config=MODEBAR, selection_mode=("points", "box", "lasso"),
                    on_select=partial(_remember_selection, chart_key, map_id))


def clear_selection_button(map_id: str) -> None:
    if len(current_selection(map_id)) and st.button("Clear selection", icon=":material/deselect:",
                                                    key=f"clear-{map_id}"):
        st.session_state.pop(_selection_store(map_id), None)
        st.rerun()


def selection_counts(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    chosen = frame.loc[frame["row"].isin(rows)]
    counts = pd.DataFrame({"selected": chosen["class"].value_counts(), "in dataset": frame["class"].value_counts()})
    counts = counts.fillna(0).astype(int).query("selected > 0").sort_values("selected", ascending=False)
    counts["share of class"] = (counts["selected"] / counts["in dataset"]).map("{:.0%}".format)
    if "correct" in chosen:
        wrong = chosen.loc[chosen["correct"] == "wrong", "class"].value_counts()
        counts["probe wrong"] = wrong.reindex(counts.index).fillna(0).astype(int)
    return counts.rename_axis("class")


def _caption(frame: pd.DataFrame, row: int, extra: str = "") -> str:
    item = frame.iloc[row]
    verdict = f" → {item['prediction']}" if "prediction" in frame and item["prediction"] != item["class"] else ""
    return f"#{row} · {item['class']}{verdict}{extra}"


def selection_panel(dataset: DatasetConfig, fs: FeatureSet, frame: pd.DataFrame, rows: np.ndarray) -> None:
    """A clicked point's nearest neighbours, or the selected images with per-class counts."""
    if len(rows) == 0:
        st.caption("Click a point to see its nearest neighbours in the full feature space; pick Box or Lasso "
                   "Select on the map's toolbar and drag to see a group of images.")
        return
    if len(rows) == 1:
        neighbours_panel(dataset, fs, frame, int(rows[0]))
        return
    st.markdown(f"**{len(rows):,} images selected**")
    cols = st.columns([5, 7])
    cols[0].dataframe(selection_counts(frame, rows), width="stretch")
    # Plotly ignores clicks on points while a box is drawn, so neighbours of a selected image are one pick away too.
    focus = cols[0].selectbox("Nearest neighbours of", [None, *rows[:500].tolist()], key="neighbours_of",
                              format_func=lambda r: "choose an image…" if r is None else _caption(frame, r))
    with cols[1]:
        shown = rows[:GALLERY_MAX]
        if len(rows) > GALLERY_MAX:
            st.caption(f"Showing the first {GALLERY_MAX} of {len(rows):,}.")
        gallery(dataset, shown, [_caption(frame, r) for r in shown])
    if focus is not None:
        neighbours_panel(dataset, fs, frame, int(focus))


def neighbours_panel(dataset: DatasetConfig, fs: FeatureSet, frame: pd.DataFrame, row: int) -> None:
    k = st.slider("Neighbours to show", 4, 32, 12, step=4, key="neighbour_k")
    k = min(k, len(fs.labels) - 1)
    indices, similarity = nearest_neighbours(fs.features, row, k)
    same = np.mean(fs.labels[indices] == fs.labels[row])
    st.markdown(f"**Image {_caption(frame, row)}** and its {k} nearest neighbours in the full "
                f"{fs.features.shape[1]:,}-dim feature space (cosine); {same:.0%} share its class.")
    gallery(dataset, [row, *indices], [f"{_caption(frame, row)} (clicked)",
                                       *[_caption(frame, int(i), f" · {s:.2f}") for i, s in zip(indices, similarity)]])


def faithfulness_panel(f: dict, dims: int) -> None:
    st.markdown("**How faithful is this map?**")
    cols = st.columns(4)
    cols[0].metric("Trustworthiness", f"{f['trustworthiness']:.2f}",
                   help="1.0: every map neighbour is also a neighbour in the full feature space.")
    if f.get("knn_accuracy_features") is not None:
        cols[1].metric(f"{f['k']}-NN accuracy, features", f"{f['knn_accuracy_features']:.1%}")
        cols[2].metric(f"{f['k']}-NN accuracy, map", f"{f['knn_accuracy_map']:.1%}")
    cols[3].metric("PCA variance in 2-D", f"{f['pca_variance_2d']:.1%}")
    note = " Measured on the first two map axes." if dims == 3 else ""
    st.caption(f["summary"] + note)


def map_caption(result: MapResult) -> str:
    meta = result.meta
    text = f"{METHODS.get(meta.get('method'), 'Map')} of {meta.get('n_points', len(result.coords)):,} feature vectors"
    if meta.get("subsampled"):
        how = "by its own transform" if meta.get("placement") == "transform" else "at the mean of their 10 nearest fitted neighbours"
        text += f"; fitted on a seeded subsample of {meta['n_fit']:,}, the rest placed {how}"
    timing = "read from cache" if meta.get("cache_hit") else f"computed in {meta.get('seconds', 0):.1f} s"
    return f"{text} ({timing})."


def export_buttons(frame: pd.DataFrame, fig: go.Figure, name: str) -> None:
    cols = st.columns(3)
    cols[0].download_button("Points as CSV", frame.to_csv(index=False), f"{name}.csv", "text/csv",
                            icon=":material/download:", key=f"csv-{name}", on_click="ignore",
                            help="Row, id, map coordinates, class, probe prediction and confidence, split, selected.")
    cols[1].download_button("Figure as HTML", lambda: fig.to_html(include_plotlyjs=True), f"{name}.html", "text/html",
                            icon=":material/download:", key=f"html-{name}", on_click="ignore",
                            help="Interactive and self-contained: opens offline in any browser.")
    cols[2].caption("PNG: the camera button on the map's toolbar saves it at twice the screen resolution.")

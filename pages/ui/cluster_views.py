"""Clusters on the explorer's map: each cluster's class mix written at its centre, colour by cluster, and a strip of
exemplar thumbnails per cluster (the engine: ptm_core.maps.clusters, cached per map by flows.map_clusters).

Labels are layout annotations, not traces: a box or lasso selection reads only the data traces (maps.selected_rows),
and annotations add none, so selecting works as without them.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages.ui.gallery import gallery
from pages.ui.i18n import _
from pages.ui.text import md
from ptm_core.base import DatasetConfig, ProjectionConfig, PTMError
from ptm_core.flows import ClusterConfig, Clusters, FeatureSet, MapResult, map_clusters

STRIP_MAX = 12  # clusters shown in the exemplar strip, largest first
NOISE_COLOUR = "#c7c7c7"
LABEL_STYLE = {"showarrow": False, "font": {"size": 12, "color": "#111"}, "bgcolor": "rgba(255,255,255,0.75)",
               "bordercolor": "#555", "borderwidth": 1, "borderpad": 2}


def label_toggle() -> bool:
    return st.toggle(_("Label clusters"), key="cluster_labels",
                     help=_("Find clusters on the map (HDBSCAN) and write each one's class mix at its centre, with "
                            "exemplar images below the map."))


def clusters_for(fs: FeatureSet, shown: MapResult, projection: ProjectionConfig) -> Clusters | None:
    """The map's clusters (computed once per map, then read from the cache); None, said as an error, when they
    cannot be found."""
    try:
        with st.spinner(_("Finding clusters…")):
            return map_clusters(fs, shown.coords, projection, ClusterConfig())
    except PTMError as exc:
        st.error(exc.for_ui(), icon=":material/error:")
        return None


def cluster_name(cluster_id: int) -> str:
    return _("no cluster") if cluster_id < 0 else _("cluster {id}").format(id=cluster_id + 1)


def with_cluster_column(frame: pd.DataFrame, clusters: Clusters | None) -> pd.DataFrame:
    """The frame with a "cluster" column (for Colour by: Cluster), when there are clusters."""
    if clusters is None:
        return frame
    names = {int(c): cluster_name(int(c)) for c in set(clusters.ids.tolist())}
    return frame.assign(cluster=[names[int(c)] for c in clusters.ids])


def label(cluster) -> str:
    return _("{name}: {mix}").format(name=cluster_name(cluster.id), mix=cluster.label)


def decorate(fig: go.Figure, clusters: Clusters | None, labels: bool, three_d: bool) -> None:
    """Grey the noise points (coloured by cluster) and, with `labels`, write each cluster's label at its centre."""
    if clusters is None:
        return
    ranks = {cluster_name(-1): len(clusters.clusters) + 1, **{cluster_name(c.id): c.id + 1 for c in clusters.clusters}}
    for trace in fig.data:  # coloured by cluster: the legend in cluster order (not first appearance), noise last, grey
        if trace.name in ranks:
            trace.update(legendrank=1000 + ranks[trace.name])
        if trace.name == cluster_name(-1):
            trace.update(marker_color=NOISE_COLOUR)
    if not labels:
        return
    if three_d:
        fig.update_layout(scene_annotations=[dict(x=c.centre[0], y=c.centre[1], z=c.centre[2], text=label(c),
                                                  **LABEL_STYLE) for c in clusters.clusters])
        return
    for c in clusters.clusters:
        fig.add_annotation(x=c.centre[0], y=c.centre[1], text=label(c), xref="x", yref="y", **LABEL_STYLE)


def produced_by(clusters: Clusters) -> str:
    config = clusters.config
    where = (_("the map's coordinates") if config.space == "map" else
             _("the features (PCA to {dims} dims)").format(dims=config.pca_dims))
    return _("HDBSCAN ({selection} selection), min_cluster_size {size}, min_samples {samples}, on {where}").format(
        selection=config.selection, size=config.size_for(len(clusters.ids)), samples=config.min_samples, where=where)


def caption(clusters: Clusters) -> str:
    timing = (_("read from cache; computed in {seconds} s") if clusters.cache_hit else
              _("computed in {seconds} s")).format(seconds=f"{clusters.seconds:.1f}")
    text = _("{n} clusters by {how} ({timing}). Each label: the cluster's largest classes and their shares; purity is "
             "the largest share.").format(n=len(clusters.clusters), how=produced_by(clusters), timing=timing)
    if clusters.n_noise:
        text += " " + _("{n} points in no cluster (grey when coloured by cluster).").format(n=f"{clusters.n_noise:,}")
    return text


def exemplar_strip(dataset: DatasetConfig, fs: FeatureSet, clusters: Clusters) -> None:
    """Per cluster, largest first: its label, purity and size, and the images nearest its centre."""
    st.markdown(_("**Cluster exemplars**"))
    st.caption(caption(clusters))
    if not clusters.clusters:
        st.caption(_("HDBSCAN found no cluster on this map: every point is noise."))
        return
    shown = sorted(clusters.clusters, key=lambda c: -c.size)[:STRIP_MAX]
    for c in shown:
        st.markdown(_("{label} · purity {purity} · {n} images").format(label=md(label(c)), purity=f"{c.purity:.0%}",
                                                                        n=f"{c.size:,}"))
        gallery(dataset, c.exemplars, [f"{cluster_name(c.id)} · #{r} · {fs.class_names[fs.labels[r]]}"
                                       for r in c.exemplars], feature_ids=fs.ids, size=64)
    if len(clusters.clusters) > STRIP_MAX:
        st.caption(_("The {shown} largest of {n} clusters are shown.").format(shown=STRIP_MAX,
                                                                              n=len(clusters.clusters)))

"""Clusters on an explorer map, cached per map: the map's key (flows.explore.map_key) keys them, so they are
recomputed only when the map (its features or its projection settings) or the cluster settings change."""
from __future__ import annotations

import numpy as np

from ptm_core.base.configs import ProjectionConfig
from ptm_core.features.featureset import FeatureSet
from ptm_core.flows.explore import map_key
from ptm_core.maps.clusters import ClusterConfig, Clusters, find_clusters


def map_clusters(fs: FeatureSet, coords: np.ndarray, projection: ProjectionConfig,
                 config: ClusterConfig = ClusterConfig()) -> Clusters:
    """HDBSCAN clusters of the map `projection` drew of `fs` (its coordinates `coords`), each said by its classes."""
    features = fs.features if config.space == "features" else None
    return find_clusters(coords, fs.labels, fs.class_names, config, features=features,
                         cache_key=map_key(fs.key, projection))

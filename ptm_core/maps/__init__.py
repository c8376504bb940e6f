"""Maps of features: projections (UMAP, PCA, t-SNE) and their time estimates, how faithful a map is, nearest
neighbours, and density images for maps too large to scatter.
"""
from ptm_core.maps.projection import METHODS, METRICS, compile_umap, compute_projection, project, umap_ready
from ptm_core.maps.estimate import estimate_seconds
from ptm_core.maps.faithfulness import map_faithfulness
from ptm_core.maps.neighbours import nearest_neighbours, neighbour_agreement

__all__ = ["METHODS", "METRICS", "compile_umap", "compute_projection", "estimate_seconds", "map_faithfulness",
           "nearest_neighbours", "neighbour_agreement", "project", "umap_ready"]

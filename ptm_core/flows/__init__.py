"""What a user does, as jobs: explore (features, probe, map), the lab (every method on one split), compare
(two backbones on the same images), the tour; and the tables that pages show and the CLI writes.
"""
from ptm_core.flows.explore import ExploreRequest, ExploreResult, MapResult, run_explore, run_map
from ptm_core.flows.compare import CompareRequest, CompareResult, run_compare
from ptm_core.flows.tables import point_frame

__all__ = ["CompareRequest", "CompareResult", "ExploreRequest", "ExploreResult", "MapResult", "point_frame",
           "run_compare", "run_explore", "run_map"]

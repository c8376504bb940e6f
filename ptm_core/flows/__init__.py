"""What a user does, as jobs: explore (features, probe, map), the lab (every method on one split), compare
(two backbones on the same images), the tour; and the tables that pages show and the CLI writes.
"""
from ptm_core.flows.explore import ExploreRequest, ExploreResult, MapResult, run_explore, run_map
from ptm_core.flows.compare import CompareRequest, CompareResult, run_compare
from ptm_core.flows.tables import point_frame

__all__ = ["CompareRequest", "CompareResult", "ExploreRequest", "ExploreResult", "MapResult", "point_frame",
           "run_compare", "run_explore", "run_map"]

# explore, compare, maps, jobs, library: used by the pages (the UI imports from the engine only ptm_core.flows and
# ptm_core.base: a flow builds a job spec, a page attaches to it with `JobManager.attach(spec, start=clicked)`)
from ptm_core.data import TV_SOURCES, Dataset, ingest_upload, list_datasets, load_dataset
from ptm_core.data.ingest import upload_limit_bytes
from ptm_core.features.featureset import FeatureSet
from ptm_core.features.preview import Preview
from ptm_core.flows.compare import compare_spec
from ptm_core.flows.explore import active_explore, compute_map, explore_spec, map_key
from ptm_core.flows.maps import AUTO_DRAW_SECONDS, MapPlan, map_plan, map_spec
from ptm_core.flows.server import new_job_manager, start_background_work, warm_up_specs
from ptm_core.flows.tables import disagreement_frame, selection_counts, stratified_sample, title_parts
from ptm_core.maps import density
from ptm_core.maps.estimate import estimate_seconds
from ptm_core.maps.neighbours import nearest_neighbours
from ptm_core.maps.projection import METHODS as MAP_METHODS, METRICS as MAP_METRICS
from ptm_core.maps.projection import fitted_mask, umap_ready
from ptm_core.models.catalog import DEFAULT_BACKBONE, catalog, model_card
from ptm_core.runs.eta import format_duration
from ptm_core.runs.jobs import ACTIVE, DONE, FINISHED, QUEUED, RUNNING, Job, JobManager, JobSpec

__all__ += ["ACTIVE", "AUTO_DRAW_SECONDS", "DEFAULT_BACKBONE", "DONE", "Dataset", "FINISHED", "FeatureSet", "Job",
            "JobManager", "JobSpec", "MAP_METHODS", "MAP_METRICS", "MapPlan", "Preview", "QUEUED", "RUNNING",
            "TV_SOURCES", "active_explore", "catalog", "compare_spec", "compute_map", "density", "disagreement_frame",
            "estimate_seconds", "explore_spec", "fitted_mask", "format_duration", "ingest_upload", "list_datasets",
            "load_dataset", "map_key", "map_plan", "map_spec", "model_card", "nearest_neighbours", "new_job_manager",
            "selection_counts", "start_background_work", "stratified_sample", "title_parts", "umap_ready",
            "upload_limit_bytes", "warm_up_specs"]
# end of explore, compare, maps, jobs, library

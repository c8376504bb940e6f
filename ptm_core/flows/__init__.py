"""What a user does, as jobs: explore (features, probe, map), the lab (every method on one split), compare
(two backbones on the same images), the tour; the server's background work; and the tables that pages show and the
CLI writes.

The UI's only door into the engine (with ptm_core.base for configs and errors): a flow builds a job spec, a page
attaches to it with `JobManager.attach(spec, start=clicked)` and draws what it returns. What the pages read from
lower floors (datasets, the catalog, map methods, job states) is re-exported here, so that the floors below can be
rearranged without touching a page.
"""
from ptm_core.data import TV_SOURCES, Dataset, ingest_upload, list_datasets, load_dataset
from ptm_core.data.ingest import upload_limit_bytes
from ptm_core.features.featureset import FeatureSet
from ptm_core.features.preview import Preview
from ptm_core.evals.bench import BenchConfig, BenchResult
from ptm_core.flows.cam import CAM_METHODS, CAM_TARGETS, CamResult, where_it_looks
from ptm_core.flows.bench import (BENCH_T_MIN_SEEDS, BenchProgress, bench_dir, bench_spec, bench_title,
                                  interval_kind)
from ptm_core.flows.clusters import map_clusters
from ptm_core.flows.compare import CompareRequest, CompareResult, compare_spec, run_compare
from ptm_core.flows.explore import (ExploreRequest, ExploreResult, MapResult, active_explore, compute_map, explore_spec,
                                    map_key, run_explore, run_map)
from ptm_core.flows.lab import (LAB_METHODS, RESTORED_METHODS, LabRequest, checkpoint_filename, finetune_title, lab_spec,
                                random_source, source_runs)
from ptm_core.flows.maps import AUTO_DRAW_SECONDS, MapPlan, map_plan, map_spec
from ptm_core.flows.map_pitfalls import PitfallConfig, PitfallMap, PitfallResult, pitfall_seconds, pitfalls_spec
from ptm_core.data.photos import ARRIVAL_SIDE, ZipPhotos, photo_from_bytes, photos_from_zip
from ptm_core.flows.own_images import (MAX_CLASSES, MAX_PHOTOS, MIN_CLASSES, MIN_PHOTOS, OwnResult, check_classes,
                                       classify, learn, learn_estimate_seconds, warm_up_in_background)
from ptm_core.flows.pairs import MethodPair, images_needed, interval, interval_text
from ptm_core.flows.server import new_job_manager, start_background_work, warm_up_specs
from ptm_core.flows.tables import (compare_frame, compare_pairs, disagreement_frame, finetune_settings, mixed_sizes,
                                   point_frame, selection_counts, stopped_early, stopped_early_text, stratified_sample,
                                   title_parts)
from ptm_core.flows.tour import (RESTORED_STEPS, TOUR_STEPS, VECTOR_SHOWN, ContrastResult, EfficiencyClaim,
                                 EfficiencyPoint, LessonResult, TourPlan, ZooResult, adapted_test, efficiency_claim,
                                 page_plan)
from ptm_core.flows.tour_questions import QUESTIONS, Question, question, reveal
from ptm_core.flows.tour_clock import ClockState, step_seconds, step_spec, step_specs
from ptm_core.flows.quality import ISSUE_KINDS, issue_kinds, quality_frame, quality_report, train_duplicates
from ptm_core.base.quality import QualityConfig
from ptm_core.flows.tour_costs import dataset_size, estimate_step_seconds
from ptm_core.base.capabilities import capabilities
from ptm_core.maps import density
from ptm_core.maps.clusters import ClusterConfig, Clusters
from ptm_core.maps.estimate import estimate_seconds
from ptm_core.maps.neighbours import nearest_neighbours
from ptm_core.maps.projection import METHODS as MAP_METHODS, METRICS as MAP_METRICS
from ptm_core.maps.projection import fitted_mask, umap_ready
from ptm_core.models.catalog import COMPARE_BACKBONE, DEFAULT_BACKBONE, bundled_zoo, catalog, model_card
from ptm_core.models.predict import Prediction, predict_image
from ptm_core.probes.linear import confident_mistakes, confusion, per_class_accuracy
from ptm_core.runs.eta import format_duration
from ptm_core.runs.jobs import ACTIVE, DONE, FINISHED, QUEUED, RUNNING, STATUS_WORDS, Job, JobManager, JobSpec

__all__ = ["ACTIVE", "AUTO_DRAW_SECONDS", "BENCH_T_MIN_SEEDS", "BenchConfig", "BenchProgress", "BenchResult",
           "CAM_METHODS", "CAM_TARGETS", "CamResult",
           "COMPARE_BACKBONE", "ClockState", "CompareRequest", "CompareResult", "ContrastResult", "DEFAULT_BACKBONE",
           "DONE",
           "Dataset", "EfficiencyClaim", "EfficiencyPoint", "ExploreRequest", "ExploreResult", "FINISHED",
           "FeatureSet", "Job", "JobManager", "JobSpec", "LAB_METHODS", "LabRequest", "LessonResult", "MAP_METHODS",
           "MAP_METRICS", "MapPlan", "MapResult", "MethodPair", "Prediction", "Preview", "QUEUED",
           "RESTORED_METHODS", "RESTORED_STEPS", "RUNNING", "STATUS_WORDS",
           "TOUR_STEPS", "TV_SOURCES", "TourPlan", "VECTOR_SHOWN", "ZooResult",
           "active_explore", "adapted_test", "bench_dir", "bench_spec", "bench_title", "bundled_zoo", "catalog",
           "checkpoint_filename",            "compare_frame", "compare_pairs", "compare_spec", "compute_map", "confident_mistakes", "confusion",
           "dataset_size", "density", "disagreement_frame", "efficiency_claim", "estimate_seconds",
           "estimate_step_seconds", "explore_spec", "finetune_settings", "finetune_title", "fitted_mask", "format_duration",
           "images_needed", "ingest_upload", "interval", "interval_kind", "interval_text", "lab_spec",
           "list_datasets", "load_dataset", "map_key", "map_plan", "map_spec", "mixed_sizes", "model_card",
           "nearest_neighbours", "new_job_manager", "per_class_accuracy", "point_frame", "predict_image",
           "random_source", "run_compare", "run_explore", "run_map", "selection_counts", "source_runs",
           "start_background_work", "step_spec", "step_specs", "page_plan", "step_seconds", "stopped_early",
           "stopped_early_text", "stratified_sample", "title_parts", "umap_ready", "upload_limit_bytes",
           "warm_up_specs", "where_it_looks"]
__all__ += ["ClusterConfig", "Clusters", "map_clusters"]  # issue 21: cluster labels on the map
__all__ += ["QUESTIONS", "Question", "question", "reveal"]  # issue 24: predict, then reveal
__all__ += ["ISSUE_KINDS", "QualityConfig", "issue_kinds", "quality_frame", "quality_report", "train_duplicates"]
__all__ += ["capabilities"]  # issue 24: the lesson file says which machine computed it
__all__ += ["PitfallConfig", "PitfallMap", "PitfallResult", "pitfall_seconds", "pitfalls_spec"]  # issue 24: map pitfalls
__all__ += ["ARRIVAL_SIDE", "MAX_CLASSES", "MAX_PHOTOS", "MIN_CLASSES", "MIN_PHOTOS", "OwnResult", "ZipPhotos",
            "check_classes", "classify", "learn", "learn_estimate_seconds", "photo_from_bytes",
            "photos_from_zip", "warm_up_in_background"]  # issue 24: the "your images" step

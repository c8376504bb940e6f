"""What a user does, as jobs: explore (features, probe, map), the lab (every method on one split), compare
(two backbones on the same images), the tour; and the tables that pages show and the CLI writes.
"""
from ptm_core.flows.explore import ExploreRequest, ExploreResult, MapResult, run_explore, run_map
from ptm_core.flows.compare import CompareRequest, CompareResult, run_compare
from ptm_core.flows.tables import point_frame

# lab and tour: used by the pages (pages/lab.py, pages/tour.py, pages/ui/lab_charts.py, pages/ui/tour_views.py)
from ptm_core.flows.lab import (LAB_METHODS, RESTORED_METHODS, LabRequest, finetune_title, lab_spec, random_source,
                                source_runs)
from ptm_core.flows.tour import (TOUR_STEPS, RESTORED_STEPS, VECTOR_SHOWN, ContrastResult, EfficiencyPoint, TourPlan,
                                 dataset_size, estimate_step_seconds, step_spec, step_specs)
from ptm_core.flows.tables import compare_frame, mixed_sizes
from ptm_core.probes.linear import confident_mistakes, confusion, per_class_accuracy
from ptm_core.runs.jobs import ACTIVE, DONE, FINISHED, Job, JobSpec

__all__ = ["CompareRequest", "CompareResult", "ExploreRequest", "ExploreResult", "MapResult", "point_frame",
           "run_compare", "run_explore", "run_map"]
# lab and tour: used by the pages
__all__ += ["ACTIVE", "ContrastResult", "DONE", "EfficiencyPoint", "FINISHED", "Job", "JobSpec", "LAB_METHODS",
            "LabRequest", "RESTORED_METHODS", "RESTORED_STEPS", "TOUR_STEPS", "TourPlan", "VECTOR_SHOWN",
            "compare_frame", "confident_mistakes", "confusion", "dataset_size", "estimate_step_seconds",
            "finetune_title", "lab_spec", "mixed_sizes", "per_class_accuracy", "random_source", "source_runs",
            "step_spec", "step_specs"]

"""Long work and what it leaves: jobs on background threads (lanes, cancellation, time left), the SQLite run
store, and the artifact cache of checksummed npz files.
"""
from ptm_core.runs.jobs import (ACTIVE, CANCELLED, COMPUTE, DONE, FAILED, FINISHED, INTERRUPTED, MAP, QUEUED, RUNNING,
                                Job, JobContext, JobManager, JobSpec)
from ptm_core.runs.eta import EtaEstimator, eta_phrase, format_duration
from ptm_core.runs.store import RunStore
from ptm_core.runs.artifacts import artifact_dir, load_npz, save_npz

__all__ = ["ACTIVE", "CANCELLED", "COMPUTE", "DONE", "EtaEstimator", "FAILED", "FINISHED", "INTERRUPTED", "Job",
           "JobContext", "JobManager", "JobSpec", "MAP", "QUEUED", "RUNNING", "RunStore", "artifact_dir", "eta_phrase",
           "format_duration", "load_npz", "save_npz"]

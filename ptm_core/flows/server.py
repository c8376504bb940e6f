"""What a server process runs besides the pages: one job manager, and the background work done at start-up."""
from __future__ import annotations

from ptm_core.base.messages import M_
from ptm_core.base.configs import Source
from ptm_core.data.ingest import clean_stale_extractions
from ptm_core.flows.explore import warm_up
from ptm_core.maps.projection import compile_umap
from ptm_core.runs.jobs import COMPUTE, MAP, Job, JobManager, JobSpec
from ptm_core.runs.store import RunStore


def new_job_manager() -> JobManager:
    """The server's job manager: create one per server process (the app caches it), so jobs outlive script
    reruns, page switches and browser refreshes; the run store keeps them across server restarts. One job at a
    time in each lane (compute and map, see ptm_core.runs.jobs)."""
    return JobManager(max_concurrent=1, store=RunStore())


def warm_up_specs(manager: JobManager, source: Source) -> list[JobSpec]:
    """The start-up warm-ups, in the order they run, both in the map lane and kept out of the run store.

    One after the other: first the default run's steps before its first batch (`source`'s images read; when
    OpenVINO is among the candidate runtimes, its backbone converted in a child process, once per data
    directory, then compiled here; the fastest runtime and precision measured, once per machine; an extraction
    started meanwhile switches over when it is done), then UMAP's compile, needed only once features exist.
    Side by side they left a user's first extraction less of the two cores, and the default first run's map
    came later (benchmarks/first_run.py, measured when they were put in one lane, commit c80c92c; the first-run
    rows of benchmarks/RESULTS.md are with them one after the other). Maps wait for them (one job per lane: one
    UMAP at a time), probes do not.

    UMAP's compile also waits while the compute lane runs a job, unless a map queues behind it
    (`JobManager.yield_to`): it holds the GIL for most of its run, and beside an extraction both took longer
    than one after the other (the extraction's rate fell to about a third, measured when the yield came in,
    commit 85819a1; the compile's own time: benchmarks/first_umap.py).
    """
    def compile_when_free(ctx) -> None:
        manager.yield_to(COMPUTE, MAP)
        compile_umap()

    return [JobSpec("warm-up-default", M_("Preparing the default run (MNIST-5k, OpenVINO; once)"),
                    lambda ctx: warm_up(source), kind="warm-up", lane=MAP, record=False),
            JobSpec("warm-up-umap", M_("Preparing UMAP (a one-off compile after the server starts)"), compile_when_free,
                    kind="warm-up", lane=MAP, record=False)]


def start_background_work(manager: JobManager, source: Source) -> list[Job]:
    """Once per server process: half-written zip extractions of a killed server (hundreds of MB) removed first,
    then the warm-ups (`warm_up_specs`) queued in the map lane."""
    try:
        clean_stale_extractions()
    except OSError:
        pass
    return [manager.start(spec) for spec in warm_up_specs(manager, source)]

"""Record real progress traces for the time-left tests: python tests/eta_traces/record.py [name ...]

Events are [t, fraction, step_end] for a progress report and [t, null, null] for a stage boundary.
Each run goes through the same lab/pipeline work function and JobContext as in the app, on the
tiny random-weights model, one torch thread. A trace is every progress report and every stage
boundary, with times relative to the start, and the time the work ended; test_eta replays them.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))


class RecordingEstimator:
    """Stands in for a job's EtaEstimator and keeps what it was fed."""

    def __init__(self):
        self.events: list[list] = []

    def add(self, t: float, fraction: float, step_end: float = 1.0) -> None:
        self.events.append([t, fraction, step_end])

    def reset(self) -> None:
        self.events.append([time.monotonic(), None, None])

    def remaining(self, now: float):
        return None


def record(name: str, work, description: str) -> dict:
    from ptm_core.runs.jobs import RUNNING, Job, JobContext

    job = Job(key=name, title=name, status=RUNNING)
    job._eta = RecordingEstimator()
    ctx = JobContext(job)
    start = time.monotonic()
    work(ctx)
    end = time.monotonic()
    events = [[round(t - start, 3), p, end_] for t, p, end_ in job._eta.events]
    return {"name": name, "description": description, "end": round(end - start, 3), "events": events}


def runs() -> dict:
    import dataclasses

    from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig, FinetuneConfig, KNNConfig
    from ptm_core.features.extraction import extract
    from ptm_core.base.configs import Source
    from ptm_core.flows.explore import ExploreRequest, run_explore
    from ptm_core.flows.lab import run_finetune, run_pixels, run_probes

    backbone = BackboneConfig("test_efficientnet", "random", 0)
    source = Source(DatasetConfig("digits"), backbone, ExtractionConfig(224, 32, "cpu"))
    small = source  # all 1,797 digits
    ft = FinetuneConfig(mode="full", epochs=3, batch_size=16, image_size=96, val_every_steps=200)

    def resumed(ctx):
        stop_at = {"n": 0}

        def cancel_after_a_third() -> bool:
            stop_at["n"] += 1
            return stop_at["n"] > 20

        config = ExtractionConfig(192, 32, "cpu")
        try:
            extract(source.dataset, backbone, config, cancelled=cancel_after_a_third)
        except Exception:
            pass
        ctx.stage("extracting features (resumed)")
        extract(source.dataset, backbone, config, ctx.scaled(0, 1), ctx.cancelled)

    return {
        "extraction": (lambda ctx: (ctx.stage("extracting features"),
                                    extract(source.dataset, backbone, source.extraction, ctx.scaled(0, 1), ctx.cancelled)),
                       "digits 1,797 images at 224 px, test_efficientnet (random), batch 32"),
        "explore": (lambda ctx: run_explore(ExploreRequest(source), ctx),
                    "the explorer's job: extraction with previews every few seconds, then the probe sweep"),
        "extraction_resumed": (resumed, "digits at 192 px: 20 batches computed and checkpointed, then a resumed run"),
        "probes": (lambda ctx: run_probes(dataclasses.replace(source, extraction=ExtractionConfig(64, 32, "cpu")),
                                          KNNConfig(), ctx),
                   "lab probes: extraction of digits at 64 px, linear-probe C sweep, k-NN"),
        "pixel_sweep": (lambda ctx: run_pixels(source, ctx), "raw-pixel logistic regression sweep on digits"),
        "finetune": (lambda ctx: run_finetune(small, ft, ctx), "full fine-tune, digits 1,797, 96 px, 3 epochs"),
        "lpft": (lambda ctx: run_finetune(small, dataclasses.replace(ft, mode="lp-ft"), ctx),
                 "LP-FT with its probe stage (features not cached), digits 1,797, 96 px, 3 epochs"),
    }


def main(names: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    os.environ["PTM_DATA_DIR"] = tempfile.mkdtemp(prefix="ptm-eta-")
    for name, (work, description) in runs().items():
        if names and name not in names:
            continue
        trace = record(name, work, description)
        (HERE / f"{name}.json").write_text(json.dumps(trace))
        print(f"{name}: {trace['end']:.1f} s, {len(trace['events'])} events")


if __name__ == "__main__":
    main(sys.argv[1:])

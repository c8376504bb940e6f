"""Where it looks: seconds per class activation map at 224 px, bundled tf_efficientnet_lite0, on 2 CPU cores.

    python benchmarks/cam_speed.py [--quick]          (or: python benchmarks/run.py --only cam_speed)

The app's path (ptm_core.evals.cam): the model loaded once and warm (one map drawn first and not timed), the image
(skimage's chelsea cat) preprocessed as extraction does, gradients stopped at the CAM layer (bn2), the target the
model's own ImageNet logit for class 282 (tiger cat); the probe head the app uses is a 1,280 -> classes linear
layer on the same pooled features, a rounding error beside the backbone. The median of the timed maps is kept
(Score-CAM: one map, tens of seconds).
Target: Grad-CAM <= 2 s per image; Score-CAM (one forward pass per channel of bn2: 1,280) and EigenCAM for the record.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from PIL import Image  # noqa: E402

from ptm_core.base.configs import BackboneConfig  # noqa: E402
from ptm_core.evals import cam  # noqa: E402
from ptm_core.models.weights import load_backbone  # noqa: E402

TARGET_S = 2.0
CLASS = 282  # tiger cat: lite0's top class for the image


def warm_model():
    """lite0 loaded, the cat preprocessed, one map drawn (one-off imports and allocations): (model, layer, batch)."""
    from skimage import data

    model = load_backbone(BackboneConfig("tf_efficientnet_lite0", "bundled")).model
    batch, _ = cam.model_input(cam.preprocess(model, 224), Image.fromarray(data.chelsea()))
    _, layer, _ = cam.target_layer(model, batch.shape[1:])
    cam.only_layer_learns(model, layer)
    cam.run_cam(model, layer, batch, cam.class_target(CLASS), "gradcam")
    return model, layer, batch


def time_maps(warm, method: str, repeats: int) -> tuple[float, int]:
    """Median seconds per map over `repeats` runs on the warm model, and the threads torch used."""
    import torch

    model, layer, batch = warm
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        cam.run_cam(model, layer, batch, cam.class_target(CLASS), method)
        times.append(time.perf_counter() - started)
    return statistics.median(times), torch.get_num_threads()


def rows(quick: bool = False) -> list[dict]:
    load, warm = os.getloadavg()[0], warm_model()
    out = []
    for method, repeats in (("gradcam", 5 if quick else 10), ("eigencam", 5 if quick else 10), ("scorecam", 1)):
        seconds, threads = time_maps(warm, method, repeats)
        print(f"{method}: {seconds:.2f} s (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
        name = cam.METHOD_NAMES[method]
        gradcam = method == "gradcam"
        out.append({"figure": f"{name} map, tf_efficientnet_lite0 bundled @224px, one image (warm model)",
                    "ours": f"{seconds:.2f} s per image", "baseline": f"target {TARGET_S:g} s" if gradcam else "-",
                    "ratio": TARGET_S / seconds if gradcam else float("nan"),
                    "target": f"≤ {TARGET_S:g} s" if gradcam else "(for the record)",
                    "met": seconds <= TARGET_S if gradcam else "-",
                    "note": f"median of {repeats} warm maps, torch {threads} threads, CAM layer bn2 (7 x 7); "
                            f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    for row in rows(parser.parse_args().quick):
        print(row)


if __name__ == "__main__":
    main()

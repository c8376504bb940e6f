"""Where it looks: the class activation map the explorer shows for one image (ptm_core.evals.cam).

The explorer's result already holds what a map needs: the source (dataset, backbone, weights, image size), the
features and the fitted probe. Maps are kept per (features, probe, row, neighbour, CamConfig) for the process, so
flipping between images already drawn costs nothing.
"""
from __future__ import annotations

import threading

from ptm_core.base.configs import stable_hash
from ptm_core.data import Dataset, load_dataset
from ptm_core.evals.cam import METHOD_NAMES, TARGETS, CamConfig, CamResult, feature_cam
from ptm_core.flows.explore import ExploreResult

CAM_METHODS = METHOD_NAMES  # method -> its name, for the pages
CAM_TARGETS = TARGETS
KEPT = 32  # maps kept in memory (a 224 px map and its overlay are about 0.4 MB)
_maps: dict[str, CamResult] = {}
_lock = threading.Lock()


def where_it_looks(result: ExploreResult, row: int, method: str = "gradcam", other: int | None = None,
                   dataset: Dataset | None = None) -> CamResult:
    """The map of row `row` of the explorer's features: the probe's predicted class, or with `other` (a neighbour's
    row) the similarity of the two images' features. `dataset`: the loaded dataset, when the caller has it."""
    source, fs = result.request.source, result.features
    config = CamConfig(method=method, target="probe" if other is None else "similarity", seed=result.request.probe.seed)
    key = stable_hash(["cam", fs.key, result.request.probe.key(), source.backbone.key(), int(row), other, config.key()])
    with _lock:
        if key in _maps:
            return _maps[key]
    dataset = dataset if dataset is not None else load_dataset(source.dataset)
    cam = feature_cam(dataset, fs, source.backbone, int(row), config, probe=result.probe,
                      probe_config=result.request.probe, other=other)
    with _lock:
        if len(_maps) >= KEPT:
            _maps.pop(next(iter(_maps)))
        _maps[key] = cam
    return cam

"""The tables that pages show and the CLI writes: points of a map, selections, lab runs side by side.

Pure pandas on engine results, so the page, the CSV export and the tests read the same rows.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ptm_core.base.messages import M_
from ptm_core.flows.compare import CompareResult
from ptm_core.features.featureset import FeatureSet
from ptm_core.flows.lab import METHOD_LABELS
from ptm_core.flows.pairs import MethodPair, best_pairs, interval, interval_text
from ptm_core.probes.linear import ProbeResult


def point_frame(fs: FeatureSet, probe: ProbeResult | None, coords: np.ndarray, selected=None,
                fitted: np.ndarray | None = None, issues: np.ndarray | None = None) -> pd.DataFrame:
    """One row per image: map position, label, the probe's verdict, and (given a selection) whether it is selected.

    `fitted`: for a map fitted on a subsample, the mask of fitted points (projection.fitted_mask);
    it becomes the column "fitted" ("fitted" or "placed"). `issues`: each image's data-quality issue
    (flows.quality.issue_kinds), the column "issue".
    """
    names = np.asarray(fs.class_names)
    frame = pd.DataFrame({"row": np.arange(len(fs.labels)), "id": fs.ids, "class": names[fs.labels]})
    for axis, column in zip("xyz", coords.T):
        frame[axis] = column
    if probe is not None and probe.all_predictions is not None:
        frame["prediction"] = names[probe.all_predictions]
        frame["correct"] = np.where(probe.all_predictions == fs.labels, "right", "wrong")
        frame["confidence"] = probe.all_confidence
        frame["split"] = probe.split(len(frame))
    if fitted is not None:
        frame["fitted"] = np.where(fitted, "fitted", "placed")
    if issues is not None:
        frame["issue"] = issues
    if selected is not None:
        frame["selected"] = frame["row"].isin(np.asarray(selected, dtype=int))
    return frame


def selection_counts(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Per class: how many are selected, of how many, and how many of those the probe got wrong."""
    chosen = frame.loc[frame["row"].isin(rows)]
    counts = pd.DataFrame({"selected": chosen["class"].value_counts(), "in dataset": frame["class"].value_counts()})
    counts = counts.fillna(0).astype(int).query("selected > 0").sort_values("selected", ascending=False)
    counts["share of class"] = (counts["selected"] / counts["in dataset"]).map("{:.0%}".format)
    if "correct" in chosen:
        wrong = chosen.loc[chosen["correct"] == "wrong", "class"].value_counts()
        counts["probe wrong"] = wrong.reindex(counts.index).fillna(0).astype(int)
    return counts.rename_axis("class")


def stratified_sample(rows: np.ndarray, labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to n of `rows`, spread over their classes in proportion (each class at least one), seeded.

    A gallery of "the first 60 by row number" shows whatever class happens to come first in the data.
    """
    rows = np.asarray(rows, dtype=int)
    if len(rows) <= n:
        return rows
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels[rows], return_counts=True)
    quota = np.maximum(1, np.floor(counts * n / len(rows))).astype(int)
    while quota.sum() > n:  # more classes than places: the largest classes give one back first
        quota[np.argmax(quota)] -= 1
    spare = n - quota.sum()
    for i in np.argsort(-(counts * n / len(rows) - quota), kind="stable")[:spare]:
        quota[i] += 1
    picked = [rng.choice(rows[labels[rows] == c], size=min(q, k), replace=False)
              for c, q, k in zip(classes, quota, counts) if q > 0]
    return np.sort(np.concatenate(picked))


def disagreement_frame(result: CompareResult, rows: np.ndarray) -> pd.DataFrame:
    """Per image: neighbour agreement between A and B and the share of same-class neighbours in each."""
    c, labels = result.comparison, result.a.labels
    names = np.asarray(result.a.class_names)
    return pd.DataFrame({"image": rows, "id": np.asarray(result.a.ids)[rows], "class": names[labels[rows]],
                         "agreement": c.agreement[rows], "same class in A": c.same_class_a[rows],
                         "same class in B": c.same_class_b[rows]})


def _method_rows(run: dict) -> list[tuple[str, str, float, float | None, dict]]:
    """(method, its label, accuracy, compute seconds, per-image metrics) of one lab run; the probes run carries k-NN
    too (its per-image metrics prefixed "knn_")."""
    metrics = run["metrics"] or {}
    method = metrics.get("method")
    if method not in METHOD_LABELS or metrics.get("test_accuracy") is None:
        return []
    label = M_("{method} ({mode})", method=METHOD_LABELS[method], mode=metrics["mode"]) if method == "finetune" else \
        METHOD_LABELS[method]
    seconds = metrics.get("method_seconds")  # the compute time behind the number, also when read from a cache
    rows = [(method, label, metrics["test_accuracy"], seconds, _per_image(metrics))]
    if method == "linear-probe" and metrics.get("knn_accuracy") is not None:
        knn = _per_image(metrics, "knn_")
        knn["n_test"] = knn["n_test"] or metrics.get("n_test")  # k-NN tests on the probe's split
        rows.append(("knn", METHOD_LABELS["knn"], metrics["knn_accuracy"], metrics.get("knn_seconds"), knn))
    return rows


def _per_image(metrics: dict, prefix: str = "") -> dict:
    return {key: metrics.get(prefix + key) for key in ("n_test", "test_split", "test_correct")}


def compare_frame(runs: list[dict]) -> pd.DataFrame:
    """Latest finished run per method (runs come newest first), one row each, with the size it ran at, Wilson's 95 %
    interval ("ci95 low", "ci95 high"; empty where the run did not record its number of test images) and the per-image
    results that `compare_pairs` pairs ("test_split", "test_correct": not for display)."""
    rows, seen = [], set()
    for run in runs:
        metrics = run["metrics"] or {}
        size = metrics.get("image_size") or ((run["config"] or {}).get("extraction") or {}).get("image_size")
        for method, name, accuracy, seconds, images in _method_rows(run):
            if name in seen:
                continue
            seen.add(name)
            cached = bool(metrics.get("from_cache"))
            timing = M_("time unknown") if seconds is None else M_("{seconds:.0f} s", seconds=seconds)
            timing = M_("{timing} (cached)", timing=timing) if cached else timing
            size_text = M_("{size}×{size} grey pixels", size=size) if method == "pixels" else M_("{size}px", size=size)
            low, high = interval(accuracy, images["n_test"]) or (None, None)
            shown = f"{accuracy:.1%}" + ("" if low is None else f" ({interval_text(low, high)})")
            stopped = stopped_early_text(metrics) if method == "finetune" else ""
            rows.append({"method": name, "kind": method, "test accuracy": accuracy, "ci95 low": low,
                         "ci95 high": high, "n_test": images["n_test"], "image size": size,
                         "seconds": None if seconds is None else round(seconds, 1), "from cache": cached,
                         "stopped early": stopped,
                         "label": " · ".join(filter(None, [shown, size_text, timing, stopped])), "run": run["id"],
                         "test_split": images["test_split"], "test_correct": images["test_correct"]})
    return pd.DataFrame(rows)


def stopped_early(metrics: dict) -> tuple[int | None, int | None] | None:
    """(the epoch a fine-tune was stopped in, of how many it was set to run) for a run cancelled part-way, which keeps
    and scores its best weights so far (flows.lab.run_finetune); None for a run that finished. Either number is None
    for a run recorded before they were kept."""
    if not metrics.get("stopped_early"):
        return None
    return metrics.get("stopped_epoch"), metrics.get("epochs")


def stopped_early_text(metrics: dict) -> str:
    """'stopped early at epoch 2 of 6' for a cancelled fine-tune; '' for one that ran to its end."""
    stop = stopped_early(metrics)
    if stop is None:
        return ""
    epoch, epochs = stop
    if epoch is None or not epochs:
        return M_("stopped early")
    return M_("stopped early at epoch {epoch} of {epochs}", epoch=max(epoch, 1), epochs=epochs)


def finetune_settings(config: dict) -> dict:
    """A fine-tune's own settings from its job record (flows.lab.job_config), as the Jobs page lists them: empty for
    any other run (or one recorded before they were kept)."""
    ft = config.get("finetune") or {}
    if not ft:
        return {}
    return {"mode": ft.get("mode"), "epochs": ft.get("epochs"), "lr_head": ft.get("lr_head"),
            "lr_backbone": ft.get("lr_backbone"), "batch_size": ft.get("batch_size"), "image_size": ft.get("image_size")}


def compare_pairs(frame: pd.DataFrame) -> list[MethodPair]:
    """The most accurate method in a compare_frame against each other one: McNemar's exact test on their shared test
    images, or why there is none."""
    return [] if frame.empty else best_pairs(frame.to_dict("records"))


def mixed_sizes(frame: pd.DataFrame) -> list[int]:
    """The distinct image sizes the backbone methods ran at; more than one means bars are not like for like.

    The raw-pixel baseline is 32 x 32 grey by design and says so on its bar, so it does not count.
    """
    if frame.empty:
        return []
    sizes = frame.loc[frame["kind"] != "pixels", "image size"].dropna()
    return sorted({int(s) for s in sizes})


def title_parts(title: str, kind: str) -> dict[str, str]:
    """A run title split into short columns: what ran, on which model (weights), which data, at which size.

    Titles read "[what · ]model (weights) on data @ size", or "A @ size vs B @ size on data" for a
    comparison; anything else keeps its text under "data".
    """
    what, _, source = title.rpartition(" · ")
    parts = {"what": what or kind, "model (weights)": "", "data": source, "size": ""}
    if match := re.fullmatch(r"(.+ vs .+) on (.+)", source):
        parts.update({"model (weights)": match[1], "data": match[2]})
    elif match := re.fullmatch(r"(.+?) on (.+) @ (\S+)", source):
        parts.update({"model (weights)": match[1], "data": match[2], "size": match[3]})
    return parts

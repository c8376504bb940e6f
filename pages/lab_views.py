"""Charts and galleries for the probe-vs-fine-tune lab (the page itself says what goes where)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages.common import gallery
from ptm_core.configs import DatasetConfig
from ptm_core.lab import METHOD_LABELS
from ptm_core.probes import confident_mistakes, confusion, per_class_accuracy

MARGINS = {"l": 10, "r": 10, "t": 40, "b": 10}


def per_class_chart(labels: np.ndarray, class_names: list[str], results: dict) -> go.Figure:
    rows = []
    for method, result in results.items():
        accuracy = per_class_accuracy(labels[result.test_indices], result.predictions, len(class_names))
        rows += [{"class": c, "accuracy": a, "method": method} for c, a in zip(class_names, accuracy)]
    fig = px.bar(pd.DataFrame(rows), x="class", y="accuracy", color="method", barmode="group", height=300,
                 title="Per-class test accuracy", range_y=[0, 1])
    return fig.update_layout(margin=MARGINS)


def confusion_chart(matrix: np.ndarray, class_names: list[str], title: str) -> go.Figure:
    fig = px.imshow(matrix, x=class_names, y=class_names, text_auto=True, color_continuous_scale="Blues",
                    labels={"x": "predicted", "y": "true", "color": "images"}, title=title, height=420)
    return fig.update_layout(margin=MARGINS)


def confusion_explorer(dataset_config: DatasetConfig, labels: np.ndarray, class_names: list[str], result,
                       name: str) -> None:
    """A confusion matrix whose cells open as galleries (pick the cell below the matrix)."""
    y_true = labels[result.test_indices]
    st.plotly_chart(confusion_chart(confusion(y_true, result.predictions, len(class_names)), class_names,
                                    f"Confusion matrix — {name}"), width="stretch", key=f"confusion-{name}")
    cols = st.columns(2)
    true = cols[0].selectbox("True class", range(len(class_names)), format_func=class_names.__getitem__,
                             key=f"cell-true-{name}")
    wrong = [c for c in range(len(class_names)) if c != true]
    predicted = cols[1].selectbox("Predicted as", [true] + wrong, index=1 if wrong else 0,
                                  format_func=class_names.__getitem__, key=f"cell-pred-{name}")
    hits = np.flatnonzero((y_true == true) & (result.predictions == predicted))
    st.caption(f"{len(hits)} test images of class {class_names[true]} predicted as {class_names[predicted]}")
    gallery(dataset_config, result.test_indices[hits[:24]], [f"#{i}" for i in result.test_indices[hits[:24]]])


def mistakes_gallery(dataset_config: DatasetConfig, labels: np.ndarray, class_names: list[str], result) -> None:
    if getattr(result, "probabilities", None) is None:
        st.caption("This result has no probabilities to rank mistakes by.")
        return
    positions = confident_mistakes(labels[result.test_indices], result.probabilities, top=16)
    indices = result.test_indices[positions]
    captions = [f"true {class_names[labels[i]]} → {class_names[result.predictions[p]]} "
                f"({result.probabilities[p].max():.0%})" for i, p in zip(indices, positions)]
    gallery(dataset_config, indices, captions, empty="No mistakes at all.")


def sweep_chart(val_curve) -> go.Figure:
    frame = pd.DataFrame(val_curve, columns=["C", "validation accuracy"])
    fig = px.line(frame, x="C", y="validation accuracy", markers=True, log_x=True, height=260,
                  title="Linear probe: validation accuracy vs C")
    return fig.update_layout(margin=MARGINS)


def curves_chart(runs: list[tuple[str, dict]]) -> go.Figure:
    """Training loss and validation accuracy of one or several fine-tune runs, overlaid."""
    fig = go.Figure()
    for name, metrics in runs:
        train = pd.DataFrame(metrics.get("train_curve") or [])
        val = pd.DataFrame(metrics.get("val_curve") or [])
        if not train.empty:
            fig.add_scatter(x=train["step"], y=train["train_loss"], name=f"{name} · train loss", mode="lines")
        if not val.empty:
            fig.add_scatter(x=val["step"], y=val["val_accuracy"], name=f"{name} · val accuracy",
                            mode="lines+markers", yaxis="y2")
    fig.update_layout(height=360, margin=MARGINS, xaxis_title="step", yaxis_title="train loss (smoothed)",
                      yaxis2={"title": "validation accuracy", "overlaying": "y", "side": "right", "range": [0, 1],
                              "tickformat": ".0%", "showgrid": False},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def compare_chart(frame: pd.DataFrame) -> go.Figure:
    fig = px.bar(frame, x="method", y="test accuracy", text="label", height=380, range_y=[0, 1.05],
                 hover_data=["seconds"], title="Test accuracy per method (same split); labels show wall time")
    fig.update_traces(textposition="outside")
    return fig.update_layout(margin=MARGINS)


def compare_frame(runs: list[dict]) -> pd.DataFrame:
    """Latest finished run per method from the store, one row each."""
    rows, seen = [], set()
    for run in runs:  # newest first
        metrics = run["metrics"] or {}
        method = metrics.get("method")
        if method not in METHOD_LABELS:
            continue
        label = METHOD_LABELS[method] + (f" ({metrics['mode']})" if method == "finetune" else "")
        entries = [(label, metrics["test_accuracy"])]
        if method == "linear-probe" and metrics.get("knn_accuracy") is not None:
            entries.append((METHOD_LABELS["knn"], metrics["knn_accuracy"]))
        for name, accuracy in entries:
            if name in seen:
                continue
            seen.add(name)
            seconds = metrics.get("knn_seconds") if name == METHOD_LABELS["knn"] else metrics.get("method_seconds")
            rows.append({"method": name, "test accuracy": accuracy, "seconds": round(seconds or 0, 1),
                         "label": f"{accuracy:.1%} · {seconds or 0:.0f} s", "run": run["id"]})
    return pd.DataFrame(rows)


def efficiency_chart(rows: list[dict]) -> go.Figure:
    frame = pd.DataFrame(rows)
    frame["labels per class"] = frame["k"].astype(str)
    fig = px.line(frame, x="labels per class", y="mean", error_y="std", color="method", markers=True, height=360,
                  title="Label efficiency: test accuracy vs labelled images per class (mean ± std, 3 seeds)")
    return fig.update_layout(margin=MARGINS, yaxis_title="test accuracy")


def layers_chart(rows: list[dict]) -> go.Figure:
    frame = pd.DataFrame(rows)
    fig = px.line(frame, x="name", y="test_accuracy", markers=True, height=320, hover_data=["dim", "best_C"],
                  title="Linear-probe accuracy from each stage (pooled), shallow → deep")
    return fig.update_layout(margin=MARGINS, xaxis_title="stage", yaxis_title="test accuracy")


def drift_charts(result: dict) -> None:
    names = np.asarray(result["class_names"])[result["labels"]]
    cols = st.columns(2)
    for col, (title, coords) in zip(cols, result["maps"].items()):
        frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "class": names})
        fig = px.scatter(frame, x="x", y="y", color="class", render_mode="webgl", height=420,
                         title=f"Features {title} fine-tuning", category_orders={"class": result["class_names"]})
        fig.update_traces(marker={"size": 4})
        col.plotly_chart(fig.update_layout(margin=MARGINS, showlegend=False), width="stretch", key=f"drift-{title}")

"""Charts and galleries for the probe-vs-fine-tune lab (the page itself says what goes where)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages.ui.gallery import gallery
from pages.ui.i18n import _, N_, show_chart
from pages.ui.intervals import test_sentence
from pages.ui.maps import PALETTE
from pages.ui.text import md, plot_text
from ptm_core.base import DatasetConfig, PairedTest
from ptm_core.flows import confident_mistakes, confusion, interval_text, per_class_accuracy

MARGINS = {"l": 10, "r": 10, "t": 40, "b": 10}
LOSS_SMOOTHING = N_("the mean of the last steps (a tenth of the run, 3-50 steps), exact from the first step; a rise "
                    "early on is the learning rate warming up")
# The drift job's maps are keyed "before" and "after" (the lab flow's run_drift).
# The engine's method keys as a reader names them ("logreg/knn" read as jargon in a legend).
METHOD_NAMES = {"logreg": N_("linear probe"), "knn": N_("k-NN"), "finetune": N_("fine-tune")}
DRIFT_TITLES = {"before": N_("Features before fine-tuning"), "after": N_("Features after fine-tuning")}
DRIFT_CAPTIONS = {"before": N_("PCA of the features before fine-tuning · {produced_by}"),
                  "after": N_("PCA of the features after fine-tuning · {produced_by}")}


def per_class_chart(labels: np.ndarray, class_names: list[str], results: dict, produced_by: str) -> go.Figure:
    rows = []
    for method, result in results.items():
        accuracy = per_class_accuracy(labels[result.test_indices], result.predictions, len(class_names))
        rows += [{"class": c, "accuracy": a, "method": method} for c, a in zip(class_names, accuracy)]
    fig = px.bar(pd.DataFrame(rows), x="class", y="accuracy", color="method", barmode="group", height=300,
                 title=_("Per-class test accuracy · {produced_by}").format(produced_by=plot_text(produced_by)), range_y=[0, 1],
                 color_discrete_sequence=PALETTE,
                 labels={"class": _("class"), "accuracy": _("accuracy"), "method": _("method")})
    # Class names such as 0-9 are categories, not numbers: every one gets its own labelled tick.
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=class_names)
    return fig.update_layout(margin=MARGINS, yaxis_tickformat=".0%")


def confusion_chart(matrix: np.ndarray, class_names: list[str], title: str) -> go.Figure:
    fig = px.imshow(matrix, x=class_names, y=class_names, text_auto=True, color_continuous_scale="Blues",
                    labels={"x": _("predicted"), "y": _("true"), "color": _("images")}, title=title, height=460)
    fig.update_xaxes(type="category", side="bottom", tickmode="array", tickvals=class_names)
    fig.update_yaxes(type="category", tickmode="array", tickvals=class_names)
    return fig.update_layout(margin=MARGINS)


def largest_confusion(matrix: np.ndarray) -> tuple[int, int]:
    """The (true, predicted) cell with the most mistakes; the first diagonal cell when there are none."""
    off = matrix.astype(float).copy()
    np.fill_diagonal(off, -1)
    true, predicted = np.unravel_index(int(np.argmax(off)), off.shape)
    return (int(true), int(predicted)) if off[true, predicted] > 0 else (0, 0)


def confusion_explorer(dataset_config: DatasetConfig, labels: np.ndarray, class_names: list[str], result,
                       name: str, produced_by: str, feature_ids: list[str]) -> None:
    """A confusion matrix whose cells open as galleries; it opens on the cell with the most mistakes."""
    y_true = labels[result.test_indices]
    matrix = confusion(y_true, result.predictions, len(class_names))
    title = _("Confusion matrix — {method} · {produced_by}").format(method=_(name), produced_by=plot_text(produced_by))
    show_chart(confusion_chart(matrix, class_names, title),
                    width="stretch", key=f"confusion-{name}")
    worst = largest_confusion(matrix)
    cols = st.columns(2)
    true = cols[0].selectbox(_("True class"), range(len(class_names)), index=worst[0],
                             format_func=class_names.__getitem__, key=f"cell-true-{name}")
    others = [c for c in range(len(class_names)) if c != true]
    # Within the true class, open on its most frequent wrong prediction.
    ranked = sorted(others, key=lambda c: -matrix[true, c])
    options = ranked + [true]
    predicted = cols[1].selectbox(_("Predicted as"), options, index=0, format_func=class_names.__getitem__,
                                  key=f"cell-pred-{name}-{true}")
    hits = np.flatnonzero((y_true == true) & (result.predictions == predicted))
    st.caption(_("{n} test images of class {true} predicted as {predicted}").format(
        n=len(hits), true=md(class_names[true]), predicted=md(class_names[predicted])))
    gallery(dataset_config, result.test_indices[hits[:24]], [f"#{i}" for i in result.test_indices[hits[:24]]],
            feature_ids=feature_ids)


def mistakes_gallery(dataset_config: DatasetConfig, labels: np.ndarray, class_names: list[str], result,
                     feature_ids: list[str]) -> None:
    if getattr(result, "probabilities", None) is None:
        st.caption(_("This result has no probabilities to rank mistakes by."))
        return
    positions = confident_mistakes(labels[result.test_indices], result.probabilities, top=16)
    indices = result.test_indices[positions]
    caption = _("true {true} → {predicted} (p {p})")
    captions = [caption.format(true=class_names[labels[i]], predicted=class_names[result.predictions[p]],
                               p=probability_text(result.probabilities[p].max())) for i, p in zip(indices, positions)]
    gallery(dataset_config, indices, captions, feature_ids=feature_ids, empty=_("No mistakes at all."))


def probability_text(p: float) -> str:
    """Two decimals of a percentage, never a rounded-up '100.00%' for a probability short of 1."""
    return f"{p:.2%}" if p < 0.99995 else "> 99.99%"


def percent_axis(fig: go.Figure, values) -> go.Figure:
    """A percent y axis whose ticks never repeat: whole percents hide steps under a point ("92%, 92%"), so a range
    narrower than 8 points gets a decimal."""
    values = [v for v in np.ravel(np.asarray(values, dtype=float)) if np.isfinite(v)]
    narrow = bool(values) and max(values) - min(values) < 0.08
    return fig.update_layout(yaxis_tickformat=".1%" if narrow else ".0%")


def wrapped_title(text: str, produced_by: str) -> str:
    """A chart title on two lines, what it shows over what produced it: one line was cut at "@ 128p"."""
    return f"{text}<br><sup>{plot_text(produced_by)}</sup>"


def sweep_chart(probe, produced_by: str) -> go.Figure:
    """Validation accuracy against C (log x) with Wilson's 95 % interval at each point (on the validation images), the
    chosen C as a dotted line and the argmax as a star; with the one-SE rule, the bar it set as a dashed line."""
    frame = pd.DataFrame(probe.val_curve, columns=["C", "validation accuracy"])
    error = {}
    if intervals := probe.val_curve_ci95:  # none for a result that did not record its n_val
        low, high = np.array(intervals).T
        frame = frame.assign(above=high - frame["validation accuracy"], below=frame["validation accuracy"] - low)
        error = {"error_y": "above", "error_y_minus": "below"}
    fig = px.line(frame, x="C", y="validation accuracy", markers=True, log_x=True, height=300, **error,
                  labels={"validation accuracy": _("validation accuracy")},
                  title=wrapped_title(_("Linear probe: validation accuracy vs C"), produced_by))
    fig.add_vline(x=probe.best_C, line_dash="dot")
    # Placed by hand: on a log axis plotly puts a vline's own annotation at x = C on the exponent scale.
    fig.add_annotation(x=np.log10(probe.best_C), y=1, xref="x", yref="paper", text=_("chosen C"), showarrow=False,
                       xanchor="left", yanchor="bottom")
    if probe.best_val_C is not None:
        best = dict(probe.val_curve)[probe.best_val_C]
        fig.add_scatter(x=[probe.best_val_C], y=[best], mode="markers", name=_("best validation accuracy"),
                        marker={"symbol": "star", "size": 14, "color": PALETTE[1]})
        if probe.c_rule == "one-se" and probe.val_se:
            fig.add_hline(y=best - probe.val_se, line_dash="dash", line_width=1,
                          annotation_text=_("one standard error below the best"), annotation_position="bottom right")
    low_high = np.array(intervals).ravel() if intervals else []
    percent_axis(fig, [*frame["validation accuracy"], *low_high])
    return fig.update_layout(margin=MARGINS, legend={"orientation": "h", "y": -0.3})


def sweep_caption(probe) -> str:
    """How C was chosen, in words: the rule, the standard error, and whether the sweep went past the grid."""
    if not probe.c_rule or not probe.n_val or probe.best_val_C is None:
        return ""  # a result from before the probe recorded its rule
    values = {"C": f"{probe.best_C:g}", "best_C": f"{probe.best_val_C:g}", "n": f"{probe.n_val:,}",
              "best": f"{dict(probe.val_curve)[probe.best_val_C]:.1%}", "se": f"{100 * (probe.val_se or 0):.1f}"}
    if probe.c_rule != "one-se":
        text = _("C = {C} has the best validation accuracy, {best} on {n} validation images.")
    elif probe.best_C != probe.best_val_C:
        text = _("One-standard-error rule: C = {C} is the smallest C whose validation accuracy is within one standard "
                 "error ({se} points) of the best, {best} at C = {best_C} on {n} validation images. The curve is flat "
                 "within its own noise there, so the stronger regularisation is kept.")
    else:
        text = _("One-standard-error rule: C = {C} has the best validation accuracy, {best} on {n} validation images, "
                 "and no smaller C comes within one standard error ({se} points) of it.")
    parts = [text.format(**values)]
    if probe.extended_Cs:
        Cs = ", ".join(f"{c:g}" for c in probe.extended_Cs)
        parts.append((_("The choice sat on an edge of the grid, so the sweep went on to C = {Cs} and stopped at its "
                        "limit with the choice still on the edge.") if probe.at_limit else
                      _("The choice sat on an edge of the grid, so the sweep went on to C = {Cs}.")).format(Cs=Cs))
    parts.append(_("Error bars: each point's Wilson 95 % CI on the validation images."))
    return " ".join(parts)


def curves_chart(runs: list[tuple[str, dict]]) -> go.Figure:
    """Training loss and validation accuracy of one or several fine-tune runs, overlaid."""
    fig = go.Figure()
    train_name, val_name = _("{name} · train loss"), _("{name} · val accuracy")
    for name, metrics in runs:
        train = pd.DataFrame(metrics.get("train_curve") or [])
        val = pd.DataFrame(metrics.get("val_curve") or [])
        if not train.empty:
            fig.add_scatter(x=train["step"], y=train["train_loss"], name=train_name.format(name=name), mode="lines")
        if not val.empty:
            fig.add_scatter(x=val["step"], y=val["val_accuracy"], name=val_name.format(name=name),
                            mode="lines+markers", yaxis="y2")
    fig.update_layout(height=360, margin=MARGINS, xaxis_title=_("step"), yaxis_title=_("train loss (smoothed)"),
                      yaxis2={"title": _("validation accuracy"), "overlaying": "y", "side": "right", "range": [0, 1],
                              "tickformat": ".0%", "tickmode": "linear", "tick0": 0, "dtick": 0.2,
                              "showgrid": False},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def compare_chart(frame: pd.DataFrame, produced_by: str) -> go.Figure:
    """Each method's accuracy with its Wilson 95 % interval as an error bar (none where the run lacks its n)."""
    low, high = frame["ci95 low"].astype(float), frame["ci95 high"].astype(float)  # None (unknown n) as NaN
    frame = frame.assign(above=high - frame["test accuracy"], below=frame["test accuracy"] - low)
    fig = px.bar(frame, x="method", y="test accuracy", text="label", height=400, range_y=[0, 1.08],
                 error_y="above", error_y_minus="below",
                 hover_data=["image size", "seconds", "from cache"],
                 title=_("Test accuracy per method, same split · {produced_by}").format(produced_by=plot_text(produced_by)),
                 labels={"method": _("method"), "test accuracy": _("test accuracy"), "image size": _("image size"),
                         "seconds": _("seconds"), "from cache": _("from cache")})
    # The text inside each bar, at its foot: above it, it would sit under the error bar.
    fig.update_traces(textposition="inside", insidetextanchor="start", marker_color=PALETTE[0])
    return fig.update_layout(margin=MARGINS, yaxis_tickformat=".0%")


def _interval_columns(frame: pd.DataFrame, value: str, bounds: str) -> pd.DataFrame:
    """A list column of [low, high] intervals as error-bar lengths ("above", "below") and text ("95% CI"); a row
    without one (recorded before intervals were kept) gets no bar and "—"."""
    pairs = [b if isinstance(b, (list, tuple)) and len(b) == 2 else (np.nan, np.nan)
             for b in (frame[bounds] if bounds in frame else [None] * len(frame))]
    low, high = (np.array([p[i] for p in pairs], dtype=float) for i in (0, 1))
    text = [interval_text(lo, hi) if hi == hi else "—" for lo, hi in zip(low, high)]
    return frame.assign(above=high - frame[value], below=frame[value] - low, **{"95% CI": text})


# The label-efficiency methods (ptm_core.evals.label_efficiency) in the legend's words.
EFFICIENCY_METHODS = {"logreg": N_("linear probe"), "knn": N_("k-NN"), "finetune": N_("fine-tune")}


def efficiency_frame(rows: list[dict]) -> pd.DataFrame:
    """Label-efficiency rows with the budget as text ("1", ..., "all"): one column type for Arrow and the axis; each
    mean's 95 % interval as error-bar lengths and text, and how many draws it is a mean of."""
    frame = pd.DataFrame(rows)
    if "method" in frame:
        frame["method"] = [_(EFFICIENCY_METHODS[m]) if m in EFFICIENCY_METHODS else m for m in frame["method"]]
    budget = frame["budget"] if "budget" in frame else frame["k"]
    frame["labels per class"] = budget.astype(str)
    if "draws" not in frame:
        frame["draws"] = [len(a) if isinstance(a, list) else 1 for a in frame.get("accuracies", [None] * len(frame))]
    return _interval_columns(frame, "mean", "ci95")


def efficiency_table(rows: list[dict]) -> pd.DataFrame:
    """The rows as the user reads them: budget, method, mean, its 95 % interval as text, and the draws behind it."""
    frame = efficiency_frame(rows)[["labels per class", "method", "mean", "95% CI", "draws"]]
    frame["method"] = frame["method"].map(lambda m: _(METHOD_NAMES[m]) if m in METHOD_NAMES else m)
    return frame.rename(columns={"labels per class": _("labels per class"), "method": _("method"),
                                 "mean": _("mean"), "95% CI": _("95 % CI"), "draws": _("draws")})


def efficiency_chart(rows: list[dict], produced_by: str) -> go.Figure:
    frame = efficiency_frame(rows)
    frame["method"] = frame["method"].map(lambda m: _(METHOD_NAMES[m]) if m in METHOD_NAMES else m)
    fig = px.line(frame, x="labels per class", y="mean", error_y="above", error_y_minus="below", color="method",
                  markers=True, height=380, color_discrete_sequence=PALETTE,
                  hover_data={"95% CI": True, "draws": True, "above": False, "below": False},
                  labels={"labels per class": _("labels per class"), "method": _("method"), "mean": _("mean"),
                          "95% CI": _("95 % CI"), "draws": _("draws")},
                  title=wrapped_title(_("Label efficiency: test accuracy vs labelled images per class (mean and "
                                        "95 % CI over draws)"), produced_by))
    # "all" is a budget like the others: a category axis plots it (a numeric axis silently drops it).
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(dict.fromkeys(frame["labels per class"])))
    percent_axis(fig, [*frame["mean"], *(frame["mean"] + frame["above"]), *(frame["mean"] - frame["below"])])
    return fig.update_layout(margin=MARGINS, yaxis_title=_("test accuracy"))


def layers_chart(rows: list[dict], produced_by: str) -> go.Figure:
    """Each stage's probe accuracy with Wilson's 95 % interval on the test split as an error bar."""
    frame = _interval_columns(pd.DataFrame(rows), "test_accuracy", "test_accuracy_ci95")
    if "n_test" not in frame:
        frame["n_test"] = None
    fig = px.line(frame, x="name", y="test_accuracy", markers=True, height=320, error_y="above", error_y_minus="below",
                  hover_data={"95% CI": True, "n_test": True, "dim": True, "best_C": True, "above": False,
                              "below": False},
                  labels={"95% CI": _("95 % CI (Wilson)"), "n_test": _("test images"), "test_accuracy": _("test accuracy"),
                          "name": _("stage")},
                  title=wrapped_title(_("Linear-probe accuracy from each stage (pooled), shallow → deep"), produced_by))
    fig.update_xaxes(type="category")
    percent_axis(fig, [*frame["test_accuracy"], *(frame["test_accuracy"] + frame["above"]),
                       *(frame["test_accuracy"] - frame["below"])])
    return fig.update_layout(margin=MARGINS, xaxis_title=_("stage"), yaxis_title=_("test accuracy"))


def drift_charts(result: dict, produced_by: str) -> None:
    names = np.asarray(result["class_names"])[result["labels"]]
    cols = st.columns(2)
    for col, (title, coords) in zip(cols, result["maps"].items()):
        frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "class": names})
        fig = px.scatter(frame, x="x", y="y", color="class", render_mode="webgl", height=420,
                         color_discrete_sequence=PALETTE, labels={"x": "PCA 1", "y": "PCA 2"},
                         title=_(DRIFT_TITLES[title]),
                         category_orders={"class": result["class_names"]})
        fig.update_traces(marker={"size": 4})
        show_chart(fig.update_layout(margin=MARGINS, showlegend=False), where=col, width="stretch", key=f"drift-{title}")
        col.caption(_(DRIFT_CAPTIONS[title]).format(produced_by=md(produced_by)))


def inner_layer_caption(comparison: dict | None) -> str:
    """When an inner layer scores above the final pooled features: by how much, and whether McNemar's test on the
    same test images supports it (a higher score alone may be noise)."""
    if not comparison:
        return ""
    test = PairedTest(**{f.name: comparison[f.name] for f in dataclasses.fields(PairedTest)})
    inner, final = md(comparison["inner"]), md(comparison["final"])
    head = _("An inner layer scores higher than the final features: {inner} {a} vs {final} {b}.").format(
        inner=inner, final=final, a=f"{test.a_accuracy:.1%}", b=f"{test.b_accuracy:.1%}")
    return head + " " + test_sentence(inner, final, test)

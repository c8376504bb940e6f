"""The tour's building blocks: a step that runs as a job, and the figures its steps show."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages.ui.i18n import _, show_chart, style_figure
from pages.ui.intervals import accuracy_metric, p_text, test_sentence
from pages.ui.job_views import duration_text, format_seconds, job_panel, live_job
from pages.ui.maps import PALETTE
from pages.ui.services import job_manager
from pages.ui.text import md
from ptm_core.base import PairedTest
from ptm_core.flows import (DONE, FINISHED, ContrastResult, EfficiencyClaim, EfficiencyPoint, Job, JobSpec, LessonResult,
                            ZooResult, interval_text)


def kind_labels() -> dict[str, str]:
    return {"pixels": _("Raw pixels"), "random": _("Random-init backbone"), "pretrained": _("Pretrained backbone")}


def estimate_text(seconds: float) -> str:
    if seconds < 5:
        return _("a few seconds")
    return _("about {time}").format(time=duration_text(seconds))


def tour_step(number: int, spec: JobSpec, *, estimate: float,
              live_extra: Callable[[Job], None] | None = None) -> Job | None:
    """Its button (with the time estimate) until it has run; then its live progress; the done job when it is."""
    manager = job_manager()
    job = manager.attach(spec)
    if job is None:
        label = _("Run step {n} ({estimate} the first time)").format(n=number, estimate=estimate_text(estimate))
        if st.button(label, key=f"tour-run-{number}", type="primary" if number == 2 else "secondary",
                     icon=":material/play_arrow:"):
            manager.attach(spec, start=True)
            st.rerun()  # the page redrawn without the button, the step's progress in its place
    if job is None:
        return None
    status = job.status
    if status == DONE:
        return job
    if status in FINISHED:
        job_panel(job)
        if st.button(_("Run step {n} again").format(n=number), key=f"tour-rerun-{number}"):
            manager.start(spec)
            st.rerun()
        return None
    live_job(job.id, live_extra)
    return None


def contrast_map(result: ContrastResult, kind: str) -> go.Figure:
    coords = result.row(kind).coords
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1],
                          "class": [result.class_names[i] for i in result.labels]})
    fig = px.scatter(frame, x="x", y="y", color="class", render_mode="webgl", color_discrete_sequence=PALETTE,
                     category_orders={"class": result.class_names}, height=330)
    fig.update_xaxes(showticklabels=False, title=None).update_yaxes(showticklabels=False, title=None)
    fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0}, legend_title_text="", showlegend=kind == "pretrained")
    return style_figure(fig, marker_size=4)


def contrast_metrics(rows: list[dict]) -> None:
    """One accuracy per feature kind with its interval, each saying what produced it; also while the step runs."""
    labels = kind_labels()
    for column, row in zip(st.columns(3), rows):
        accuracy_metric(column, labels[row["kind"]], row["accuracy"], row["n_test"],
                        _("Linear-probe test accuracy on {n} held-out images.").format(n=f"{row['n_test']:,}"))
        column.caption(md(row["produced_by"]) + (f" · {format_seconds(row['seconds'])}" if row.get("seconds") else ""))


def contrast_notice(result, data_key: str) -> str:
    """Step 2's or 3's lesson, worded by McNemar's test of pretrained against each other kind (not by the values)."""
    accuracy = {row.kind: f"{row.accuracy:.1%}" for row in result.rows}
    names = kind_labels()
    tests = result.tests
    if data_key == "shapes":
        if all(tests[kind].verdict == "a" for kind in ("random", "pixels")):
            return _("Notice: only the pretrained features separate the shapes ({pre} vs {rnd} and {pix}; McNemar's "
                     "test on the same {n} test images: {p_rnd} and {p_pix}); they ignore texture, colour and "
                     "position because ImageNet taught them to.").format(
                pre=accuracy["pretrained"], rnd=accuracy["random"], pix=accuracy["pixels"],
                n=f"{tests['pixels'].n_test:,}", p_rnd=p_text(tests["random"].p_value),
                p_pix=p_text(tests["pixels"].p_value))
        return " ".join(test_sentence(names["pretrained"], names[kind], tests[kind]) for kind in ("random", "pixels"))
    test = tests["pixels"]
    values = {"pre": accuracy["pretrained"], "pix": accuracy["pixels"], "n": f"{test.n_test:,}",
              "p": p_text(test.p_value)}
    if test.verdict == "a":
        return _("Notice: pretrained features beat pixels ({pre} vs {pix}, {p} on {n} test images), though grey "
                 "digits look nothing like ImageNet photos and centred digits are easy for pixels (domain shift)."
                 ).format(**values)
    return _("Notice: on digits, pretraining is not shown to help: {sentence} Grey digits look nothing like ImageNet "
             "photos, and centred digits are easy for pixels (domain shift).").format(
        sentence=test_sentence(names["pretrained"], names["pixels"], test))


def efficiency_notice(claim: EfficiencyClaim, name: str, draws: int) -> str:
    """What the curves of one dataset say, by Welch's t-test over the draws: the fewest labels where pretrained wins."""
    values = {"data": name, "most": claim.most, "a": f"{claim.test.a_mean:.1%}", "b": f"{claim.test.b_mean:.1%}",
              "p": p_text(claim.test.p_value), "draws": draws}
    if claim.k is None:
        return _("On {data}, pretrained features are not shown to beat pixels with {most} labels per class at any "
                 "budget up to {most} (with {most} each: {a} vs {b}; Welch's t-test over {draws} draws, "
                 "{p}).").format(**values)
    return _("On {data}, pretrained features with {k} labels per class beat pixels with {most} ({a} vs {b}; Welch's "
             "t-test over {draws} draws, {p}).").format(k=claim.k, **values)


def finetune_notice(result, test: PairedTest) -> str:
    """Step 5's lesson, worded by McNemar's test of LP-FT against the frozen probe it started from."""
    sentence = test_sentence(_("LP-FT"), _("the frozen probe"), test)
    gain = f"{(result.test_accuracy - result.lp_test_accuracy) * 100:+.1f}"
    if test.verdict == "a":
        notice = _("Notice: adapting the backbone added {gain} points to the frozen features. {sentence}")
    elif test.verdict == "b":
        notice = _("Notice: with this little training, adapting lost {gain} points to the frozen features. {sentence}")
    else:
        notice = _("Notice: with this little training, adapting is not shown to help ({gain} points). {sentence} "
                   "Try more epochs in the lab.")
    return notice.format(gain=gain, sentence=sentence)


def contrast_view(result: ContrastResult, map_title: str) -> None:
    contrast_metrics([row.summary() for row in result.rows])
    for column, row in zip(st.columns(3), result.rows):
        with column:
            show_chart(contrast_map(result, row.kind), width="stretch", key=f"map-{result.dataset.spec}-{row.kind}")
    st.caption(_("Maps: {method} of each feature set, coloured by the true class.").format(method=map_title))


def partial_rows(job: Job) -> None:
    """While a contrast step runs, the accuracies finished so far."""
    rows = job.metrics.get("rows") or []
    if rows:
        contrast_metrics(rows)


def efficiency_chart(points: list[EfficiencyPoint], data_names: dict[str, str]) -> go.Figure:
    labels = kind_labels()
    frame = pd.DataFrame([{"data": data_names.get(p.dataset, p.dataset), "features": labels[p.kind], "k": p.k,
                           "accuracy": p.mean, "above": p.ci95[1] - p.mean, "below": p.mean - p.ci95[0],
                           "interval": interval_text(*p.ci95)} for p in points])
    # The error bars are each mean's 95 % t-interval over the draws (not their spread).
    fig = px.line(frame, x="k", y="accuracy", color="features", error_y="above", error_y_minus="below",
                  facet_col="data", markers=True, log_x=True, height=360,
                  hover_data={"interval": True, "above": False, "below": False},
                  color_discrete_sequence=["#1f77b4", "#7f7f7f"],
                  labels={"k": _("labelled images per class"), "accuracy": _("test accuracy"), "features": "",
                          "interval": _("95 % CI")})
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    fig.update_xaxes(tickvals=sorted({p.k for p in points}))
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return style_figure(fig, marker_size=8)


def lesson_chart(result: LessonResult) -> go.Figure:
    """Step 6: both probes' accuracy on each test size, with their Wilson intervals shrinking as the test grows."""
    labels = kind_labels()
    rows = []
    for size in result.sizes:
        test = size.test
        for kind, accuracy, (low, high) in (("pretrained", test.a_accuracy, test.a_ci95),
                                            ("random", test.b_accuracy, test.b_ci95)):
            rows.append({"test images": f"{size.n:,}", "features": labels[kind], "accuracy": accuracy,
                         "above": high - accuracy, "below": accuracy - low, "interval": interval_text(low, high)})
    fig = px.bar(pd.DataFrame(rows), x="test images", y="accuracy", color="features", barmode="group",
                 error_y="above", error_y_minus="below", height=340,
                 hover_data={"interval": True, "above": False, "below": False},
                 color_discrete_sequence=["#1f77b4", "#7f7f7f"], range_y=[0, 1.05],
                 labels={"test images": _("test images scored"), "accuracy": _("test accuracy"), "features": "",
                         "interval": _("95 % CI")})
    fig.update_yaxes(tickformat=".0%")
    fig.update_xaxes(type="category")  # "1,000" is a label: on a numeric axis plotly would place it near 950
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return style_figure(fig)


def zoo_chart(result: ZooResult) -> go.Figure:
    """Step 7: each backbone's probe accuracy on the shapes with its Wilson interval, best first."""
    rows = sorted(result.rows, key=lambda row: -row.accuracy)
    frame = pd.DataFrame([{"backbone": row.backbone.name, "accuracy": row.accuracy, "above": row.ci95[1] - row.accuracy,
                           "below": row.accuracy - row.ci95[0], "interval": interval_text(*row.ci95),
                           "produced by": row.produced_by} for row in rows])
    fig = px.bar(frame, x="backbone", y="accuracy", error_y="above", error_y_minus="below", height=340,
                 hover_data={"interval": True, "produced by": True, "above": False, "below": False},
                 range_y=[0, 1.05], color_discrete_sequence=[PALETTE[0]],
                 labels={"backbone": "", "accuracy": _("test accuracy"), "interval": _("95 % CI"),
                         "produced by": _("produced by")})
    fig.update_yaxes(tickformat=".0%")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return style_figure(fig)


def vector_strip(vector: np.ndarray) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=[vector], colorscale="RdBu", zmid=0, showscale=False,
                               hovertemplate="%{x}: %{z:.2f}<extra></extra>"))
    fig.update_layout(height=70, margin={"l": 0, "r": 0, "t": 0, "b": 0}, xaxis={"visible": False},
                      yaxis={"visible": False}, title=None)
    return style_figure(fig)


def finetune_curve(metrics: dict, probe_accuracy: float | None) -> go.Figure:
    """Validation accuracy as LP-FT trains; the frozen probe's test accuracy as a line to beat."""
    curve = pd.DataFrame(metrics.get("val_curve") or [], columns=["epoch", "step", "val_accuracy"])
    fig = px.line(curve, x="step", y="val_accuracy", markers=True, height=320,
                  labels={"step": _("training step"), "val_accuracy": _("validation accuracy")})
    if probe_accuracy is not None:
        fig.add_hline(y=probe_accuracy, line_dash="dot",
                      annotation_text=_("linear probe (frozen): {acc}").format(acc=f"{probe_accuracy:.1%}"))
    fig.update_yaxes(tickformat=".0%")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return style_figure(fig, marker_size=7)

"""The tour's building blocks: a step that runs as a job, and the figures its steps show."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages.ui.i18n import _, ngettext, show_chart, style_figure
from pages.ui.intervals import accuracy_metric, p_text
from pages.ui.lesson_views import caption, mark_ran, note
from pages.ui.job_views import duration_text, format_seconds, job_panel
from pages.ui.maps import PALETTE
from pages.ui.services import job_manager
from pages.ui.text import md
from ptm_core.base import PairedTest
from ptm_core.flows import (DONE, FINISHED, RUNNING, ClockState, ContrastResult, EfficiencyClaim, EfficiencyPoint, Job,
                            JobSpec, LessonResult, ZooResult, images_needed, interval_text)


def kind_labels() -> dict[str, str]:
    return {"pixels": _("Raw pixels"), "random": _("Random-init backbone"), "pretrained": _("Pretrained backbone")}


def estimate_text(seconds: float) -> str:
    if seconds < 5:
        return _("a few seconds")
    return _("about {time}").format(time=duration_text(seconds))


def next_step(specs: list[JobSpec]) -> int | None:
    """The number (1-based) of the first step not yet run or running: the one whose button is the page's primary."""
    manager = job_manager()
    return next((number for number, spec in enumerate(specs, 1) if manager.attach(spec) is None), None)


def tour_step(number: int, spec: JobSpec, *, estimate: float, primary: bool = False,
              live_extra: Callable[[Job], None] | None = None) -> Job | None:
    """Its button (with the time estimate) until it has run, primary for the next step to run; then its live
    progress; the done job when it is."""
    manager = job_manager()
    job = manager.attach(spec)
    if job is None:
        label = _("Run step {n} ({estimate} the first time)").format(n=number, estimate=estimate_text(estimate))
        if st.button(label, key=f"tour-run-{number}", type="primary" if primary else "secondary",
                     icon=":material/play_arrow:"):
            manager.attach(spec, start=True)
            st.rerun()  # the page redrawn without the button, the step's progress in its place
    if job is None:
        return None
    status = job.status
    if status == DONE:
        mark_ran()
        return job
    if status in FINISHED:
        job_panel(job)
        if st.button(_("Run step {n} again").format(n=number), key=f"tour-rerun-{number}"):
            manager.start(spec)
            st.rerun()
        return None
    live_step(job.id, live_extra)
    return None


def clock_text(state: ClockState) -> str:
    """A running step's line: its phase and the work's latest words, the time so far, and the whole step's time
    left (tour_clock: every later phase too, at this machine's pace)."""
    what = md(state.label) + (f": {md(state.detail)}" if state.detail else "")
    left = (_("almost done with this step") if state.left < 5 else
            _("about {time} left in this step").format(time=duration_text(state.left)))
    return _("{what} (phase {i} of {n}) — {pct} · {elapsed} so far, {left}").format(
        what=what, i=state.phase, n=state.phases, pct=f"{state.fraction:.0%}", elapsed=format_seconds(state.elapsed),
        left=left)


@st.fragment(run_every=1.0)
def live_step(job_id: str, extra: Callable[[Job], None] | None = None) -> None:
    """A queued or running step, polled once a second: its clock's line (the heartbeat keeps it moving) and Cancel;
    the whole page reruns when it ends."""
    job = job_manager().get(job_id)
    if job is None:
        return
    state = job.preview if isinstance(job.preview, ClockState) else None
    if job.status == RUNNING and state is not None:
        st.progress(state.fraction, text=clock_text(state))
        if st.button(_("Cancel"), key=f"cancel-{job.id}", icon=":material/stop_circle:"):
            job.cancel()
            st.toast(_("Cancelling…"))
    else:
        job_panel(job)
    if extra is not None:
        extra(job)
    if job.status in FINISHED:
        st.rerun(scope="app")


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
    note("caption", " · ".join(md(row["produced_by"]) for row in rows))  # the lesson: what produced the three


def and_list(items: list[str]) -> str:
    """"1", "1 and 2", "1, 2, 5 and 10"."""
    if len(items) == 1:
        return items[0]
    return _("{items} and {last}").format(items=", ".join(items[:-1]), last=items[-1])


def labels_per_class(ks: list[int]) -> str:
    """"1 label per class", "1, 2 and 5 labels per class"."""
    return ngettext("{ks} label per class", "{ks} labels per class", ks[0] if len(ks) == 1 else 2).format(
        ks=and_list([str(k) for k in ks]))


def lead_or_tie(a: str, b: str, test: PairedTest) -> str:
    """McNemar's verdict on a (first) and b, naming who leads, or "no difference detected" and the images a tie
    would need: never "as well" or "beats" beyond what the test says. `a` and `b` are plural nouns ("raw pixels")."""
    values = {"n": f"{test.n_test:,}", "p": p_text(test.p_value)}
    if test.verdict == "tie":
        sentence = _("No difference detected between {a} and {b} on {n} test images ({wa} vs {wb}, McNemar's test, "
                     "{p}).").format(a=a, b=b, wa=f"{test.a_accuracy:.1%}", wb=f"{test.b_accuracy:.1%}", **values)
        needed = images_needed(test)
        if needed is None:
            return sentence
        return sentence + " " + _("At the rate they disagree here, telling them apart would take about {m} test "
                                  "images.").format(m=f"{needed:,}")
    lead = test.verdict == "a"
    winner, loser = (a, b) if lead else (b, a)
    wa, wb = (test.a_accuracy, test.b_accuracy) if lead else (test.b_accuracy, test.a_accuracy)
    sentence = _("{winner} lead {loser} on the same {n} test images ({wa} vs {wb}, McNemar's test, {p}).").format(
        winner=winner, loser=loser, wa=f"{wa:.1%}", wb=f"{wb:.1%}", **values)
    return sentence[:1].upper() + sentence[1:]


def contrast_notice(result, data_key: str) -> str:
    """Step 2's or 3's lesson, worded by McNemar's test of pretrained against each other kind (not by the values)."""
    accuracy = {row.kind: f"{row.accuracy:.1%}" for row in result.rows}
    names = {"pixels": _("raw pixels"), "random": _("random-init features"), "pretrained": _("pretrained features")}
    tests = result.tests
    if data_key == "shapes":
        if all(tests[kind].verdict == "a" for kind in ("random", "pixels")):
            return _("Notice: only the pretrained features separate the shapes ({pre} vs {rnd} and {pix}; McNemar's "
                     "test on the same {n} test images: {p_rnd} and {p_pix}); they ignore texture, colour and "
                     "position because ImageNet taught them to.").format(
                pre=accuracy["pretrained"], rnd=accuracy["random"], pix=accuracy["pixels"],
                n=f"{tests['pixels'].n_test:,}", p_rnd=p_text(tests["random"].p_value),
                p_pix=p_text(tests["pixels"].p_value))
        return _("Notice:") + " " + " ".join(lead_or_tie(names["pretrained"], names[kind], tests[kind])
                                             for kind in ("random", "pixels"))
    sentence = lead_or_tie(names["pretrained"], names["pixels"], tests["pixels"])
    verdict = tests["pixels"].verdict
    if verdict == "a":
        why = _("Pretraining helps even though grey digits look nothing like ImageNet photos.")
    elif verdict == "b":
        why = _("Grey digits look nothing like ImageNet photos, and centred digits are easy for pixels (domain "
                "shift): here the pixels do better.")
    else:
        why = _("As far as this test can tell, pixels do as well here: grey digits look nothing like ImageNet photos, "
                "and centred digits are easy for pixels (domain shift).")
    return _("Notice: on digits,") + " " + sentence[0].lower() + sentence[1:] + " " + why


def _p_bound(tests: list, lead: bool) -> str:
    """One group's p-values in a phrase: the largest for a lead ("p ≤ 0.02"), the smallest for a tie ("p ≥ 0.3")."""
    ps = [test.p_value for test in tests]
    if len(ps) == 1:
        return p_text(ps[0])
    if lead:
        return _("p < 0.001 at each") if max(ps) < 0.001 else _("p ≤ {p} at each").format(p=f"{max(ps):.2g}")
    return _("p ≥ {p} at each").format(p=f"{min(ps):.2g}")


def efficiency_notice(claim: EfficiencyClaim, name: str, draws: int) -> str:
    """What the curves of one dataset say across the whole label range: at each budget, pretrained features against
    pixels with as many labels, by Welch's t-test over the draws; budgets with the same verdict are named together."""
    groups = []
    for verdict in ("a", "b", "tie"):
        ks = claim.ks(verdict)
        if not ks:
            continue
        tests = [test for k, test in claim.tests if k in ks]
        p = _p_bound(tests, verdict != "tie")
        if len(ks) == 1:  # one budget: its two means too
            p = _("{a} vs {b}, {p}").format(a=f"{tests[0].a_mean:.1%}", b=f"{tests[0].b_mean:.1%}", p=p)
        phrase = {"a": _("pretrained features lead pixels with {labels} ({p})"),
                  "b": _("pixels lead pretrained features with {labels} ({p})"),
                  "tie": _("no difference detected with {labels} ({p})")}[verdict]
        groups.append((ks[0], phrase.format(labels=labels_per_class(ks), p=p)))
    parts = "; ".join(text for _k, text in sorted(groups))
    return _("On {data} (Welch's t-test over {draws} draws at each budget): {parts}.").format(
        data=name, draws=draws, parts=parts)


def finetune_notice(result, test: PairedTest) -> str:
    """Step 5's lesson, worded by McNemar's test of LP-FT against the frozen probe it started from."""
    sentence = lead_or_tie(_("the adapted features (LP-FT)"), _("the frozen features (linear probe)"), test)
    gain = f"{(result.test_accuracy - result.lp_test_accuracy) * 100:+.1f}"
    if test.verdict == "a":
        notice = _("Notice: adapting the backbone added {gain} points to the frozen features. {sentence}")
    elif test.verdict == "b":  # "lost 13.3 points", not "lost -13.3"
        gain = f"{abs(result.test_accuracy - result.lp_test_accuracy) * 100:.1f}"
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
    caption(_("Maps: {method} of each feature set, coloured by the true class.").format(method=map_title))


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


def finetune_curve(metrics: dict, tested: dict | None) -> go.Figure:
    """LP-FT's validation accuracy as it trains (a line); once done, `tested` ({"frozen", "adapted", "n_test"}): both
    models' test accuracies as marked points at the right, named as test numbers, since the frozen probe has no
    validation score to draw on the line's scale of images."""
    curve = pd.DataFrame(metrics.get("val_curve") or [], columns=["epoch", "step", "val_accuracy"])
    fig = go.Figure(go.Scatter(x=curve["step"], y=curve["val_accuracy"], mode="lines+markers",
                               name=_("LP-FT, validation images"), marker={"color": PALETTE[0]}))
    if tested is not None:
        right = (curve["step"].max() if len(curve) else 0) + 1
        names = [_("frozen probe, test: {acc}").format(acc=f"{tested['frozen']:.1%}"),
                 _("LP-FT, test: {acc}").format(acc=f"{tested['adapted']:.1%}")]
        fig.add_trace(go.Scatter(x=[right, right], y=[tested["frozen"], tested["adapted"]], mode="markers+text",
                                 text=names, textposition="middle left", marker={"symbol": "diamond", "size": 11,
                                                                                "color": ["#7f7f7f", PALETTE[0]]},
                                 name=_("test accuracy ({n} test images)").format(n=f"{tested['n_test']:,}")))
    fig.update_layout(height=320, showlegend=tested is not None, legend={"orientation": "h", "y": -0.25},
                      xaxis_title=_("training step"), yaxis_title=_("accuracy"))
    fig.update_yaxes(tickformat=".0%")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return style_figure(fig, marker_size=7)

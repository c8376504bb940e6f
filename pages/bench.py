"""Which backbone for my data? A leaderboard on the sidebar's dataset: per backbone, the linear probe and k-NN on
several seeded splits, each mean with its 95 % interval, against how fast the backbone reads the images."""
import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages.ui import settings
from pages.ui.choices import BENCH_WEIGHTS, BenchChoice, KNNChoice
from pages.ui.i18n import _, show_chart, style_figure
from pages.ui.job_views import job_outcome
from pages.ui.lab_charts import percent_axis
from pages.ui.maps import PALETTE
from pages.ui.services import backbone_names, job_manager
from pages.ui.sidebar import WEIGHT_LABELS, data_controls
from pages.ui.text import md, plot_text
from ptm_core.base import describe_data
from ptm_core.flows import (BENCH_T_MIN_SEEDS, DEFAULT_BACKBONE, BenchConfig, BenchProgress, BenchResult, bench_spec,
                            bench_title, interval_kind, interval_text)


def _commit_backbones() -> None:
    picked = st.session_state.get(settings.widget_key("bench_backbones")) or []
    settings.update(BenchChoice, bench_backbones=",".join(picked))


def bench_controls() -> None:
    choice = settings.get(BenchChoice)
    # The current picks stay selectable whatever the catalogue holds (a name from a link is checked when run).
    options = list(dict.fromkeys([*choice.names(), DEFAULT_BACKBONE, *backbone_names("")]))
    key = settings.widget_key("bench_backbones")
    st.session_state[key] = choice.names()
    st.multiselect(_("Backbones"), options, key=key, on_change=_commit_backbones,
                   placeholder=_("Pick one or more backbones"),
                   help=_("Each backbone's features are extracted once and scored on every seed's split."))
    cols = st.columns(3)
    with cols[0]:
        settings.bound(st.radio, _("Their weights"), BenchChoice, "bench_weights", options=list(BENCH_WEIGHTS),
                       format_func=lambda w: _(WEIGHT_LABELS[w]), horizontal=True)
    with cols[1]:
        settings.bound(st.toggle, _("Also each with random weights"), BenchChoice, "bench_random",
                       help=_("The same architecture, randomly initialised: what the pretraining adds."))
    with cols[2]:
        settings.bound(st.number_input, _("Seeds (splits per backbone)"), BenchChoice, "bench_seeds", min_value=1,
                       max_value=10, help=_("With 3 or more, each mean gets Student's t-interval over the seeds; "
                                            "with fewer, a bootstrap over the test images."))


def interval_words(row: dict) -> str:
    """Which 95 % interval a row has, in the interface's language (the CSV's `interval` column says it in English)."""
    if interval_kind(row) == "t":
        return _("Student's t over {n} seeds").format(n=row["seeds"])
    return _("bootstrap over {n} test images, {s} seeds").format(n=f"{row['n_test']:,}", s=row["seeds"])


def row_progress(job) -> None:
    """A bar per row of the leaderboard while the job runs (its preview: each row's share done)."""
    shown = job.preview
    if not isinstance(shown, BenchProgress):
        return
    for label, fraction in zip(shown.labels, shown.fractions):
        state = _("done") if fraction >= 1 else _("waiting") if fraction <= 0 else f"{fraction:.0%}"
        st.progress(fraction, text=f"{md(label)} — {state}")


def table(rows: list[dict]) -> pd.DataFrame:
    """The leaderboard as the user reads it: accuracies in % (numbers, so that a click on a column sorts them)."""
    frame = pd.DataFrame(rows)
    frame["top5_mean"] = frame["top5_mean"].astype(float)  # None (five classes or fewer) as a gap
    return pd.DataFrame({
        _("backbone"): frame["backbone"], _("weights"): frame["weights"],
        _("linear probe"): 100 * frame["linear_mean"],
        _("95 % CI"): [interval_text(lo, hi) for lo, hi in zip(frame["linear_ci_low"], frame["linear_ci_high"])],
        _("interval"): [interval_words(row) for row in rows], _("seeds"): frame["seeds"],
        _("test images"): frame["n_test"], _("k-NN"): 100 * frame["knn_mean"], _("images/s"): frame["images_per_s"],
        _("feature dim"): frame["feature_dim"], _("parameters (M)"): frame["params_m"],
        _("balanced accuracy"): 100 * frame["balanced_mean"], _("top-5"): 100 * frame["top5_mean"]})


def chart(rows: list[dict], produced_by: str):
    """Each row's mean linear-probe accuracy with its 95 % interval (error bars) against extraction speed."""
    frame = pd.DataFrame(rows)
    frame = frame.assign(above=frame["linear_ci_high"] - frame["linear_mean"],
                         below=frame["linear_mean"] - frame["linear_ci_low"],
                         ci=[interval_text(lo, hi) for lo, hi in zip(frame["linear_ci_low"], frame["linear_ci_high"])],
                         how=[interval_words(row) for row in rows])
    fig = px.scatter(frame, x="images_per_s", y="linear_mean", error_y="above", error_y_minus="below", color="weights",
                     text="backbone", log_x=True, height=420, color_discrete_sequence=PALETTE,
                     hover_data={"ci": True, "how": True, "knn_mean": ":.1%", "above": False, "below": False},
                     labels={"images_per_s": _("images/s (extraction, this machine)"), "weights": _("weights"),
                             "linear_mean": _("linear probe (mean over seeds)"), "ci": _("95 % CI"),
                             "how": _("interval"), "knn_mean": _("k-NN"), "backbone": _("backbone")},
                     title=_("Linear-probe accuracy (95 % CI) against extraction speed") +
                     f"<br><sup>{plot_text(produced_by)}</sup>")
    fig.update_traces(textposition="top center", cliponaxis=False)
    speeds = frame["images_per_s"].dropna().astype(float)
    if len(speeds):  # room for the names of the fastest and slowest points (log axis: the range is in decades)
        fig.update_xaxes(range=[np.log10(speeds.min()) - 0.15, np.log10(speeds.max()) + 0.15])
    fig.update_layout(margin={"l": 10, "r": 10, "t": 60, "b": 10})
    percent_axis(fig, [*frame["linear_ci_low"], *frame["linear_ci_high"]])
    return style_figure(fig, marker_size=10)


def show_leaderboard(result: BenchResult, config: BenchConfig) -> None:
    rows, produced_by = result.rows, bench_title(config)
    best = rows[0]
    st.success(_("{title} — done: {computed} runs computed, {reused} read back.").format(
        title=md(produced_by), computed=result.computed, reused=result.reused), icon=":material/check_circle:")
    # The highest mean, not a winner: no test between rows is run, so the sentence claims no difference.
    st.markdown(_("**Highest mean linear probe here: {name} ({weights})**, {accuracy} (95 % CI {interval}, {how}). "
                  "A mean is not a test: a row whose interval overlaps this one may read the images as well.").format(
        name=md(best["backbone"]), weights=_(WEIGHT_LABELS[best["weights"]]), accuracy=f"{best['linear_mean']:.1%}",
        interval=interval_text(best["linear_ci_low"], best["linear_ci_high"]), how=interval_words(best)))
    st.dataframe(table(rows), hide_index=True, width="stretch", column_config={
        name: st.column_config.NumberColumn(name, format="%.1f%%")
        for name in (_("linear probe"), _("k-NN"), _("balanced accuracy"), _("top-5"))} | {
        _("images/s"): st.column_config.NumberColumn(_("images/s"), format="%.0f"),
        _("parameters (M)"): st.column_config.NumberColumn(_("parameters (M)"), format="%.1f")})
    n_test = best["n_test"]
    st.caption(_("Every row: features extracted once from {data} at {size} px; on each of {seeds} seeded stratified "
                 "splits ({n_test} test images each), a linear probe (logistic regression, C by the one-standard-error "
                 "rule on a validation split) and k-NN (k = {k}, cosine similarity, temperature {t}); the mean over "
                 "the splits. The 95 % CI is Student's t over the seeds with {t_min} seeds or more, else a "
                 "percentile bootstrap over the test images. Images/s: the extraction on this machine when the "
                 "features were computed; parameters: the whole model, its classifier head included. Click a column "
                 "to sort.").format(data=md(describe_data(config.dataset)), size=config.image_size,
                                    seeds=len(config.seeds), n_test=f"{n_test:,}", k=config.knn.k,
                                    t=f"{config.knn.temperature:g}", t_min=BENCH_T_MIN_SEEDS))
    show_chart(chart(rows, produced_by), width="stretch")
    st.download_button(_("Download leaderboard.csv"), result.leaderboard.read_bytes(), file_name="leaderboard.csv",
                       mime="text/csv", icon=":material/download:")
    st.caption(_("One JSON per backbone, weights and seed (accuracies, intervals, which test images each got right): "
                 "{path}").format(path=md(result.runs_dir)))


st.title(_("Which backbone for my data?"))
st.caption(_("A leaderboard on the sidebar's dataset (your own folder or zip too): each backbone's features, read by "
             "a linear probe and k-NN on several seeded splits, each mean with its 95 % CI, against how fast "
             "the backbone reads the images."))
source = data_controls()
bench_controls()
config = settings.get(BenchChoice).config(source, settings.get(KNNChoice).config())
if config is None:
    st.info(_("Pick at least one backbone."), icon=":material/arrow_upward:")
    st.stop()
st.markdown(f"**{md(bench_title(config))}**")
clicked = st.button(_("Run the leaderboard"), type="primary", icon=":material/leaderboard:", key="run_bench")
job = job_manager().attach(bench_spec(config), start=clicked)
if job is None:
    st.info(_("Ready: **{title}**. Press **Run the leaderboard**.").format(title=md(bench_title(config))),
            icon=":material/arrow_upward:")
else:
    job_outcome(job, lambda result: show_leaderboard(result, config), live_extra=row_progress)

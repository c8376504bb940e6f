"""Features & probe: pick data and a backbone, extract features, explore the map, read the probe's accuracy."""
from functools import partial

import streamlit as st

from pages.ui import cam_views, cluster_views, density_view, map_jobs, quality_views
from pages.ui import maps as views
from pages.ui.i18n import _, show_chart, tr
from pages.ui.intervals import accuracy_metric
from pages.ui.job_views import format_seconds, job_outcome
from pages.ui.gallery import skipped_notice
from pages.ui.lab_charts import sweep_caption, sweep_chart
from pages.ui.own_images_views import own_images_step
from pages.ui.preview_views import preview_panel
from pages.ui.services import job_manager
from pages.ui.sidebar import source_controls, source_header
from pages.ui.text import md
from ptm_core.base import ProbeConfig, ProjectionConfig, describe_map
from ptm_core.flows import (DONE, ExploreRequest, ExploreResult, active_explore, explore_spec, fitted_mask, issue_kinds,
                            map_key, point_frame)
from ptm_core.flows import density as density_map


def _draw_map(frame, fs, colour: str, shown, map_id: str, clusters=None, labels: bool = False):
    """The scatter map, or the density view above density_map.SCATTERGL_MAX_POINTS; returns the figure drawn."""
    method, three_d = shown.meta["config"]["method"], shown.coords.shape[1] == 3
    if not three_d and density_map.use_density(len(frame)):
        fig = density_view.density_figure(frame, colour, fs.class_names, method=method)
        cluster_views.decorate(fig, clusters, labels, three_d)
        density_view.show_density(fig, shown.coords, map_id, f"chart-{map_id}", views.epoch(map_id))
        return fig
    if not three_d and len(frame) > density_map.scattergl_max_points():
        st.info(_("Maps over {limit} points draw faster and select reliably as a density image: "
                  "pip install -r requirements-bigmap.txt.").format(limit=f"{density_map.scattergl_max_points():,}"),
                icon=":material/info:")
    # No rings on a box or lasso selection: they would change the figure, remount the chart, and drop plotly's
    # own display of the selection just made. One clicked image is marked, with its neighbours: finding one dot
    # among thousands matters more there than plotly's dimming of the rest.
    fig = views.map_figure(frame, colour, fs.class_names, method=method)
    cluster_views.decorate(fig, clusters, labels, three_d)
    views.mark_focus(fig, frame, fs, views.current_selection(map_id), three_d)
    views.show_map(fig, three_d=three_d, map_id=map_id, chart_key=f"chart-{map_id}")
    return fig


def map_section(result: ExploreResult, config: ProjectionConfig, report=None) -> None:
    fs, probe, source = result.features, result.probe, result.request.title()
    shown = map_jobs.chosen_map(fs, config, source)
    if shown is None:  # these features cannot be mapped; chosen_map said why
        return
    shown_config = ProjectionConfig(**shown.meta["config"])
    subsampled = bool(shown.meta.get("subsampled"))
    # "Fitted or placed" only where there is something to tell apart.
    options = [c for c in views.COLOUR_BY if (c != "fitted" or subsampled) and (c != "issue" or report is not None)]
    colour = st.segmented_control(_("Colour by"), options, format_func=lambda c: _(views.COLOUR_BY[c]),
                                  default="class", key="colour_by") or "class"
    labels = cluster_views.label_toggle()
    map_id = map_key(fs.key, shown_config)
    rows = views.current_selection(map_id)
    fitted = fitted_mask(len(fs.labels), shown_config) if subsampled else None
    frame = point_frame(fs, probe, shown.coords, selected=rows, fitted=fitted,
                        issues=None if report is None else issue_kinds(report, len(fs.labels)))
    three_d = shown.coords.shape[1] == 3
    clusters = cluster_views.clusters_for(fs, shown, shown_config) if labels or colour == "cluster" else None
    frame = cluster_views.with_cluster_column(frame, clusters)
    fig = _draw_map(frame, fs, colour if colour in options else "class", shown, map_id, clusters, labels)
    st.caption(views.map_caption(shown, source) + " " + _("Probe colours use in-sample predictions on the train split "
                                                        "(hover shows the split)."))
    if labels and clusters is not None:
        cluster_views.exemplar_strip(result.request.source.dataset, fs, clusters)
    views.faithfulness_panel(shown.faithfulness, shown.coords.shape[1], f"{tr(describe_map(shown_config))} · {tr(source)}")
    views.clear_selection_button(map_id)
    views.selection_panel(result.request.source.dataset, fs, frame, rows, three_d=three_d,
                          backbone=result.request.source.backbone,
                          looks=partial(cam_views.where_it_looks_panel, result))
    views.export_buttons(frame, fig, views.export_name(fs.key, shown_config), describe_map(shown_config), source)


def extraction_metric(column, meta: dict, produced_by: str) -> None:
    """The time the features took to compute, even when they were read back from the cache."""
    seconds = meta.get("compute_seconds")
    rate = meta.get("images_per_s")
    # Which path ran (runtime and precision, bf16 said as such), next to the speed it gave; in the help, how it
    # was chosen (the measured img/s of each candidate on this machine).
    how = ", ".join(part for part in (_("{rate} img/s").format(rate=f"{rate:.0f}") if rate else "",
                                      meta.get("precision_label", "")) if part)
    choice = f" {meta['path_choice']}." if meta.get("path_choice") else ""
    if meta.get("cache_hit"):
        text = (_("Read from the feature cache; computing them took this long ({rate}). {produced_by}.") if how else
                _("Read from the feature cache; computing them took this long. {produced_by}."))
        column.metric(_("Extraction (cached)"), format_seconds(seconds),
                      help=text.format(rate=how, produced_by=md(produced_by)) + md(choice))
    else:
        column.metric(_("Extraction"), format_seconds(seconds), help=f"{how}. {md(produced_by)}.{md(choice)}")
    if how:
        column.caption(how)


def show_result(result: ExploreResult, config: ProjectionConfig) -> None:
    fs, probe, produced_by = result.features, result.probe, result.request.title()
    st.success(_("{title} — done.").format(title=md(produced_by)), icon=":material/check_circle:")
    cols = st.columns(4)
    accuracy_metric(cols[0], _("Linear-probe test accuracy"), probe.test_accuracy, probe.n_test,
                    _("{produced_by}. Logistic regression on standardised features; C chosen on a validation "
                      "split carved from train; scored on a stratified 20% test split ({n} images).").format(
                        produced_by=md(produced_by), n=probe.n_test))
    quality_views.leak_caption(cols[0], fs, probe)
    cols[1].metric(_("Features"), f"{fs.features.shape[0]:,} × {fs.features.shape[1]:,}", help=md(produced_by))
    extraction_metric(cols[2], fs.meta, produced_by)
    solver = f" ({probe.solver})" if probe.solver else ""
    cols[3].metric(_("Chosen C"), f"{probe.best_C:g}", help=_("Probe sweep and refit took {seconds} s{solver}. {produced_by}.").format(
        seconds=f"{probe.seconds:.1f}", solver=solver, produced_by=md(produced_by)))
    if fs.meta.get("cached") is False:  # a full disk or read-only data folder: the result stands, uncached
        st.warning(_("These features could not be cached ({reason}); a rerun computes them again.").format(
            reason=md(str(fs.meta.get("cache_error")))), icon=":material/warning:")
    skipped_notice(fs.meta.get("skipped") or [], fs.meta.get("n_skipped"))
    report = quality_views.current_report(fs, probe, result.request.source.dataset)  # before the map: it can colour points by issue
    map_section(result, config, report)
    quality_views.quality_panel(result.request.source.dataset, fs, probe, report)
    with st.expander(_("Probe sweep: validation accuracy vs C")):
        show_chart(sweep_chart(probe, produced_by), width="stretch", key="sweep")
        st.caption(sweep_caption(probe))


st.title(_("Features & probe"))
st.caption(_("How well does a frozen pretrained backbone separate your classes? Extract features, look at the map, "
             "and read what a linear probe gets — then switch to random weights to see what pretraining buys."))

source = source_controls()
views.map_controls()
projection = views.current_map(source.dataset.seed)
request = ExploreRequest(source, ProbeConfig(seed=source.split_seed))
source_header(source)
st.caption(_("Map: {map}").format(map=md(describe_map(projection))))
manager = job_manager()
clicked = st.button(_("Extract & analyse"), type="primary", icon=":material/play_arrow:", key="run")
job = manager.attach(explore_spec(request), start=clicked)
if job is not None and job.status == DONE:
    st.sidebar.caption(views.estimate_text(*job.result.features.features.shape, projection))
if clicked:
    st.session_state["explore_job"] = job.id

if job is None:
    # Settings changed since: keep showing this session's last run, or whatever explore job is running.
    job = manager.get(st.session_state.get("explore_job")) or active_explore(manager)
    if job is not None:
        st.info(_("Showing **{title}**; the settings now describe another run — press the button to start it.").format(
            title=md(job.title)))

if job is None:
    st.info(_("Ready: **{title}**. Press **Extract & analyse**.").format(title=md(request.title())), icon=":material/arrow_upward:")
else:
    job_outcome(job, lambda result: show_result(result, projection),
                live_extra=lambda running: preview_panel(running, running.title))

# Tracked (on_change="rerun"): its body, the class cards and their uploaders, runs only while it is open.
photos = st.expander(_("Your own photos: pixels vs random init vs pretrained"), icon=":material/photo_camera:",
                     key="explore-own-photos", on_change="rerun")
if photos.open:
    with photos:
        own_images_step("explore")

"""Probe vs fine-tune: frozen features (linear probe, k-NN) against adapting the network, on one split."""
from functools import partial
from pathlib import Path

import streamlit as st

from pages.ui import lab_charts as views
from pages.ui import similarity_views as similarity
from pages.ui import settings
from pages.ui.choices import FINETUNE_SIZES, FinetuneChoice, KNNChoice
from pages.ui.i18n import N_, _, show_chart, tr, tr_stored
from pages.ui.intervals import accuracy_metric, pair_sentence, test_sentence
from pages.ui.job_views import format_seconds, job_panel, live_job
from pages.ui.retrieval_views import retrieval_row
from pages.ui.services import job_manager
from pages.ui.sidebar import source_controls, source_header
from pages.ui.text import md
from ptm_core.base import FINETUNE_MODES, Source, describe_data, describe_weights
from ptm_core.flows import (ACTIVE, DONE, FINISHED, LabRequest, adapted_test, compare_frame, compare_pairs,
                            checkpoint_filename, finetune_title, interval, interval_text, lab_spec, mixed_sizes,
                            random_source, source_runs)

MODE_HELP = {"full": N_("everything trainable"), "last-n": N_("last N blocks + head; the rest frozen"),
             "lp-ft": N_("head initialised from the linear probe, then everything (Kumar et al. 2022)"),
             "scratch": N_("random init, everything trainable — what pretraining buys")}
INSPECT = [N_("linear probe"), "k-NN"]  # the method names the confusion explorer keys its widgets by


def job_slot(kind: str, request: LabRequest, label: str, *, live_extra=None, button_help: str | None = None):
    """A button that starts (or reattaches to) one lab method's job; returns the job when it has finished."""
    spec = lab_spec(kind, request)
    manager = job_manager()
    running = (job := manager.find(spec.key)) is not None and job.status in ACTIVE
    clicked = st.button(label, key=f"start-{kind}", help=button_help, disabled=running)
    job = manager.attach(spec, start=clicked)
    if job is None:
        return None
    status = job.status  # one reading, as in job_outcome
    if status in FINISHED:
        job_panel(job)
        return job if status == DONE else None
    live_job(job.id, live_extra)
    return None


def probes_tab(source: Source) -> None:
    cols = st.columns(2)
    with cols[0]:
        settings.bound(st.slider, _("k-NN: neighbours (k)"), KNNChoice, "knn_k", min_value=1, max_value=100)
    with cols[1]:
        settings.bound(st.number_input, _("k-NN: temperature"), KNNChoice, "knn_t", min_value=0.01, max_value=1.0,
                       step=0.01)
    knn = settings.get(KNNChoice).config()
    produced_by = source.describe()
    job = job_slot("probes", LabRequest(source, knn=knn), _("Run linear probe + k-NN"), button_help=_(
        "Standardised features, L-BFGS logistic regression with C swept on a validation split; "
        "k-NN on L2-normalised features with cosine similarity and a temperature-weighted vote (DINO)."))
    if job is None:
        return
    result = job.result
    fs = result.features
    cols = st.columns(3)
    accuracy_metric(cols[0], _("Linear probe"), result.linear.test_accuracy, result.linear.n_test,
                    f"C = {result.linear.best_C:g}. {md(produced_by)}.")
    accuracy_metric(cols[1], "k-NN", result.knn.test_accuracy, result.knn.n_test,
                    f"k = {result.knn.k}, T = {result.knn.temperature}. {md(produced_by)}.")
    cols[2].metric(_("Train / test images"), f"{result.linear.n_train:,} / {result.linear.n_test:,}", help=md(produced_by))
    retrieval_row(getattr(result.knn, "retrieval", None), produced_by)
    show_chart(views.sweep_chart(result.linear, produced_by), width="stretch", key="lab-sweep")
    if caption := views.sweep_caption(result.linear):
        st.caption(caption)
    show_chart(views.per_class_chart(fs.labels, fs.class_names, {_("linear probe"): result.linear,
                                                                        "k-NN": result.knn}, produced_by),
                    width="stretch", key="per-class")
    method = st.radio(_("Inspect"), INSPECT, format_func=_, horizontal=True, key="inspect_method")
    chosen = result.linear if method == "linear probe" else result.knn
    views.confusion_explorer(source.dataset, fs.labels, fs.class_names, chosen, method, produced_by, fs.ids)
    st.markdown(_("**Most confident mistakes**"))
    views.mistakes_gallery(source.dataset, fs.labels, fs.class_names, chosen, fs.ids)


def baselines_tab(source: Source) -> None:
    st.caption(_("Same split as the probes. Raw pixels: what any backbone has to beat. Random init: the same "
                 "architecture without pretraining — the difference is what pretraining buys."))
    cols = st.columns(2)
    with cols[0]:
        job = job_slot("pixels", LabRequest(source), _("Raw-pixel baseline"))
        if job is not None:
            accuracy_metric(st, _("Raw pixels (32×32 grey)"), job.result.test_accuracy, job.result.n_test,
                            _("Logistic regression on 32×32 grey pixels of {spec}.").format(
                                spec=md(source.dataset.spec)))
    with cols[1]:
        job = job_slot("random", LabRequest(source), _("Random-init baseline"))
        if job is not None:
            accuracy_metric(st, _("Random-init backbone + probe"), job.result.test_accuracy, job.result.n_test,
                            md(random_source(source).describe()))


def finetune_form() -> None:
    choice_cols = st.columns(4)
    with choice_cols[0]:
        settings.bound(st.selectbox, _("Mode"), FinetuneChoice, "ft_mode", options=list(FINETUNE_MODES),
                       help="\n".join(f"- **{m}**: {_(h)}" for m, h in MODE_HELP.items()))
    with choice_cols[1]:
        settings.bound(st.number_input, _("Epochs"), FinetuneChoice, "ft_epochs", min_value=1, max_value=100)
    with choice_cols[2]:
        settings.bound(st.select_slider, _("Fine-tune image size (px)"), FinetuneChoice, "ft_size",
                       options=list(FINETUNE_SIZES), help=_("Fine-tuning runs at its own size (the sidebar's size is "
                                                            "for the frozen features); every result shows its size."))
    with choice_cols[3]:
        settings.bound(st.number_input, _("Batch size"), FinetuneChoice, "ft_batch", min_value=4, max_value=512)
    cols = st.columns(4)
    for col, (label, name, lo, hi, fmt) in zip(cols, [(_("LR head"), "ft_lr_head", 1e-6, 1.0, "%.0e"),
                                                       (_("LR backbone"), "ft_lr_backbone", 1e-7, 1.0, "%.0e"),
                                                       (_("Weight decay"), "ft_wd", 0.0, 1.0, "%.2f")]):
        with col:
            settings.bound(st.number_input, label, FinetuneChoice, name, min_value=lo, max_value=hi, format=fmt)
    with cols[3]:
        settings.bound(st.number_input, _("Init seed"), FinetuneChoice, "ft_seed", min_value=0, max_value=2**31 - 1)
    cols = st.columns(2)
    with cols[0]:
        settings.bound(st.toggle, _("Augment (random resized crop + flip)"), FinetuneChoice, "ft_augment",
                       help=_("Flips can hurt on digits, so this starts off here."))
    with cols[1]:
        settings.bound(st.number_input, _("Last N blocks (last-n mode)"), FinetuneChoice, "ft_last_n", min_value=1,
                       max_value=12)


def live_curves(job, label: str) -> None:
    if not job.metrics.get("train_curve"):
        st.caption(_("The loss and validation curves appear here after the first training step."))
        return
    show_chart(views.curves_chart([(label, job.metrics)]), width="stretch", key=f"live-curves-{job.id}")


def finetune_result(source: Source, job, produced_by: str) -> None:
    result, config = job.result, settings.get(FinetuneChoice).config()
    cols = st.columns(4)
    accuracy_metric(cols[0], _("Test accuracy"), result.test_accuracy, result.n_test, md(produced_by))
    cols[1].metric(_("Best epoch"), result.best_epoch, help=md(produced_by))
    cols[2].metric(_("Took"), format_seconds(result.seconds), help=md(produced_by))
    cols[3].metric(_("Stopped early"), _("yes") if result.stopped_early else _("no"), help=md(produced_by))
    if result.train_images_per_s:
        st.caption(_("Trained in {precision} at {rate} img/s.").format(
            precision=result.precision, rate=f"{result.train_images_per_s:.0f}"),
            help=result.precision_choice or None)
    if result.lp_test_accuracy is not None:
        low, high = interval(result.lp_test_accuracy, result.n_test)
        head = _("The probe-initialised head alone scored {accuracy} ({interval}) before fine-tuning.").format(
            accuracy=f"{result.lp_test_accuracy:.1%}", interval=interval_text(low, high))
        if result.lp_predictions is not None:
            head += " " + test_sentence(_("LP-FT"), _("the frozen probe"), adapted_test(result))
        st.caption(head)
    show_chart(views.curves_chart([(f"{config.mode} @ {config.image_size}px", job.metrics)]), width="stretch",
                    key="done-curves")
    st.caption(_("{produced_by}. Train loss: {smoothing}.").format(produced_by=md(produced_by),
                                                                 smoothing=_(views.LOSS_SMOOTHING)))
    checkpoint = Path(result.checkpoint)
    if checkpoint.is_file():
        st.download_button(_("Best checkpoint (.safetensors)"), checkpoint.read_bytes,
                           checkpoint_filename(source, config),
                           "application/octet-stream", icon=":material/download:", key="download-checkpoint",
                           on_click="ignore")
    drift = job_slot("drift", LabRequest(source, finetune=config, checkpoint=result.checkpoint),
                     _("Show feature drift (before vs after)"))
    if drift is not None:
        views.drift_charts(drift.result, produced_by)
        similarity.stage_cka_section(drift.result, produced_by)


def finetune_tab(source: Source) -> None:
    finetune_form()
    config = settings.get(FinetuneChoice).config()
    produced_by = finetune_title(source, config)
    job = job_slot("finetune", LabRequest(source, finetune=config), _("Start fine-tuning"),
                   live_extra=partial(live_curves, label=f"{config.mode} @ {config.image_size}px"),
                   button_help=_("Runs as a job: switch pages or reload freely. Cancel stops it and keeps the best "
                                 "checkpoint so far, which is still scored on the test split."))
    if job is not None:
        finetune_result(source, job, produced_by)
    overlay_runs(source)


def overlay_runs(source: Source) -> None:
    runs = source_runs(job_manager().store, source, kind="finetune")
    if len(runs) > 1:
        st.markdown(_("**All fine-tune runs on this data and backbone**"))
        show_chart(views.curves_chart([(f"{r['metrics'].get('mode')} @ {r['metrics'].get('image_size')}px · "
                                             f"{r['id'][:6]}", r["metrics"]) for r in runs[:6]]),
                        width="stretch", key="overlay-curves")


def compare_table(frame):
    """The compare frame as the user reads it: the interval as one column, per-image results left out."""
    ci = [interval_text(low, high) if high == high and high is not None else "—"
          for low, high in zip(frame["ci95 low"], frame["ci95 high"])]
    table = frame.drop(columns=["label", "kind", "ci95 low", "ci95 high", "test_split", "test_correct"])
    table.insert(2, _("95 % CI (Wilson)"), ci)
    table["method"] = table["method"].map(tr_stored)  # a DataFrame keeps text, not Messages: matched back
    return table.rename(columns={"n_test": _("test images"), "method": _("method"), "test accuracy": _("test accuracy"),
                                 "image size": _("image size"), "seconds": _("seconds"), "from cache": _("from cache"),
                                 "run": _("run"), "stopped early": _("stopped early")})


def compare_tab(source: Source) -> None:
    store = job_manager().store
    runs = source_runs(store, source)
    frame = compare_frame(runs)
    if frame.empty:
        st.info(_("Run the probes, the baselines or a fine-tune: each result lands here, on the same split."))
        return
    sizes = mixed_sizes(frame)
    if len(sizes) > 1:
        st.warning(_("These methods ran at different image sizes ({sizes}): compare them with care, or run the "
                     "fine-tune at the sidebar's size. Each bar shows its size.").format(
                       sizes=", ".join(f"{s}px" for s in sizes)), icon=":material/warning:")
    # No size here: each bar says its own.
    produced_by = _("{model} ({weights}) on {data}").format(model=source.backbone.name,
                                                            weights=tr(describe_weights(source.backbone)),
                                                            data=tr(describe_data(source.dataset)))
    # A DataFrame keeps the engine's English as plain text: each part matched back to its catalogue entry.
    shown = frame.assign(method=frame["method"].map(tr_stored),
                         label=[" · ".join(map(tr_stored, label.split(" · "))) for label in frame["label"]])
    show_chart(views.compare_chart(shown, produced_by), width="stretch", key="compare")
    st.dataframe(compare_table(frame), hide_index=True, width="stretch",
                 column_config={_("test accuracy"): st.column_config.NumberColumn(format="percent")})
    pairs = compare_pairs(shown)
    if pairs:
        st.markdown(_("**Which differences are real** · McNemar's exact test on the test images both methods were "
                      "scored on; p ≥ 0.05 counts as a tie"))
        st.markdown("\n".join(f"- {pair_sentence(p)}" for p in pairs))
    st.download_button(_("Runs as CSV"), store.metrics_csv([r["id"] for r in runs]), "lab-runs.csv", "text/csv")


def efficiency_caption(rows: list[dict]) -> str:
    """How each point's interval was made: the draws it is a mean of, and the single run with all labels."""
    drawn = [row for row in rows if row.get("interval") == "t"]
    draws = {row["method"]: row["draws"] for row in drawn}
    probes = max((n for method, n in draws.items() if method != "finetune"), default=1)
    text = _("Each point is the mean over {n} draws of the labelled images, with its 95 % t-interval over the draws "
             "(Student's t); every draw is scored on the same {n_test} test images.").format(
        n=probes, n_test=f"{rows[0].get('n_test', 0):,}")
    if "finetune" in draws:
        text += " " + _("Fine-tuning is slow, so it is drawn only {n} times: its interval is wider.").format(
            n=draws["finetune"])
    return text + " " + _("With all labels there is nothing to draw: one run, with Wilson's 95 % CI on the test "
                          "images.")


def efficiency_tab(source: Source) -> None:
    with_finetune = st.toggle(_("Include fine-tuning (slow on a CPU: 16 short runs)"), False, key="eff_ft")
    ft = settings.get(FinetuneChoice).config()
    request = LabRequest(source, knn=settings.get(KNNChoice).config(), finetune=ft, with_finetune=with_finetune)
    job = job_slot("efficiency", request, _("Run label efficiency (1, 2, 5, 10, 25, all per class)"))
    if job is not None:
        show_chart(views.efficiency_chart(job.result, source.describe()), width="stretch", key="efficiency")
        if job.result and "ci95" in job.result[0]:
            st.caption(efficiency_caption(job.result))
        st.dataframe(views.efficiency_table(job.result), hide_index=True,
                     column_config={_("mean"): st.column_config.NumberColumn(format="percent")})


def layers_tab(source: Source) -> None:
    job = job_slot("layers", LabRequest(source), _("Run the layer sweep"), button_help=_(
        "A linear probe on every block's pooled output and on the final pooled features, and linear CKA between every "
        "pair of them."))
    if job is not None:
        rows = job.result["rows"]
        show_chart(views.layers_chart(rows, source.describe()), width="stretch", key="layers")
        if rows and rows[0].get("n_test"):
            st.caption(_("Every stage's probe is scored on the same {n} test images; the bars are Wilson's "
                         "95 % CI.").format(n=f"{rows[0]['n_test']:,}"))
        if comparison := views.inner_layer_caption(job.result.get("inner_vs_final")):
            st.markdown(comparison)
        show_chart(similarity.layer_heatmap(job.result["cka"], source.describe()), width="stretch",
                        key="layers-cka")
        st.caption(similarity.heatmap_caption(job.result["cka"], source.describe()))


st.title(_("Probe vs fine-tune"))
st.caption(_("What does a frozen pretrained representation give, and what does adapting the whole network add? "
             "Every number on this page uses the same seeded train/test split; each one says the image size it ran "
             "at, and the Compare tab warns when they differ."))
source = source_controls()
source_header(source)
tabs = st.tabs([_("Probes"), _("Baselines"), _("Fine-tune"), _("Compare"), _("Label efficiency"), _("Layers")])
for tab, render in zip(tabs, (probes_tab, baselines_tab, finetune_tab, compare_tab, efficiency_tab, layers_tab)):
    with tab:
        render(source)

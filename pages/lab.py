"""Probe vs fine-tune: frozen features (linear probe, k-NN) against adapting the network, on one split."""
from functools import partial

import pandas as pd
import streamlit as st

from pages import lab_views as views
from pages.common import ensure_router, format_seconds, job_manager, job_panel, live_job
from pages.controls import source_controls
from ptm_core.configs import FINETUNE_MODES, FinetuneConfig, KNNConfig, ProjectionConfig, stable_hash
from ptm_core.jobs import DONE, FINISHED
from ptm_core import lab

MODE_HELP = {"full": "everything trainable", "last-n": "last N blocks + head; the rest frozen",
             "lp-ft": "head initialised from the linear probe, then everything (Kumar et al. 2022)",
             "scratch": "random init, everything trainable — what pretraining buys"}


def job_slot(kind: str, source: lab.LabSource, parts: list, title: str, work, label: str, *, live_extra=None,
             button_help: str | None = None):
    """A button that starts (or reattaches to) one job; returns the job when it has finished."""
    key = stable_hash([kind, source.key(), parts])
    manager = job_manager()
    job = manager.find(key)
    if st.button(label, key=f"start-{kind}", help=button_help, disabled=job is not None and job.status in ("queued", "running")):
        if job is None or job.status not in ("queued", "running", DONE):
            job = manager.submit(key, title, work, kind=f"lab-{kind}", config=source.to_dict() | {"parts": parts})
    if job is None:
        return None
    if job.status in FINISHED:
        job_panel(job)
        return job if job.status == DONE else None
    live_job(job.id, live_extra)
    return None


def probes_tab(source: lab.LabSource) -> None:
    cols = st.columns(2)
    k = cols[0].slider("k-NN: neighbours (k)", 1, 100, 20, key="knn_k")
    temperature = cols[1].number_input("k-NN: temperature", 0.01, 1.0, 0.07, step=0.01, key="knn_t")
    knn = KNNConfig(k=int(k), temperature=float(temperature))
    job = job_slot("probes", source, [knn.key()], f"probes · {source.describe()}",
                   partial(lab.run_probes, source, knn), "Run linear probe + k-NN", button_help=
                   "Standardised features, L-BFGS logistic regression with C swept on a validation split; "
                   "k-NN on L2-normalised features with cosine similarity and a temperature-weighted vote (DINO).")
    if job is None:
        return
    result = job.result
    fs = result.features
    cols = st.columns(3)
    cols[0].metric("Linear probe", f"{result.linear.test_accuracy:.1%}", help=f"C = {result.linear.best_C:g}")
    cols[1].metric("k-NN", f"{result.knn.test_accuracy:.1%}", help=f"k = {result.knn.k}, T = {result.knn.temperature}")
    cols[2].metric("Split", f"{result.linear.n_train:,} train / {result.linear.n_test:,} test")
    st.plotly_chart(views.sweep_chart(result.linear.val_curve), width="stretch", key="lab-sweep")
    st.plotly_chart(views.per_class_chart(fs.labels, fs.class_names, {"linear probe": result.linear,
                                                                        "k-NN": result.knn}),
                    width="stretch", key="per-class")
    method = st.radio("Inspect", ["linear probe", "k-NN"], horizontal=True, key="inspect_method")
    chosen = result.linear if method == "linear probe" else result.knn
    views.confusion_explorer(source.dataset, fs.labels, fs.class_names, chosen, method)
    st.markdown("**Most confident mistakes**")
    views.mistakes_gallery(source.dataset, fs.labels, fs.class_names, chosen)


def baselines_tab(source: lab.LabSource) -> None:
    st.caption("Same split as the probes. Raw pixels: what any backbone has to beat. Random init: the same "
               "architecture without pretraining — the difference is what pretraining buys.")
    cols = st.columns(2)
    with cols[0]:
        job = job_slot("pixels", source, [], f"raw pixels · {source.dataset.spec}", partial(lab.run_pixels, source),
                       "Raw-pixel baseline")
        if job is not None:
            st.metric("Raw pixels (32×32 grey)", f"{job.result.test_accuracy:.1%}")
    with cols[1]:
        job = job_slot("random", source, [], f"random-init probe · {source.describe()}",
                       partial(lab.run_random_probe, source), "Random-init baseline")
        if job is not None:
            st.metric("Random-init backbone + probe", f"{job.result.test_accuracy:.1%}")


def finetune_form(source: lab.LabSource) -> FinetuneConfig:
    cols = st.columns(4)
    mode = cols[0].selectbox("Mode", FINETUNE_MODES, index=FINETUNE_MODES.index("lp-ft"), key="ft_mode",
                             help="\n".join(f"- **{m}**: {h}" for m, h in MODE_HELP.items()))
    epochs = cols[1].number_input("Epochs", 1, 100, 1, key="ft_epochs")
    size = cols[2].select_slider("Image size", [32, 64, 96, 128, 160, 224], 96, key="ft_size")
    batch = cols[3].number_input("Batch size", 4, 512, 32, key="ft_batch")
    cols = st.columns(4)
    lr_head = cols[0].number_input("LR head", 1e-6, 1.0, 1e-3, format="%.0e", key="ft_lr_head")
    lr_backbone = cols[1].number_input("LR backbone", 1e-7, 1.0, 1e-4, format="%.0e", key="ft_lr_backbone")
    decay = cols[2].number_input("Weight decay", 0.0, 1.0, 0.05, key="ft_wd")
    seed = cols[3].number_input("Init seed", 0, 2**31 - 1, 0, key="ft_seed")
    cols = st.columns(2)
    augment = cols[0].toggle("Augment (random resized crop + flip)", False, key="ft_augment",
                             help="Flips can hurt on digits, so this starts off here.")
    last_n = cols[1].number_input("Last N blocks (last-n mode)", 1, 12, 2, key="ft_last_n")
    return FinetuneConfig(mode=mode, epochs=int(epochs), lr_head=float(lr_head), lr_backbone=float(lr_backbone),
                          batch_size=int(batch), image_size=int(size), weight_decay=float(decay), augment=augment,
                          last_n=int(last_n), seed=int(seed))


def live_curves(job) -> None:
    if not job.metrics.get("train_curve"):
        st.caption("The loss and validation curves appear here after the first training step.")
        return
    st.plotly_chart(views.curves_chart([(job.config.get("parts", ["run"])[0], job.metrics)]), width="stretch",
                    key=f"live-curves-{job.id}")


def finetune_tab(source: lab.LabSource) -> None:
    config = finetune_form(source)
    job = job_slot("finetune", source, [config.key()], f"fine-tune {config.mode} · {source.describe()}",
                   partial(lab.run_finetune, source, config), "Start fine-tuning", live_extra=live_curves,
                   button_help="Runs as a job: switch pages or reload freely. Cancel stops it and keeps the best "
                               "checkpoint so far, which is still scored on the test split.")
    if job is not None:
        result = job.result
        cols = st.columns(4)
        cols[0].metric("Test accuracy", f"{result.test_accuracy:.1%}")
        cols[1].metric("Best epoch", result.best_epoch)
        cols[2].metric("Took", format_seconds(result.seconds))
        cols[3].metric("Stopped early", "yes" if result.stopped_early else "no")
        if result.lp_test_accuracy is not None:
            st.caption(f"The probe-initialised head alone scored {result.lp_test_accuracy:.1%} before fine-tuning.")
        st.plotly_chart(views.curves_chart([(config.mode, job.metrics)]), width="stretch", key="done-curves")
        st.caption(f"Best checkpoint: `{result.checkpoint}`")
        drift = job_slot("drift", source, [result.checkpoint], f"feature drift · {config.mode}",
                         partial(lab.run_drift, source, result.checkpoint, config.image_size,
                                 ProjectionConfig(method="pca")), "Show feature drift (before vs after)")
        if drift is not None:
            views.drift_charts(drift.result)
    overlay_runs(source)


def overlay_runs(source: lab.LabSource) -> None:
    store = job_manager().store
    runs = [r for r in store.runs(kind="lab-finetune") if (r["config"] or {}).get("source_key") == source.key()
            and r["status"] == DONE] if store else []
    if len(runs) > 1:
        st.markdown("**All fine-tune runs on this data and backbone**")
        st.plotly_chart(views.curves_chart([(f"{r['metrics'].get('mode')} · {r['id'][:6]}", r["metrics"])
                                            for r in runs[:6]]), width="stretch", key="overlay-curves")


def compare_tab(source: lab.LabSource) -> None:
    store = job_manager().store
    runs = [r for r in store.runs() if (r["config"] or {}).get("source_key") == source.key() and r["status"] == DONE]
    frame = views.compare_frame(runs)
    if frame.empty:
        st.info("Run the probes, the baselines or a fine-tune: each result lands here, on the same split.")
        return
    st.plotly_chart(views.compare_chart(frame), width="stretch", key="compare")
    st.dataframe(frame.drop(columns=["label"]), hide_index=True, width="stretch",
                 column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})
    st.download_button("Runs as CSV", store.metrics_csv([r["id"] for r in runs]), "lab-runs.csv", "text/csv")


def efficiency_tab(source: lab.LabSource) -> None:
    with_finetune = st.toggle("Include fine-tuning (slow on a CPU: 16 short runs)", False, key="eff_ft")
    ft = FinetuneConfig(epochs=1, augment=False)
    job = job_slot("efficiency", source, [with_finetune], f"label efficiency · {source.describe()}",
                   partial(lab.run_label_efficiency_job, source, KNNConfig(), with_finetune, ft),
                   "Run label efficiency (1, 2, 5, 10, 25, all per class)")
    if job is not None:
        st.plotly_chart(views.efficiency_chart(job.result), width="stretch", key="efficiency")
        st.dataframe(pd.DataFrame(job.result)[["k", "method", "mean", "std"]], hide_index=True)


def layers_tab(source: lab.LabSource) -> None:
    job = job_slot("layers", source, [], f"layer sweep · {source.describe()}", partial(lab.run_layers, source),
                   "Run the layer sweep")
    if job is not None:
        st.plotly_chart(views.layers_chart(job.result), width="stretch", key="layers")


ensure_router()
st.title("Probe vs fine-tune")
st.caption("What does a frozen pretrained representation give, and what does adapting the whole network add? "
           "Every number on this page uses the same seeded train/test split, so they are comparable.")
source = lab.LabSource(*source_controls())
st.markdown(f"**{source.describe()}**")
tabs = st.tabs(["Probes", "Baselines", "Fine-tune", "Compare", "Label efficiency", "Layers"])
for tab, render in zip(tabs, (probes_tab, baselines_tab, finetune_tab, compare_tab, efficiency_tab, layers_tab)):
    with tab:
        render(source)

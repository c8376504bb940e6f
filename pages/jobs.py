"""Jobs: the live queue of this server, and every run the store has kept, with exports."""
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.ui.i18n import N_, _, tr_stored
from pages.ui.job_views import format_seconds, job_panel
from pages.ui.services import job_manager
from pages.ui.text import md
from ptm_core.flows import ACTIVE, STATUS_WORDS, finetune_settings, stopped_early, title_parts

st.title(_("Jobs"))
st.caption(_("Long work runs outside the page: switching pages or reloading the browser does not stop it. "
             "Two lanes run side by side, one job each: compute (extraction, probes, fine-tuning) and maps "
             "(UMAP's one-off compile, then maps); the rest wait in their lane's queue."))


def result_text(metrics: dict) -> str:
    """The headline number of a run, whatever its kind (maps and comparisons have no test accuracy)."""
    if metrics.get("test_accuracy") is not None:
        return _("test accuracy {value}").format(value=f"{metrics['test_accuracy']:.1%}")
    if metrics.get("trustworthiness") is not None:
        return _("trustworthiness {value}").format(value=f"{metrics['trustworthiness']:.2f}")
    if metrics.get("mean_agreement") is not None:
        return _("neighbour agreement {value}").format(value=f"{metrics['mean_agreement']:.2f}")
    if metrics.get("best_linear_mean") is not None:  # a leaderboard (flows/bench.py)
        return _("best: {name}, {value} (mean over seeds)").format(name=metrics.get("best", ""),
                                                                   value=f"{metrics['best_linear_mean']:.1%}")
    if metrics.get("rows"):
        return _("{n} rows").format(n=len(metrics["rows"]))
    return ""


def status_text(run: dict) -> str:
    """A run's state as the user reads it: a fine-tune cancelled part-way ends "done" in the store (its best weights so
    far are kept and scored), but it did not run its course, so it says so."""
    stop = stopped_early(run["metrics"] or {})
    if run["status"] != "done" or stop is None:
        return tr_stored(run["status"])
    epoch, epochs = stop
    if epoch and epochs:
        return _("cancelled at epoch {epoch} of {epochs} (best checkpoint kept)").format(epoch=epoch, epochs=epochs)
    return _("cancelled (best checkpoint kept)")


def settings_text(config: dict) -> str:
    """A fine-tune's own settings (its size is its own, not the sidebar's); empty for other runs."""
    ft = finetune_settings(config)
    if not ft:
        return ""
    return _("{mode}, {epochs} epochs, lr {lr_head:g} head / {lr_backbone:g} backbone, batch {batch_size}, "
             "{image_size}px").format(**ft)


# The run table's columns (title_parts' keys and the rest), translated where shown.
COLUMNS = {"what": N_("what"), "model (weights)": N_("model (weights)"), "data": N_("data"), "size": N_("size"),
           "status": N_("status"), "settings": N_("settings"), "result": N_("result"), "took": N_("took"), "started": N_("started"),
           "message": N_("message")}
LANES = {"compute": N_("compute"), "map": N_("map")}
# A run's kind, shown as "what" where its title does not say (an explore or compare run, a tour step).
KINDS = {"explore": N_("explore"), "compare": N_("compare"), "tour": N_("tour"), "bench": N_("leaderboard"),
         "map": N_("map")}


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else ""


@st.fragment(run_every=1.0)
def live_queue() -> None:
    active = [job for job in job_manager().jobs() if job.status in ACTIVE]
    st.subheader(_("Queue ({n})").format(n=len(active)))
    if not active:
        st.caption(_("Nothing queued or running."))
    for job in active:
        st.markdown(_("**{title}** · {lane} lane · {status}").format(title=md(job.title), lane=_(LANES[job.lane]),
                                                                     status=md(STATUS_WORDS[job.status])))
        job_panel(job)


def run_history() -> None:
    store = job_manager().store
    runs = store.runs() if store else []
    st.subheader(_("Runs ({n})").format(n=len(runs)))
    if not runs:
        st.info(_("No runs yet. Start one from **Features & probe**."))
        return
    # A title names what ran, the model, the data and the size: one short column each, none cut off. The store
    # keeps the engine's English; each part is matched back to its catalogue entry here.
    frame = pd.DataFrame([{
        **{_(COLUMNS[k]): _(KINDS[v]) if v in KINDS else tr_stored(v)
           for k, v in title_parts(r["title"], r["kind"]).items()},
        _(COLUMNS["status"]): status_text(r), _(COLUMNS["settings"]): settings_text(r["config"] or {}),
        _(COLUMNS["result"]): result_text(r["metrics"] or {}),
        _(COLUMNS["took"]): format_seconds((r["finished"] or time.time()) - r["started"]) if r["started"] else "",
        _(COLUMNS["started"]): _when(r["started"] or r["created"]),
        _(COLUMNS["message"]): tr_stored(r["error"] or r["message"]), "id": r["id"],
    } for r in runs])
    st.dataframe(frame, hide_index=True, width="stretch", placeholder="—")
    st.download_button(_("Metrics of all runs (CSV)"), store.metrics_csv(), "ptm-runs.csv", "text/csv",
                       icon=":material/download:")
    chosen = st.selectbox(_("Run"), [r["id"] for r in runs], key="run_detail",
                          format_func=lambda i: next(f"{tr_stored(r['title'])} · {status_text(r)} · "
                                                     f"{_when(r['created'])}"
                                                     for r in runs if r["id"] == i))
    run = store.get(chosen)
    features = Path((run["artifacts"] or {}).get("features", ""))
    cols = st.columns(2)
    cols[0].download_button(_("This run's metrics (CSV)"), store.metrics_csv([chosen]), f"run-{chosen}.csv", "text/csv")
    if features.is_file():
        cols[1].download_button(_("Its features (npz)"), features.read_bytes(), f"features-{chosen}.npz",
                                "application/octet-stream")
    with st.expander(_("Config, metrics and log")):
        st.json({"config": run["config"], "metrics": run["metrics"], "artifacts": run["artifacts"]})
        st.code("\n".join(run["log"] or []) or _("(empty)"))


live_queue()
run_history()

"""Jobs: the live queue of this server, and every run the store has kept, with exports."""
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import ensure_router, format_seconds, job_manager, job_panel
from ptm_core.jobs import QUEUED, RUNNING

ensure_router()
st.title("Jobs")
st.caption("Long work runs outside the page: switching pages or reloading the browser does not stop it. "
           "Two lanes run side by side, one job each: compute (extraction, probes, fine-tuning) and maps "
           "(UMAP's one-off compile, then maps); the rest wait in their lane's queue.")


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else ""


@st.fragment(run_every=1.0)
def live_queue() -> None:
    active = [job for job in job_manager().jobs() if job.status in (QUEUED, RUNNING)]
    st.subheader(f"Queue ({len(active)})")
    if not active:
        st.caption("Nothing queued or running.")
    for job in active:
        st.markdown(f"**{job.title}** · {job.lane} lane · {job.status}")
        job_panel(job)


def run_history() -> None:
    store = job_manager().store
    runs = store.runs() if store else []
    st.subheader(f"Runs ({len(runs)})")
    if not runs:
        st.info("No runs yet. Start one from **Features & probe**.")
        return
    frame = pd.DataFrame([{
        "run": r["title"], "status": r["status"], "test accuracy": (r["metrics"] or {}).get("test_accuracy"),
        "took": format_seconds((r["finished"] or time.time()) - r["started"]) if r["started"] else "",
        "started": _when(r["started"] or r["created"]), "message": r["error"] or r["message"], "id": r["id"],
    } for r in runs])
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})
    st.download_button("Metrics of all runs (CSV)", store.metrics_csv(), "ptm-runs.csv", "text/csv",
                       icon=":material/download:")
    chosen = st.selectbox("Run", [r["id"] for r in runs], key="run_detail",
                          format_func=lambda i: next(f"{r['title']} · {r['status']} · {_when(r['created'])}"
                                                     for r in runs if r["id"] == i))
    run = store.get(chosen)
    features = Path((run["artifacts"] or {}).get("features", ""))
    cols = st.columns(2)
    cols[0].download_button("This run's metrics (CSV)", store.metrics_csv([chosen]), f"run-{chosen}.csv", "text/csv")
    if features.is_file():
        cols[1].download_button("Its features (npz)", features.read_bytes(), f"features-{chosen}.npz",
                                "application/octet-stream")
    with st.expander("Config, metrics and log"):
        st.json({"config": run["config"], "metrics": run["metrics"], "artifacts": run["artifacts"]})
        st.code("\n".join(run["log"] or []) or "(empty)")


live_queue()
run_history()

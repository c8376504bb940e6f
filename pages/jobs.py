"""Jobs: everything queued, running and finished in this server, with live progress."""
import time

import pandas as pd
import streamlit as st

from pages.common import format_seconds, job_manager, job_panel
from ptm_core.jobs import QUEUED, RUNNING

st.title("Jobs")
st.caption("Long work runs outside the page: switching pages or reloading the browser does not stop it. "
           "One heavy job runs at a time on a CPU; the rest wait in the queue.")


@st.fragment(run_every=1.0)
def job_table() -> None:
    jobs = job_manager().jobs()
    if not jobs:
        st.info("No jobs yet. Start one from **Features & probe**.")
        return
    st.dataframe(pd.DataFrame([{
        "job": job.title, "status": job.status, "progress": job.progress, "elapsed": format_seconds(job.elapsed),
        "left": format_seconds(job.eta_seconds) if job.status == RUNNING else "",
        "created": time.strftime("%H:%M:%S", time.localtime(job.created)), "message": job.error or job.message,
    } for job in jobs]), hide_index=True, width="stretch",
        column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)})
    for job in jobs:
        if job.status in (QUEUED, RUNNING):
            st.markdown(f"**{job.title}**")
            job_panel(job)
        with st.expander(f"Log · {job.title} · {job.status}"):
            st.code("\n".join(job.log) or "(empty)")


job_table()

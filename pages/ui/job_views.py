"""How a job looks on a page: live progress with its estimate and Cancel, then its result or failure."""
from __future__ import annotations

import streamlit as st

from pages.ui.i18n import _
from pages.ui.services import job_manager
from pages.ui.text import md
from ptm_core.flows import DONE, FINISHED, QUEUED, RUNNING, Job, format_duration


def format_seconds(seconds: float | None) -> str:
    if seconds is None:  # e.g. a cache written before compute times were kept
        return "—"
    if seconds < 9.95:  # "0 s" for a 0.2 s extraction would read as nothing done
        return _("{s} s").format(s=f"{seconds:.1f}")
    if seconds < 60:
        return _("{s} s").format(s=f"{seconds:.0f}")
    return _("{m} min {s} s").format(m=f"{seconds // 60:.0f}", s=f"{seconds % 60:02.0f}")


def eta_text(job: Job) -> str:
    """The engine's time-left phrase (ptm_core.runs.eta.eta_phrase), in the interface's language."""
    seconds, step = job.eta_seconds, job.eta_step_only
    if seconds is None:
        return _("estimating time left…")
    if seconds < 5:
        return _("almost done in this step") if step else _("almost done")
    return (_("about {time} left in this step") if step else _("about {time} left")).format(time=duration_text(seconds))


def duration_text(seconds: float) -> str:
    """ptm_core.runs.eta.format_duration's rounding, in the interface's language."""
    return format_duration(seconds, {"s": _("{s} s"), "min": _("{m} min"), "h": _("{h} h"),
                                     "h_min": _("{h} h {m} min")})


def job_panel(job: Job) -> None:
    """Progress, estimate, cancel and the one-line failure reason for a job."""
    status = job.status
    if status in (QUEUED, RUNNING):
        if status == RUNNING:
            # The engine says "estimating time left…" until its estimate is trustworthy (ptm_core/runs/eta.py).
            text = f"{md(job.message)} — {job.progress:.0%}, {eta_text(job)}"
        else:
            text = _("queued: waiting for the running job in its lane to finish")
        st.progress(job.progress, text=text)
        if st.button(_("Cancel"), key=f"cancel-{job.id}", icon=":material/stop_circle:"):
            job.cancel()
            st.toast(_("Cancelling…"))
    elif status == "failed":
        st.error(md(job.error) if job.error else _("The job failed."), icon=":material/error:")
    elif status == "cancelled":
        st.warning(_("{title}: cancelled. What it had finished is kept; start it again to continue from there.").format(
            title=md(job.title)),
                   icon=":material/info:")
    elif status == "interrupted":
        st.warning(_("{title}: interrupted (the server stopped). Start it again to continue.").format(title=md(job.title)),
                   icon=":material/info:")


def job_outcome(job: Job, show_result, live_extra=None) -> None:
    """A started job as the page shows it: its result once done, else its failure or live progress
    (and `live_extra(job)` below it, e.g. a partial result)."""
    status = job.status  # one reading: a job that ends between two checks must not fall through both
    if status == DONE:
        show_result(job.result)
    elif status in FINISHED:
        job_panel(job)
    else:
        st.markdown(f"**{md(job.title)}**")
        live_job(job.id, live_extra)


@st.fragment(run_every=1.0)
def live_job(job_id: str, extra=None) -> None:
    """Progress of a queued or running job, polled once a second; the whole page reruns when it ends."""
    job = job_manager().get(job_id)
    if job is None:
        return
    job_panel(job)
    if extra is not None:
        extra(job)
    if job.status in FINISHED:
        st.rerun(scope="app")

"""Datasets: a sample gallery per class and the class balance, before any compute is spent."""
import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages.ui.gallery import gallery
from pages.ui.i18n import _
from pages.ui.services import dataset_or_error, upload_limit_mb
from pages.ui.text import md, plot_text
from ptm_core.base import DatasetConfig, PTMError
from ptm_core.flows import ingest_upload, list_datasets

SAMPLES_PER_CLASS = 8

st.title(_("Datasets"))
entries = {e.name: e for e in list_datasets()}
for entry in entries.values():
    hint = entry.unavailable()
    absent = " · **{label}**: {hint}".format(label=_("not installed"), hint=md(hint)) if hint else ""
    st.markdown(f"- **`{entry.name}{':ARG' if entry.takes_argument else ''}`** — {md(entry.description)}{absent}")

limit = upload_limit_mb()
upload = None if limit is None else st.file_uploader(
    _("Upload a zip: one folder per class, or a flat folder of images plus a CSV with filename,label columns"),
    type=["zip"], key="datasets_upload", max_upload_size=limit)
if upload is not None:
    try:
        st.session_state["dataset_spec"] = ingest_upload(upload.getvalue(), upload.name)
    except PTMError as exc:
        st.error(md(exc.for_ui()), icon=":material/error:")
st.session_state.setdefault("dataset_spec", "mnist5k")
spec = st.text_input(_("Dataset spec"), key="dataset_spec",
                     help=_("e.g. digits, fashion-mnist:test, shapes:n=300,classes=4, folder:/data/pets, "
                            "zip:/data/pets.zip, tv:cifar10:test"))
config = DatasetConfig(spec.strip())
dataset = dataset_or_error(config) if spec.strip() else None
if dataset is not None:
    counts = dataset.class_counts()
    st.write(_("**{n} images**, {classes} classes.").format(n=f"{len(dataset):,}", classes=len(counts)))
    if dataset.skipped:
        with st.expander(_("{n} files skipped").format(n=len(dataset.skipped)), icon=":material/warning:"):
            st.dataframe(pd.DataFrame(dataset.skipped, columns=[_("file"), _("reason")]), hide_index=True, width="stretch")
    frame = pd.DataFrame({"class": [plot_text(c) for c in counts], "images": list(counts.values())})
    balance = px.bar(frame, x="class", y="images", height=260, title=_("Class balance · {spec}").format(spec=plot_text(spec.strip())),
                     labels={"class": _("class"), "images": _("images")})
    balance.update_xaxes(type="category")  # class names such as 0-9 are categories: one labelled bar each
    st.plotly_chart(balance, width="stretch")
    rng = np.random.default_rng(0)
    for index, name in enumerate(dataset.class_names):
        members = np.flatnonzero(dataset.labels == index)
        shown = rng.choice(members, size=min(SAMPLES_PER_CLASS, len(members)), replace=False)
        st.markdown(_("**{name}** · {n} images").format(name=md(name), n=len(members)))
        gallery(config, shown, [dataset.ids[int(i)] for i in shown], size=72)

"""Datasets: a sample gallery per class and the class balance, before any compute is spent."""
import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages.ui import settings
from pages.ui.choices import DataChoice
from pages.ui.gallery import gallery, skipped_notice
from pages.ui.i18n import _, show_chart
from pages.ui.services import dataset_or_error
from pages.ui.sidebar import upload_control
from pages.ui.text import md, plot_text
from ptm_core.base import DatasetConfig, data_name, list_uploads
from ptm_core.flows import list_datasets

SAMPLES_PER_CLASS = 8
SHOWN = "datasets_shown"  # the spec this page shows: typed below, or an upload (by its own name)


def _typed() -> None:
    st.session_state[SHOWN] = st.session_state["dataset_spec"].strip()


def _picked() -> None:
    st.session_state[SHOWN] = st.session_state["datasets_upload_pick"]


def use_button(spec: str) -> None:
    """An upload shown here becomes the sidebar's dataset on every page."""
    data = settings.get(DataChoice)
    if data.dataset == "zip" and f"zip:{data.zip_path}" == spec:
        st.success(_("The sidebar uses {name} on every page.").format(name=md(data_name(spec))),
                   icon=":material/check_circle:")
    elif st.button(_("Use this dataset"), icon=":material/input:", type="primary", key="use-dataset"):
        settings.update(DataChoice, dataset="zip", zip_path=spec.removeprefix("zip:"))
        st.rerun()


def pick_upload() -> None:
    """The uploader, and the zips stored so far by their own names."""
    stored = upload_control("datasets_upload")
    if stored and stored != st.session_state.get("datasets_last_upload"):  # a new upload: show it
        st.session_state["datasets_last_upload"] = st.session_state[SHOWN] = stored
    uploads = {u.spec: u.name for u in list_uploads()}
    if uploads:
        shown = st.session_state.get(SHOWN)
        st.session_state["datasets_upload_pick"] = shown if shown in uploads else None
        st.selectbox(_("Your uploads"), list(uploads), key="datasets_upload_pick", on_change=_picked,
                     format_func=uploads.get,
                     placeholder=_("Show one of the zips uploaded so far"))


st.title(_("Datasets"))
entries = {e.name: e for e in list_datasets()}
for entry in entries.values():
    hint = entry.unavailable()
    absent = " · **{label}**: {hint}".format(label=_("not installed"), hint=md(hint)) if hint else ""
    st.markdown(f"- **`{entry.name}{':ARG' if entry.takes_argument else ''}`** — {md(entry.description)}{absent}")

pick_upload()
st.session_state.setdefault("dataset_spec", "mnist5k")
chosen = st.session_state.get(SHOWN) or ""
if data_name(chosen) != chosen:  # an upload is shown under its own name: no storage path in the box
    st.session_state["dataset_spec"] = ""
st.text_input(_("Dataset spec"), key="dataset_spec", on_change=_typed,
              placeholder=_("or another dataset by its spec, e.g. digits"),
              help=_("e.g. digits, fashion-mnist:test, shapes:n=300,classes=4, folder:/data/pets, "
                     "zip:/data/pets.zip, tv:cifar10:test"))
spec = st.session_state.get(SHOWN) or st.session_state["dataset_spec"].strip()
data = settings.get(DataChoice)
# The sidebar's limit and seed, as every other page draws this data: a stratified subset of that many images.
config = DatasetConfig(spec, data.limit or None, data.seed)
dataset = dataset_or_error(config) if spec else None
if dataset is not None:
    name = data_name(spec)
    counts = dataset.class_counts()
    st.subheader(name)
    limited = _(" (the sidebar's limit of {limit}, seed {seed})").format(limit=f"{data.limit:,}", seed=data.seed) \
        if data.limit else ""
    st.write(_("**{n} images**, {classes} classes.").format(n=f"{len(dataset):,}", classes=len(counts)) + limited)
    if spec.startswith("zip:") and name != spec:
        use_button(spec)
    skipped_notice(dataset.skipped)
    frame = pd.DataFrame({"class": [plot_text(c) for c in counts], "images": list(counts.values())})
    balance = px.bar(frame, x="class", y="images", height=260,
                     title=_("Class balance · {spec}").format(spec=plot_text(name)),
                     labels={"class": _("class"), "images": _("images")})
    balance.update_xaxes(type="category")  # class names such as 0-9 are categories: one labelled bar each
    show_chart(balance, width="stretch")
    rng = np.random.default_rng(0)
    for index, class_name in enumerate(dataset.class_names):
        members = np.flatnonzero(dataset.labels == index)
        shown = rng.choice(members, size=min(SAMPLES_PER_CLASS, len(members)), replace=False)
        st.markdown(_("**{name}** · {n} images").format(name=md(class_name), n=len(members)))
        gallery(config, shown, [dataset.ids[int(i)] for i in shown], size=72)

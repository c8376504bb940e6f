"""The sidebar the analysis pages share: which data, which backbone and weights, which image size.

Every control is bound to the settings model (pages/ui/settings.py), so a choice made on one page is
the choice on every page, survives a refresh and travels in a shared link.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.ui import settings
from pages.ui.choices import IMAGE_SIZES, BackboneChoice, DataChoice, ExtractionChoice
from pages.ui.i18n import N_, _
from pages.ui.services import backbone_names, dataset_kinds, model_card, upload_limit_mb
from pages.ui.text import md
from ptm_core.base import PTMError, Source, list_uploads
from ptm_core.flows import TV_SOURCES, ingest_upload, list_datasets

WEIGHT_LABELS = {"bundled": N_("Bundled (offline ImageNet)"), "hub": N_("Hugging Face hub"), "random": N_("Random init"),
                 "file": N_("Local file")}


BY_PATH = ""  # the uploads list's last entry: a zip on the server, typed as a path


def _pick_upload() -> None:
    chosen = st.session_state.get("w_zip_choice", BY_PATH)
    st.session_state["zip_by_path"] = chosen == BY_PATH
    settings.update(DataChoice, zip_path=chosen)


def upload_control(key: str) -> str | None:
    """The uploader: a new zip is stored (once per file) and its spec returned; a bad one is one line of error."""
    limit = upload_limit_mb()
    upload = None if limit is None else st.file_uploader(
        _("Upload a zip (one folder per class, or images + labels.csv)"), type=["zip"], key=key, max_upload_size=limit)
    if upload is None:
        return None
    try:
        return ingest_upload(upload.getvalue(), upload.name)
    except PTMError as exc:
        st.error(md(exc.for_ui()), icon=":material/error:")
        return None


def zip_controls() -> None:
    """The zips uploaded so far, by their own names (the newest first, chosen while none is); the uploader adds
    another; a zip already on the server is typed as a path."""
    listed = st.container()  # the uploads list above the uploader, drawn after it has stored a new one
    stored = upload_control("zip_upload")
    current = settings.get(DataChoice).zip_path
    if stored and stored.removeprefix("zip:") != st.session_state.get("zip_last_upload"):
        st.session_state["zip_last_upload"] = current = stored.removeprefix("zip:")  # a new upload: use it
        settings.update(DataChoice, zip_path=current)
    uploads = {u.path: u.name for u in list_uploads()}
    if uploads and not current and not st.session_state.get("zip_by_path"):
        current = next(iter(uploads))
        settings.update(DataChoice, zip_path=current)
    with listed:
        if uploads:
            st.session_state["w_zip_choice"] = current if current in uploads else BY_PATH
            st.selectbox(_("Uploaded zip"), [*uploads, BY_PATH], key="w_zip_choice", on_change=_pick_upload,
                         format_func=lambda p: uploads.get(p) or _("another zip, by its path on the server"))
        if current not in uploads:
            settings.bound(st.text_input, _("Zip path"), DataChoice, "zip_path", placeholder="/path/to/data.zip")


def dataset_controls() -> None:
    st.subheader(_("Data"))
    entries = {e.name: e for e in list_datasets()}
    # Optional data (Fashion-MNIST) stays listed where it is not installed, marked so, with how to get it.
    absent = {name: hint for name, e in entries.items() if (hint := e.unavailable())}
    described = [f"- **{e.name}**: {md(e.description)}" + (f" *{md(absent[e.name])}*" if e.name in absent else "")
                 for e in entries.values()]
    name = settings.bound(st.selectbox, _("Dataset"), DataChoice, "dataset", options=list(entries),
                          format_func=lambda n: _("{name} (not installed)").format(name=n) if n in absent else n,
                          help="\n".join(described))
    if name in absent:
        st.caption(md(absent[name]))
    if name == "folder":
        settings.bound(st.text_input, _("Folder path"), DataChoice, "folder_path",
                       placeholder=_("/path/to/root (one sub-folder per class)"))
    elif name == "zip":
        zip_controls()
    elif name == "tv":
        cols = st.columns(2)
        with cols[0]:
            tv_name = settings.bound(st.selectbox, _("torchvision set"), DataChoice, "tv_name", options=list(TV_SOURCES))
        if settings.get(DataChoice).tv_split not in TV_SOURCES[tv_name].splits:
            settings.update(DataChoice, tv_split=TV_SOURCES[tv_name].splits[0])
        with cols[1]:
            settings.bound(st.selectbox, _("Split"), DataChoice, "tv_split", options=TV_SOURCES[tv_name].splits)
    elif name == "shapes":
        cols = st.columns(2)
        with cols[0]:
            settings.bound(st.number_input, _("Images"), DataChoice, "shapes_n", min_value=20, max_value=20000, step=100)
        with cols[1]:
            settings.bound(st.number_input, _("Classes"), DataChoice, "shapes_classes", min_value=2, max_value=8)
    settings.bound(st.number_input, _("Limit (0 = all images)"), DataChoice, "limit", min_value=0,
                   max_value=1_000_000, step=100, help=_("A seeded, stratified subset: quicker on a CPU."))
    settings.bound(st.number_input, _("Seed"), DataChoice, "seed", min_value=0, max_value=2**31 - 1,
                   help=_("Subset, split and projection seed."))


def image_size_control() -> None:
    settings.bound(st.select_slider, _("Image size (px)"), ExtractionChoice, "image_size", options=list(IMAGE_SIZES),
                   help=_("Smaller is much faster on a CPU; 224 is the usual ImageNet size."))


def backbone_controls() -> None:
    st.subheader(_("Backbone"))
    pattern = settings.bound(st.text_input, _("Filter models"), BackboneChoice, "model_filter",
                             placeholder=_("e.g. *resnet* or vit_small"))
    names = backbone_names(pattern)
    options = list(names)  # the catalog lists the bundled zoo first: offline, those are the ones with real weights
    if not names:
        st.warning(_("No pretrained timm model matches '{pattern}'.").format(pattern=md(pattern)))
    current = settings.get(BackboneChoice).backbone
    if current not in options:  # the current choice stays selectable under any filter
        options.insert(0, current)
    name = settings.bound(st.selectbox, _("Model ({n} with pretrained weights)").format(n=len(names)), BackboneChoice, "backbone",
                          options=options)
    weights = settings.bound(st.radio, _("Weights"), BackboneChoice, "weights", options=list(WEIGHT_LABELS),
                             format_func=lambda w: _(WEIGHT_LABELS[w]))
    if weights == "file":
        settings.bound(st.text_input, _("Checkpoint path"), BackboneChoice, "weights_path",
                       placeholder=".safetensors / .pth / .pt / .bin")
    image_size_control()
    with st.expander(_("Model card")):
        try:
            card = model_card(name)
            st.dataframe(pd.Series({k: str(v) for k, v in card.items()}, name="value"), width="stretch")
        except PTMError as exc:
            st.error(md(exc.for_ui()))


def current_source() -> Source:
    """The source the settings describe, whether or not the sidebar is drawn in this run."""
    data = settings.get(DataChoice)
    return Source(data.config(), settings.get(BackboneChoice).config(data.seed), settings.get(ExtractionChoice).config())


def source_controls() -> Source:
    """Draw the sidebar's data and backbone sections and return the source they describe."""
    with st.sidebar:
        dataset_controls()
        backbone_controls()
    return current_source()


def data_controls() -> Source:
    """The sidebar's data section and image size, for a page that picks its backbones itself (the leaderboard); the
    source they describe (its backbone is the sidebar's, which such a page does not use)."""
    with st.sidebar:
        dataset_controls()
        image_size_control()
    return current_source()


def url_options() -> dict[str, list]:
    """Choices that depend on this installation, for checking settings read from a URL."""
    models = backbone_names("")
    return {"dataset": dataset_kinds(), "backbone": models, "backbone_b": models, "tv_name": list(TV_SOURCES)}


def source_header(source: Source) -> None:
    """The line under every analysis page's title: what every number on the page was computed from."""
    st.markdown(f"**{md(source.describe())}**")

"""The sidebar every analysis page shares: which data, which backbone, which weights, which size.

Choices are shared across pages (pick MNIST on one page, it is picked on the next) and kept in
the URL, so a refresh or a shared link shows the same settings.
"""
import pandas as pd
import streamlit as st

from pages.common import backbone_names, model_card, remember_choices, restore_choices
from ptm_core.backbones import DEFAULT_BACKBONE
from ptm_core.configs import BackboneConfig, DatasetConfig, ExtractionConfig
from ptm_core.data import list_datasets
from ptm_core.errors import PTMError
from ptm_core.data.ingest import ingest_upload
from ptm_core.data.tv import SOURCES as TV_SOURCES

IMAGE_SIZES = [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 384]
WEIGHT_CHOICES = {"bundled": "Bundled (offline ImageNet)", "hub": "Hugging Face hub", "random": "Random init",
                  "file": "Local file"}


def zip_controls() -> str:
    upload = st.file_uploader("Upload a zip (one folder per class, or images + labels.csv)", type=["zip"],
                              key="zip_upload")
    if upload is not None:
        try:
            st.session_state["zip_path"] = ingest_upload(upload.getvalue(), upload.name).removeprefix("zip:")
        except PTMError as exc:
            st.error(str(exc), icon=":material/error:")
    return st.text_input("Zip path", key="zip_path", placeholder="/path/to/data.zip")


def dataset_controls() -> DatasetConfig:
    st.subheader("Data")
    entries = {e.name: e for e in list_datasets()}
    name = st.selectbox("Dataset", list(entries), key="dataset",
                        help="\n".join(f"- **{e.name}**: {e.description}" for e in entries.values()))
    arg = ""
    if name == "folder":
        arg = st.text_input("Folder path", key="folder_path", placeholder="/path/to/root (one sub-folder per class)")
    elif name == "zip":
        arg = zip_controls()
    elif name == "tv":
        cols = st.columns(2)
        tv_name = cols[0].selectbox("torchvision set", list(TV_SOURCES), key="tv_name")
        split = cols[1].selectbox("Split", TV_SOURCES[tv_name].splits, key="tv_split")
        arg = f"{tv_name}:{split}"
    elif name == "shapes":
        cols = st.columns(2)
        n = cols[0].number_input("Images", 20, 20000, step=100, key="shapes_n")
        classes = cols[1].number_input("Classes", 2, 8, key="shapes_classes")
        arg = f"n={n},classes={classes}"
    limit = st.number_input("Limit (0 = all images)", 0, 1_000_000, step=100, key="limit",
                            help="A seeded, stratified subset: quicker on a CPU.")
    seed = st.number_input("Seed", 0, 2**31 - 1, key="seed", help="Subset, split and projection seed.")
    spec = f"{name}:{arg}" if arg else name
    return DatasetConfig(spec, int(limit) or None, int(seed))


def backbone_controls(seed: int) -> tuple[BackboneConfig, ExtractionConfig]:
    st.subheader("Backbone")
    pattern = st.text_input("Filter models", key="model_filter", placeholder="e.g. *resnet* or vit_small")
    names = backbone_names(pattern)
    options = ([DEFAULT_BACKBONE] if not pattern else []) + names
    if not names:
        st.warning(f"No pretrained timm model matches '{pattern}'.")
    if st.session_state["backbone"] not in options:  # keep the current choice selectable under any filter
        options.insert(0, st.session_state["backbone"])
    name = st.selectbox(f"Model ({len(names)} with pretrained weights)", options, key="backbone")
    weights = st.radio("Weights", list(WEIGHT_CHOICES), format_func=WEIGHT_CHOICES.get, key="weights")
    if weights == "file":
        weights = st.text_input("Checkpoint path", key="weights_path", placeholder=".safetensors / .pth / .pt / .bin")
    size = st.select_slider("Image size (px)", IMAGE_SIZES, key="image_size",
                            help="Smaller is much faster on a CPU; 224 is the usual ImageNet size.")
    with st.expander("Model card"):
        try:
            card = model_card(name)
            st.dataframe(pd.Series({k: str(v) for k, v in card.items()}, name="value"), width="stretch")
        except PTMError as exc:
            st.error(str(exc))
    return BackboneConfig(name, weights or "file", seed), ExtractionConfig(image_size=int(size))


DEFAULTS = {"dataset": "mnist5k", "folder_path": "", "zip_path": "", "tv_name": "cifar10", "tv_split": "train", "shapes_n": 600, "shapes_classes": 6, "limit": 0, "seed": 0,
            "model_filter": "", "backbone": DEFAULT_BACKBONE, "weights": "bundled", "weights_path": "",
            "image_size": 128}


def source_controls() -> tuple[DatasetConfig, BackboneConfig, ExtractionConfig]:
    """Draw the sidebar and return the configs it describes."""
    restore_choices("source", DEFAULTS, {"dataset": [e.name for e in list_datasets()], "image_size": IMAGE_SIZES,
                                          "weights": list(WEIGHT_CHOICES),
                                          "backbone": [DEFAULT_BACKBONE, *backbone_names("")]})
    with st.sidebar:
        dataset = dataset_controls()
        backbone, extraction = backbone_controls(dataset.seed)
    remember_choices("source", DEFAULTS)
    return dataset, backbone, extraction

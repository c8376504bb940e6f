"""Datasets: a sample gallery per class and the class balance, before any compute is spent."""
import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages.common import dataset_or_error
from ptm_core.configs import DatasetConfig
from ptm_core.datasets import list_datasets

SAMPLES_PER_CLASS = 8

st.title("Datasets")
entries = {e.name: e for e in list_datasets()}
for entry in entries.values():
    st.markdown(f"- **`{entry.name}{':ARG' if entry.takes_argument else ''}`** — {entry.description}")

spec = st.text_input("Dataset spec", value="mnist5k", key="dataset_spec", help="e.g. digits, shapes:n=300,classes=4, folder:/data/pets")
dataset = dataset_or_error(DatasetConfig(spec.strip())) if spec.strip() else None
if dataset is not None:
    counts = dataset.class_counts()
    st.write(f"**{len(dataset):,} images**, {len(counts)} classes.")
    frame = pd.DataFrame({"class": list(counts), "images": list(counts.values())})
    st.plotly_chart(px.bar(frame, x="class", y="images", height=260, title="Class balance"), width="stretch")
    rng = np.random.default_rng(0)
    for index, name in enumerate(dataset.class_names):
        members = np.flatnonzero(dataset.labels == index)
        shown = rng.choice(members, size=min(SAMPLES_PER_CLASS, len(members)), replace=False)
        st.markdown(f"**{name}** · {len(members)} images")
        st.image([dataset.image(int(i)).resize((72, 72)) for i in shown], caption=[dataset.ids[int(i)] for i in shown])

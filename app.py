"""PTM Explorer: the entrypoint only routes; each page in pages/ describes its own UI."""
import streamlit as st

from pages.common import mark_routed, start_background_services

st.set_page_config(page_title="PTM Explorer", page_icon="assets/logo.svg", layout="wide")
start_background_services()
mark_routed()

navigation = st.navigation({
    "Explore": [
        st.Page("pages/explore.py", title="Features & probe", icon=":material/scatter_plot:", default=True),
        st.Page("pages/compare.py", title="Compare backbones", icon=":material/compare:"),
        st.Page("pages/lab.py", title="Probe vs fine-tune", icon=":material/science:"),
    ],
    "Library": [
        st.Page("pages/backbones.py", title="Backbones", icon=":material/memory:"),
        st.Page("pages/datasets.py", title="Datasets", icon=":material/photo_library:"),
        st.Page("pages/jobs.py", title="Jobs", icon=":material/pending_actions:"),
    ],
})
navigation.run()

"""PTM Explorer: the entrypoint only routes; each page in pages/ describes its own UI."""
import streamlit as st

from pages.ui import settings
from pages.ui.services import job_manager, start_background_services
from pages.ui.sidebar import url_options

st.set_page_config(page_title="PTM Explorer", page_icon="assets/logo.svg", layout="wide")
start_background_services()
if job_manager().store is not None and job_manager().store.recovered_note:
    st.warning(job_manager().store.recovered_note, icon=":material/database:")
settings.load(url_options())
settings.mirror_url()  # a page switch drops the query string; the settings put it back

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
for problem in settings.problems():
    st.warning(f"Ignored a setting from the link: {problem}; using the default.", icon=":material/link_off:")
navigation.run()

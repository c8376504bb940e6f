"""PTM Explorer: the entrypoint only routes; each page in pages/ describes its own UI."""
import streamlit as st

from pages.ui import settings
from pages.ui.i18n import _, view_controls
from pages.ui.services import job_manager, start_background_services
from pages.ui.sidebar import url_options
from pages.ui.text import md
from ptm_core.base.errors import PTMError
from ptm_core.base.paths import data_dir

st.set_page_config(page_title="PTM Explorer", page_icon="assets/logo.svg", layout="wide")
try:  # a data folder that cannot be used (read-only, a file in the way) is one line, not a traceback
    data_dir()
except PTMError as exc:
    st.error(md(exc.for_ui()), icon=":material/error:")
    st.stop()
start_background_services()
if job_manager().store is not None and job_manager().store.recovered_note:
    st.warning(md(job_manager().store.recovered_note), icon=":material/database:")
settings.load(url_options())
settings.mirror_url()  # a page switch drops the query string; the settings put it back

# The sidebar list of pages is off in .streamlit/config.toml, so that the legacy pages-folder mode never draws its
# file names (pages/ui/nav.py); on again for this navigation, which the option would hide as well.
st.set_option("client.showSidebarNavigation", True)
navigation = st.navigation({
    _("Start"): [
        st.Page("pages/tour.py", title=_("Tour: when does pretraining help?"), icon=":material/school:",
                default=True),
    ],
    _("Explore"): [
        st.Page("pages/explore.py", title=_("Features & probe"), icon=":material/scatter_plot:", url_path="explore"),
        st.Page("pages/compare.py", title=_("Compare backbones"), icon=":material/compare:", url_path="compare"),
        st.Page("pages/lab.py", title=_("Probe vs fine-tune"), icon=":material/science:", url_path="lab"),
        st.Page("pages/bench.py", title=_("Which backbone for my data?"), icon=":material/leaderboard:",
                url_path="bench"),
    ],
    _("Library"): [
        st.Page("pages/backbones.py", title=_("Backbones"), icon=":material/memory:", url_path="backbones"),
        st.Page("pages/datasets.py", title=_("Datasets"), icon=":material/photo_library:", url_path="datasets"),
        st.Page("pages/jobs.py", title=_("Jobs"), icon=":material/pending_actions:", url_path="jobs"),
    ],
})
view_controls()
for problem in settings.problems():
    st.warning(_("Ignored a setting from the link: {problem}; using the default.").format(problem=md(problem)),
               icon=":material/link_off:")
navigation.run()

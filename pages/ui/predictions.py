""""What does the pretrained model think this is?": one image through the backbone's own classifier head."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.ui.gallery import dataset_image, dataset_index
from pages.ui.i18n import _
from pages.ui.text import md
from ptm_core.base import BackboneConfig, DatasetConfig, PTMError
from ptm_core.flows import predict_image

TOP = 5


@st.cache_data(show_spinner=False, max_entries=256)
def _prediction(backbone: BackboneConfig, dataset: DatasetConfig, index: int) -> dict:
    return predict_image(backbone, dataset_image(dataset, index).convert("RGB"), TOP).to_dict()


def prediction_panel(backbone: BackboneConfig, dataset: DatasetConfig, row: int, feature_ids=None) -> None:
    """A toggle; when on, the top classes of the backbone's pretrained head for this one image."""
    if not st.toggle(_("What does the pretrained model think this is?"), key="predict_one",
                     help=_("The backbone's own classifier, trained on its pretraining classes (ImageNet's for "
                            "most), not a probe on this dataset's classes.")):
        return
    try:
        with st.spinner(_("Asking {model}…").format(model=backbone.name)):
            result = _prediction(backbone, dataset, dataset_index(dataset, row, feature_ids))
    except KeyError:
        st.info(_("This image is no longer in the dataset."))
        return
    except PTMError as exc:
        st.info(md(exc.for_ui()))
        return
    st.dataframe(pd.DataFrame({_("class"): [g["label"] for g in result["top"]],
                               _("index"): [g["index"] for g in result["top"]],
                               _("probability"): [g["probability"] for g in result["top"]]}),
                 hide_index=True, width="stretch",
                 column_config={_("probability"): st.column_config.ProgressColumn(format="percent", min_value=0.0,
                                                                                   max_value=1.0)})
    st.caption(_("{model} ({weights}) at {size} px; class names: {classes}.").format(
        model=md(result["backbone"]), weights=md(result["weights"]), size=result["image_size"],
        classes=md(result["classes"])))

"""Backbones: the bundled zoo (real weights offline) first, then timm's pretrained catalog, with a model card."""
import pandas as pd
import streamlit as st

from pages.ui.i18n import _, tr
from pages.ui.services import backbone_names, bundled_backbones, model_card
from pages.ui.text import md
from ptm_core.base import PTMError

st.title(_("Backbones"))
st.caption(_("Every timm model with pretrained weights. Offline, the bundled backbones below have real pretrained "
             "weights; any model can run with random weights; hub weights need a connection or a warm cache."))

st.subheader(_("Bundled: real weights, offline"))
zoo = bundled_backbones()
st.dataframe(pd.DataFrame({_("model"): [row["name"] for row in zoo], _("family"): [row["family"] for row in zoo],
                           _("weights"): [tr(row["weights"]) for row in zoo],
                           _("ImageNet head"): [row["imagenet_head"] for row in zoo],
                           _("parameters (M)"): [row["params_m"] for row in zoo],
                           _("feature dim"): [row["feature_dim"] for row in zoo]}),
             width="stretch", hide_index=True, key="bundled_zoo")
with st.expander(_("Where each comes from, and under what terms")):
    for row in zoo:
        st.markdown(_("**{model}**: pip package `{package}` {version}. Licence: {licence}.").format(
            model=md(row["name"]), package=md(row["package"]), version=md(row["version"]), licence=md(row["licence"])))

st.subheader(_("All pretrained models"))
pattern = st.text_input(_("Filter"), value="*efficientnet*", key="catalog_filter",
                        help=_("A glob such as *vit_small* or convnext*"))
names = backbone_names(pattern)
st.write(_("**{n}** models match.").format(n=f"{len(names):,}"))
st.dataframe(pd.DataFrame({"model": names}), width="stretch", height=260, hide_index=True)

if names:
    chosen = st.selectbox(_("Model card for"), names, key="card_for")
    try:
        card = model_card(chosen)
    except PTMError as exc:
        st.error(md(exc.for_ui()))
    else:
        cols = st.columns(3)
        cols[0].metric(_("Parameters"), _("{n} M").format(n=f"{card['parameters'] / 1e6:.1f}"))
        cols[1].metric(_("Feature dim"), card["feature_dim"])
        cols[2].metric(_("Default input"), "×".join(map(str, card["input_size"][1:])))
        # A sentence, not a metric: "download needed" does not fit a metric card's width.
        st.markdown(_("**Weights for {model}:** {weights}").format(model=md(chosen), weights=md(card["weights"])))
        st.json({k: card[k] for k in ("mean", "std", "interpolation", "crop_pct")})

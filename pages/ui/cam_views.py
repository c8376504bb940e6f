""""Where it looks": a class activation map for one image of the neighbours panel, drawn on click.

The map is of the probe's predicted class, or of the similarity between the clicked image and a neighbour; it runs
on the backbone the features came from, at their image size (ptm_core.flows.where_it_looks, which keeps the maps
drawn so far: going back to one is instant).
"""
from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from pages.ui.i18n import N_, _
from pages.ui.services import load_dataset
from pages.ui.text import md
from ptm_core.base import PTMError, describe_weights
from ptm_core.flows import CAM_METHODS, CamResult, ExploreResult, where_it_looks

SHOWN = 224  # px: small inputs (64 px digits) are scaled up, pixel for pixel, to be seen
TARGET_NAMES = {"probe": N_("the probe's predicted class"), "similarity": N_("similarity to the other image")}
METHOD_HELP = N_("Grad-CAM weighs the layer's channels by the target's gradient (one backward pass). Score-CAM "
                 "weighs each channel by the target's score with the image masked by it: one forward pass per "
                 "channel (1,280 for EfficientNet-Lite0), so minutes on a small CPU. EigenCAM draws the first "
                 "principal component of the layer's activations and ignores the target.")


def _scaled(pixels: np.ndarray) -> Image.Image:
    image = Image.fromarray(pixels)
    return image if image.width >= SHOWN else image.resize((SHOWN, SHOWN), Image.Resampling.NEAREST)


def _target_text(cam: CamResult, class_names) -> str:
    if cam.target == "probe":
        name = class_names[cam.predicted] if 0 <= cam.predicted < len(class_names) else cam.predicted
        return _("the probe's predicted class: {name} (p = {p})").format(name=md(name), p=f"{cam.probability:.2f}")
    return _("similarity to neighbour #{row} (cosine {cosine})").format(row=cam.other, cosine=f"{cam.similarity:.2f}")


def cam_caption(cam: CamResult, result: ExploreResult) -> str:
    """What produced the map: method, backbone, weights, image size, layer, target."""
    backbone = result.request.source.backbone
    text = _("{method} of image #{row} on {backbone} ({weights}) at {size} px, layer {layer} ({h} × {w} grid, "
             "upsampled); target: {target}.").format(
        method=cam.method, row=cam.row, backbone=md(backbone.name), weights=md(describe_weights(backbone)),
        size=cam.image_size, layer=md(cam.layer), h=cam.grid[0], w=cam.grid[1],
        target=_target_text(cam, result.features.class_names))
    if cam.method == "EigenCAM":
        text += " " + _("EigenCAM ignores the target: it shows the layer's first principal component.")
    return text + " " + _("Drawn in {seconds} s.").format(seconds=f"{cam.seconds:.1f}")


def _choices(row: int, neighbours: list[int]):
    """(image, target, method) picked by the user; the pair's other image is the clicked one, or for the clicked
    image its nearest neighbour."""
    cols = st.columns(3)
    image = cols[0].selectbox(_("Image"), [row, *neighbours], key="cam_image",
                              format_func=lambda r: _("#{row}: the clicked image").format(row=r) if r == row else
                              _("#{row}: a neighbour").format(row=r))
    target = cols[1].selectbox(_("Target"), list(TARGET_NAMES), key="cam_target",
                               format_func=lambda t: _(TARGET_NAMES[t]),
                               disabled=not neighbours,
                               help=_("For the clicked image, the other image is its nearest neighbour; for a "
                                      "neighbour, the clicked image."))
    method = cols[2].selectbox(_("Method"), list(CAM_METHODS), format_func=CAM_METHODS.get, key="cam_method",
                               help=_(METHOD_HELP))
    other = None
    if target == "similarity" and neighbours:
        other = neighbours[0] if image == row else row
    return int(image), method, other


def where_it_looks_panel(result: ExploreResult, row: int, neighbours) -> None:
    """The "Where it looks" control for the clicked image and its neighbours: pick, press, see the map."""
    st.markdown(_("**Where it looks**"))
    image, method, other = _choices(int(row), [int(n) for n in neighbours])
    asked = (result.features.key, image, method, other)
    if method == "scorecam":
        st.caption(_("Score-CAM runs the backbone once per channel of its last layer: expect minutes, during which "
                     "other maps wait."))
    if st.button(_("Show where it looks"), icon=":material/visibility:", key="cam_show"):
        st.session_state["cam_asked"] = asked
    if st.session_state.get("cam_asked") != asked:
        st.caption(_("A class activation map: which parts of the image drive the probe's decision, or the "
                     "similarity of two images, on the backbone the features came from."))
        return
    try:
        with st.spinner(_("Drawing the map…")):
            cam = where_it_looks(result, image, method, other, dataset=load_dataset(result.request.source.dataset))
    except PTMError as exc:
        st.error(md(exc.for_ui()), icon=":material/error:")
        return
    cols = st.columns(2)
    cols[0].image(_scaled(cam.image), caption=_("What the model sees"))
    cols[1].image(_scaled(cam.overlay), caption=_("Where it looks ({method})").format(method=cam.method))
    st.caption(cam_caption(cam, result))

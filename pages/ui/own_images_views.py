"""The "your images" step (issue 24): 2-5 classes of the user's own photos (camera shots, uploads, zips), "Learn"
(pixels vs random init vs pretrained, cross-validated, with intervals, McNemar's sentences and maps), then "Try it".

One entry, `own_images_step(where)`, drawn by the tour and by the explorer. The photos and the result live in this
browser session's state only (`st.session_state`, shared by both pages, so a page switch keeps them): the engine
(ptm_core.flows.own_images) writes nothing to disk and records no job, and Streamlit drops the state when the
session ends.
"""
from __future__ import annotations

from typing import Callable

import pandas as pd
import streamlit as st
from PIL import Image

from pages.ui.i18n import _, ngettext, show_chart, tr
from pages.ui.intervals import accuracy_metric
from pages.ui.job_views import duration_text, format_seconds
from pages.ui.lesson_views import caption, note, text
from pages.ui.text import md
from pages.ui.tour_views import contrast_map, kind_labels, lead_or_tie
from ptm_core.base import PTMError
from ptm_core.flows import (MAX_CLASSES, MAX_PHOTOS, MIN_CLASSES, MIN_PHOTOS, OwnResult, check_classes, classify,
                            learn, learn_estimate_seconds, photo_from_bytes, photos_from_zip, warm_up_in_background)

STORE = "own_images"  # st.session_state key: this session's classes, photos and result
THUMB = 72
PER_ROW = 10


def _store() -> dict:
    if STORE not in st.session_state:
        st.session_state[STORE] = {"classes": [], "next": 0, "result": None, "learned_from": None, "tried": None}
        for _i in range(MIN_CLASSES):
            _new_class(st.session_state[STORE])
    return st.session_state[STORE]


def _new_id(store: dict) -> int:
    store["next"] += 1
    return store["next"]


def _new_class(store: dict, name: str = "") -> dict:
    cls = {"id": _new_id(store), "name": name, "photos": [], "gen": 0, "notes": []}
    store["classes"].append(cls)
    return cls


def _add_photo(store: dict, cls: dict, image: Image.Image) -> None:
    """One photo into `cls`, with its thumbnail; a full class (MAX_PHOTOS) keeps what it has, and says so once."""
    if len(cls["photos"]) >= MAX_PHOTOS:
        full = _("“{name}” holds {max} photos, the most a class keeps; the rest were left out.").format(
            name=md(cls["name"]), max=MAX_PHOTOS)
        if full not in cls["notes"]:
            cls["notes"].append(full)
        return
    thumb = image.copy()
    thumb.thumbnail((THUMB * 2, THUMB * 2))
    cls["photos"].append({"id": _new_id(store), "image": image, "thumb": thumb})


def _signature(store: dict) -> tuple:
    """What a result was learned from: each class's name and photos."""
    return tuple((cls["name"].strip(), tuple(p["id"] for p in cls["photos"])) for cls in store["classes"])


def _class_for_folder(store: dict, folder: str) -> dict | None:
    """The class a zip's folder fills: one of that name, else an empty unnamed one, else a new one (up to 5)."""
    for cls in store["classes"]:
        if cls["name"].strip().casefold() == folder.casefold():
            return cls
    empty = next((c for c in store["classes"] if not c["name"].strip() and not c["photos"]), None)
    if empty is not None:
        empty["name"], empty["renamed"] = folder, True  # its name box shows it from the next run on
        return empty
    return _new_class(store, folder) if len(store["classes"]) < MAX_CLASSES else None


def _add_upload(store: dict, cls: dict, name: str, data: bytes) -> None:
    """One uploaded file into `cls` (a zip: its folders into classes of their names); problems into its notes."""
    if not name.lower().endswith(".zip"):
        _add_photo(store, cls, photo_from_bytes(data, name))
        return
    found = photos_from_zip(data, name)
    for folder, images in found.by_folder.items():
        target = cls if folder is None else _class_for_folder(store, folder)
        if target is None:
            cls["notes"].append(_("{zip}: the folder “{folder}” would be a class beyond the {max}; left out.").format(
                zip=md(name), folder=md(folder), max=MAX_CLASSES))
            continue
        for image in images:
            _add_photo(store, target, image)
    cls["notes"] += [md(tr(skipped)) for skipped in found.skipped[:5]]
    if len(found.skipped) > 5:
        cls["notes"].append(_("… and {n} more left out of {zip}.").format(n=len(found.skipped) - 5, zip=md(name)))


def _take(store: dict, cls: dict, files: list) -> None:
    """New files from the uploader or the camera: added, the widget emptied for the next ones (a new key)."""
    cls["notes"] = []
    for upload in files:
        try:
            _add_upload(store, cls, upload.name, upload.getvalue())
        except PTMError as exc:
            cls["notes"].append(md(tr(exc.for_ui())))
    cls["gen"] += 1
    st.rerun()


def _thumbnails(cls: dict, where: str) -> None:
    photos = cls["photos"]
    for start in range(0, len(photos), PER_ROW):
        for column, photo in zip(st.columns(PER_ROW), photos[start:start + PER_ROW]):
            column.image(photo["thumb"], width=THUMB)
            if column.button("✕", key=f"own-{where}-rm-{photo['id']}", help=_("Remove this photo"), type="tertiary"):
                cls["photos"].remove(photo)
                st.rerun()


def _count_line(cls: dict) -> str:
    n = len(cls["photos"])
    line = ngettext("{n} photo", "{n} photos", n).format(n=n)
    if n < MIN_PHOTOS:
        line += " · " + _("add {more} more").format(more=MIN_PHOTOS - n)
    return line


def _class_card(store: dict, cls: dict, number: int, where: str) -> None:
    with st.container(border=True, key=f"own-{where}-class-{number}"):
        key = f"own-{where}-name-{cls['id']}"
        # A page switch drops the widget's state, a zip's folder may name the class: the store has the name.
        if key not in st.session_state or cls.pop("renamed", False):
            st.session_state[key] = cls["name"]
        top = st.columns([3, 2])
        cls["name"] = top[0].text_input(_("Class {n}").format(n=number), key=key, max_chars=40,
                                        placeholder=_("what its photos show, e.g. mug"))
        top[1].markdown("  \n" + _count_line(cls))
        if len(store["classes"]) > MIN_CLASSES and st.button(_("Remove class"), key=f"own-{where}-drop-{cls['id']}",
                                                             type="tertiary", icon=":material/delete:"):
            store["classes"].remove(cls)
            st.rerun()
        # No `type=`: a file that is not a photo gets the engine's one line, in the page's language, rather than
        # Streamlit's English refusal (and its English list of types under the box).
        uploads = st.file_uploader(_("Photos or a zip of them"), accept_multiple_files=True,
                                   key=f"own-{where}-up-{cls['id']}-{cls['gen']}")
        if uploads:
            _take(store, cls, uploads)
        if st.toggle(_("Use the camera"), key=f"own-{where}-cam-on-{cls['id']}"):
            shot = st.camera_input(_("A shot adds one photo"), key=f"own-{where}-cam-{cls['id']}-{cls['gen']}")
            if shot is not None:
                _take(store, cls, [shot])
        for warning in cls["notes"]:
            st.warning(warning, icon=":material/warning:")
        _thumbnails(cls, where)


def _learn(store: dict) -> None:
    """Check the classes, then learn with a progress bar; the result (or the one-line reason) into the store."""
    classes = store["classes"]
    try:
        check_classes([(cls["name"], len(cls["photos"])) for cls in classes])
    except PTMError as exc:
        st.error(md(tr(exc.for_ui())), icon=":material/error:")
        return
    n = sum(len(cls["photos"]) for cls in classes)
    with st.status(_("Learning from {n} photos (about {time})…").format(
            n=n, time=duration_text(learn_estimate_seconds(n))), expanded=True) as status:
        bar = st.progress(0.0)
        try:
            result = learn([(cls["name"], [p["image"] for p in cls["photos"]]) for cls in classes],
                           progress=lambda fraction, message: bar.progress(min(fraction, 1.0), text=tr(message)))
        except PTMError as exc:
            status.update(label=md(tr(exc.for_ui())), state="error")
            return
        status.update(label=_("Learned in {time}.").format(time=format_seconds(result.seconds)), state="complete",
                      expanded=False)
    store["result"], store["learned_from"], store["tried"] = result, _signature(store), None


def _results(result: OwnResult, where: str) -> None:
    labels = kind_labels()
    for column, row in zip(st.columns(3), result.rows):
        accuracy_metric(column, labels[row.kind], row.accuracy, row.n_test,
                        _("Linear probe, {scheme}: each of your {n} photos predicted by a probe trained on the "
                          "others.").format(scheme=tr(row.scheme), n=row.n_test))
        column.caption(md(row.produced_by))
    note("caption", " · ".join(md(row.produced_by) for row in result.rows))  # the lesson: what produced the three
    names = {"pixels": _("raw pixels"), "random": _("random-init features"), "pretrained": _("pretrained features")}
    for kind in ("random", "pixels"):
        text(lead_or_tie(names["pretrained"], names[kind], result.tests[kind]))
    for column, row in zip(st.columns(3), result.rows):
        with column:
            st.caption(labels[row.kind])
            show_chart(contrast_map(result, row.kind), width="stretch", key=f"own-{where}-map-{row.kind}")
    caption(_("Maps: {method} of each feature set, coloured by the class you named (at a few dozen photos PCA is "
                 "instant, and its axes are the directions in which the photos differ most).").format(
        method=md(result.map_title)))


def _try_it(store: dict, result: OwnResult, where: str) -> None:
    st.subheader(_("Try it"))
    st.caption(_("A new photo, classified by each of the three probes (trained on all your photos)."))
    files = [st.file_uploader(_("A photo to classify"), key=f"own-{where}-try")]  # any file: see _class_card
    if st.toggle(_("Use the camera"), key=f"own-{where}-try-cam-on"):
        files.append(st.camera_input(_("A shot to classify"), key=f"own-{where}-try-cam"))
    for upload in filter(None, files):
        if store["tried"] is None or store["tried"]["file"] != upload.file_id:
            try:
                image = photo_from_bytes(upload.getvalue(), upload.name)
                store["tried"] = {"file": upload.file_id, "image": image, "p": classify(result, image)}
            except PTMError as exc:
                st.error(md(tr(exc.for_ui())), icon=":material/error:")
                return
    tried = store["tried"]
    if tried is None:
        return
    labels = kind_labels()
    left, right = st.columns([1, 3])
    left.image(tried["image"], width=160)
    with right:
        lines = []
        for kind, p in tried["p"].items():
            best = max(p, key=p.get)
            lines.append(_("**{kind}**: {name} ({p})").format(kind=labels[kind], name=md(best), p=f"{p[best]:.0%}"))
            st.markdown(lines[-1])
        # The lesson keeps what each probe said of the new photo, not the photo: photos stay in this session.
        note("text", _("A new photo, classified by each probe:") + "\n\n" + "\n".join(f"- {line}" for line in lines))
        frame = pd.DataFrame({labels[kind]: list(p.values()) for kind, p in tried["p"].items()},
                             index=list(result.class_names))
        st.dataframe(frame, width="stretch", column_config={labels[kind]: st.column_config.ProgressColumn(
            format="percent", min_value=0.0, max_value=1.0) for kind in tried["p"]})


def own_result() -> OwnResult | None:
    """This session's last result (for the tour's question and the lesson download), or None before a Learn."""
    return st.session_state.get(STORE, {}).get("result")


def own_images_step(where: str, after_results: Callable[[OwnResult], None] | None = None) -> None:
    """The whole step; `where` ("tour", "explore") keeps each page's widgets apart, while the photos and the
    result are this session's, whichever page shows them. `after_results` draws under the numbers and maps, before
    "Try it" (the tour's reveal of its question)."""
    store = _store()
    st.markdown(_("Teach three kinds of features your own classes: name 2 to {max} classes, give each at least "
                  "{min} photos (camera shots or uploads, or a zip with one folder per class), then press Learn.")
                .format(max=MAX_CLASSES, min=MIN_PHOTOS))
    st.caption(_("Your photos stay in this browser session only: they are not saved on the server, not shared with "
                 "anyone, and gone when you close the tab. If the browser refuses the camera or there is none, "
                 "upload photos instead."))
    if any(cls["photos"] for cls in store["classes"]):
        warm_up_in_background()  # the models load while the rest of the photos come in
    for number, cls in enumerate(list(store["classes"]), 1):
        _class_card(store, cls, number, where)
    # A row that wraps rather than columns that cut a label (presenter mode doubles the font; Chinese is wider).
    with st.container(horizontal=True):
        add = len(store["classes"]) < MAX_CLASSES and st.button(_("Add a class"), key=f"own-{where}-add",
                                                                icon=":material/add:")
        learn_now = st.button(_("Learn"), type="primary", key=f"own-{where}-learn", icon=":material/school:")
    if add:
        _new_class(store)
        st.rerun()
    if learn_now:
        _learn(store)
    result = store["result"]
    if result is None:
        return
    if store["learned_from"] != _signature(store):
        st.info(_("Your classes changed since these numbers: press Learn again to update them."),
                icon=":material/info:")
    _results(result, where)
    if after_results is not None:
        after_results(result)
    _try_it(store, result, where)

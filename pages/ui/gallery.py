"""Image galleries: thumbnails of one size in a fixed grid, each with its caption."""
from __future__ import annotations

import pandas as pd
import streamlit as st
from PIL import Image

from pages.ui.lesson_views import note
from pages.ui.i18n import _, tr_stored
from pages.ui.services import load_dataset
from pages.ui.text import md
from ptm_core.base import DatasetConfig, PTMError

PER_ROW = 8


@st.cache_resource(max_entries=4)
def _positions(dataset_config: DatasetConfig) -> dict[str, int]:
    return {item_id: i for i, item_id in enumerate(load_dataset(dataset_config).ids)}


def dataset_index(dataset_config: DatasetConfig, row: int, feature_ids=None) -> int:
    """The dataset's index of a row (a feature row, found by its id, when `feature_ids` is given); KeyError when
    that image is no longer in the dataset."""
    return row if feature_ids is None else _positions(dataset_config)[feature_ids[row]]


def dataset_image(dataset_config: DatasetConfig, index: int) -> Image.Image:
    """The dataset's image at `index`; PTMError when its file changed or went since the dataset was loaded."""
    return load_dataset(dataset_config).image(index)


def gallery(dataset_config: DatasetConfig, rows, captions, feature_ids=None, empty: str = "No images.",
            size: int = 88) -> None:
    """Images by row, each `size` px square whatever its caption's length.

    With `feature_ids` (a feature set's ids), rows are feature rows and each image is found by its
    id: an extraction that skipped an unreadable file has fewer rows than the dataset it came from.
    """
    rows, captions = [int(i) for i in rows], list(captions)
    if not rows:
        st.caption(empty)
        return
    shown = []  # what the tour's lesson file keeps of it
    for start in range(0, len(rows), PER_ROW):
        for column, row, caption in zip(st.columns(PER_ROW), rows[start:start + PER_ROW],
                                        captions[start:start + PER_ROW]):
            try:
                image = dataset_image(dataset_config, dataset_index(dataset_config, row, feature_ids)).convert("RGB").resize((size, size))
            except KeyError:
                column.caption(_("{caption}: no longer in the dataset").format(caption=md(caption)))
                continue
            except PTMError as exc:  # the file changed or went since the dataset was loaded
                column.caption(f"{md(caption)}: {md(exc.for_ui())}")
                continue
            column.image(image, caption=md(caption), width=size)
            shown.append((image, md(caption)))
    note("images", shown)


def skipped_notice(skipped: list, n: int | None = None) -> None:
    """The files a dataset left out and why, one notice on every page: the first few named in its label, all of them
    (up to what was kept) in its table."""
    n = len(skipped) if n is None else n
    if not n:
        return
    names = [str(entry[0]).replace("\\", "/").rsplit("/", 1)[-1] for entry in skipped[:3]]
    more = "…" if n > len(names) else ""
    label = _("{n} files skipped (not images, corrupt or too large): {names}").format(
        n=n, names=", ".join(names) + more)
    with st.expander(md(label), icon=":material/warning:"):
        # A reason is a Message fresh from the engine, plain English once read back from a run's record: either way
        # in the page's language.
        rows = [(str(path), tr_stored(reason)) for path, reason in skipped]
        st.dataframe(pd.DataFrame(rows, columns=[_("file"), _("reason")]), hide_index=True,
                     width="stretch")

"""Image galleries: thumbnails of one size in a fixed grid, each with its caption."""
from __future__ import annotations

import streamlit as st

from pages.ui.services import load_dataset
from ptm_core.configs import DatasetConfig
from ptm_core.errors import PTMError

PER_ROW = 8


def gallery(dataset_config: DatasetConfig, indices, captions, empty: str = "No images.", size: int = 88) -> None:
    """Images of a dataset by index; every thumbnail is `size` px square, whatever its caption's length."""
    indices, captions = [int(i) for i in indices], list(captions)
    if not indices:
        st.caption(empty)
        return
    dataset = load_dataset(dataset_config)
    for start in range(0, len(indices), PER_ROW):
        for column, index, caption in zip(st.columns(PER_ROW), indices[start:start + PER_ROW],
                                          captions[start:start + PER_ROW]):
            try:
                image = dataset.image(index).convert("RGB").resize((size, size))
            except PTMError as exc:  # the file changed or went since the dataset was loaded
                column.caption(f"{caption}: {exc.for_ui()}")
                continue
            column.image(image, caption=caption, width=size)

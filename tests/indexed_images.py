"""A folder dataset whose images encode their own index, to prove a selection shows the right images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

STEP = 16  # each of R and G carries one base-16 digit, far apart enough to survive JPEG and resizing


def encode(index: int, size: int = 32) -> Image.Image:
    red, green = divmod(index, STEP)
    pixel = np.array([red * STEP + STEP // 2, green * STEP + STEP // 2, 128], dtype=np.uint8)
    return Image.fromarray(np.broadcast_to(pixel, (size, size, 3)).copy())


def decode(image: Image.Image) -> int:
    red, green, _ = np.asarray(image.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)
    return int(red // STEP) * STEP + int(green // STEP)


def write_indexed_folder(root: Path, n: int = 60, classes: int = 3) -> Path:
    """n images in `classes` contiguous blocks (class folders c0, c1, ...), so dataset index == encoded index.

    Plotly draws one trace per class, so a point's number within its trace differs from its row
    for every class after the first: exactly the mix-up of streamlit issue 8914.
    """
    root.mkdir(parents=True, exist_ok=True)
    per_class = n // classes
    for index in range(n):
        folder = root / f"c{index // per_class}"
        folder.mkdir(exist_ok=True)
        encode(index).save(folder / f"img_{index:04d}.png")
    return root

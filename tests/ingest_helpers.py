"""Tiny image, folder and zip builders shared by the ingestion tests (bytes in memory, files in tmp)."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ptm_core.base.configs import DatasetConfig
from ptm_core.data import load_dataset


def png_bytes(value=128, size=(8, 8), mode="RGB") -> bytes:
    img = Image.new(mode, size, value if mode != "RGB" else (value, value // 2, 255 - value))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_folder(root: Path, per_class: dict[str, int]) -> Path:
    for cls, count in per_class.items():
        for i in range(count):
            write(root / cls / f"{cls}{i}.png", png_bytes(20 * i + 10))
    return root


def make_zip(path: Path, entries: dict, compression=zipfile.ZIP_DEFLATED) -> Path:
    """entries: name -> bytes, or a ZipInfo -> bytes for hand-crafted headers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def load(spec: str, **kwargs):
    return load_dataset(DatasetConfig(spec, **kwargs))


def skip_map(ds) -> dict[str, str]:
    return dict(ds.skipped)


def datasets_dir() -> Path:
    return Path(os.environ["PTM_DATA_DIR"]) / "datasets"

def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def _palette(transparent: bool) -> bytes:
    img = Image.new("P", (4, 2), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # 0 red, 1 blue
    img.putpixel((1, 0), 1)
    return encode(img, transparency=0) if transparent else encode(img)


def _rgba() -> bytes:
    img = Image.new("RGBA", (3, 1))
    img.putdata([(255, 0, 0, 0), (255, 0, 0, 255), (255, 0, 0, 128)])
    return encode(img)


def _la() -> bytes:
    img = Image.new("LA", (2, 1))
    img.putdata([(0, 0), (0, 255)])
    return encode(img)


def _sixteen_bit(fmt: str) -> bytes:
    return encode(Image.fromarray(np.array([[0, 65535, 32768, 25700]], dtype=np.uint16)), fmt)


MODE_CASES = {
    # name: (file bytes, expected RGB of the first pixels in row 0)
    "16-bit png": (_sixteen_bit("PNG"), [(0, 0, 0), (255, 255, 255), (128, 128, 128), (100, 100, 100)]),
    "16-bit tiff": (_sixteen_bit("TIFF"), [(0, 0, 0), (255, 255, 255), (128, 128, 128), (100, 100, 100)]),
    "cmyk tiff": (encode(Image.new("CMYK", (2, 2), (0, 255, 255, 0)), "TIFF"), [(255, 0, 0)]),
    "cmyk jpeg": (encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95), [(255, 0, 0)]),
    "palette": (_palette(False), [(255, 0, 0), (0, 0, 255)]),
    "palette+transparency": (_palette(True), [(255, 255, 255), (0, 0, 255)]),
    "rgba": (_rgba(), [(255, 255, 255), (255, 0, 0), (255, 127, 127)]),
    "la": (_la(), [(255, 255, 255), (0, 0, 0)]),
    "grayscale L": (encode(Image.new("L", (2, 2), 40)), [(40, 40, 40)]),
    "bilevel 1": (encode(Image.new("1", (2, 2), 1)), [(255, 255, 255)]),
}



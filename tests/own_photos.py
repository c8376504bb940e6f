"""Small classes of real photos for the "your images" tests and benchmark: scikit-image's bundled pictures, each
class one picture (or two) cut into different crops, some mirrored, so every class has `n` distinct photos."""
from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image, ImageOps

# Class name -> scikit-image pictures it is cut from (all ship inside the package: no download).
CLASSES = {"cat": ("chelsea",), "coffee": ("coffee",), "rocket": ("rocket",)}


def picture(name: str) -> Image.Image:
    from skimage import data

    return Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")


def crops(image: Image.Image, n: int, side: int, seed: int = 0) -> list[Image.Image]:
    """`n` crops of 60-95 % of the picture at seeded places, every other one mirrored, each resized to `side`
    (longest side)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        share = rng.uniform(0.6, 0.95)
        w, h = int(image.width * share), int(image.height * share)
        x, y = int(rng.integers(0, image.width - w + 1)), int(rng.integers(0, image.height - h + 1))
        crop = image.crop((x, y, x + w, y + h))
        crop = ImageOps.mirror(crop) if i % 2 else crop
        scale = side / max(crop.size)
        out.append(crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))))
    return out


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def class_photos(n: int = 10, side: int = 64, seed: int = 0, classes=CLASSES) -> dict[str, list[Image.Image]]:
    return {name: [crop for i, pic in enumerate(pictures) for crop in crops(picture(pic), n // len(pictures)
                   + (i < n % len(pictures)), side, seed + i)] for name, pictures in classes.items()}


def class_bytes(n: int = 10, side: int = 64, seed: int = 0) -> dict[str, list[tuple[bytes, str]]]:
    """Each class's photos as JPEG bytes with a file name, as an upload brings them."""
    return {name: [(jpeg(image), f"{name}-{i}.jpg") for i, image in enumerate(images)]
            for name, images in class_photos(n, side, seed).items()}


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip, in memory, of {name in the zip: bytes}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()

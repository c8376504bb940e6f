"""A seeded synthetic image set: coloured geometric shapes on noisy backgrounds."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

SHAPE_NAMES = ("circle", "square", "triangle", "cross", "star", "ring", "diamond", "bar")


def _polygon(cx: float, cy: float, r: float, points: int, rotation: float, inner: float = 1.0) -> list[tuple]:
    vertices = []
    step = math.pi / points if inner != 1.0 else 2 * math.pi / points
    count = points * 2 if inner != 1.0 else points
    for k in range(count):
        radius = r if (inner == 1.0 or k % 2 == 0) else r * inner
        angle = rotation + k * step
        vertices.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return vertices


def _rectangle(cx: float, cy: float, half_length: float, half_width: float, rotation: float) -> list[tuple]:
    c, s = math.cos(rotation), math.sin(rotation)
    corners = [(-half_length, -half_width), (half_length, -half_width), (half_length, half_width), (-half_length, half_width)]
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, rot: float, color: tuple) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif shape == "square":
        draw.polygon(_polygon(cx, cy, r, 4, rot), fill=color)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy, r, 3, rot), fill=color)
    elif shape == "cross":
        draw.polygon(_rectangle(cx, cy, r, r / 3, rot), fill=color)
        draw.polygon(_rectangle(cx, cy, r, r / 3, rot + math.pi / 2), fill=color)
    elif shape == "star":
        draw.polygon(_polygon(cx, cy, r, 5, rot, inner=0.45), fill=color)
    elif shape == "ring":
        width = max(2, int(r / 3))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=color, width=width)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + 0.6 * r, cy), (cx, cy + r), (cx - 0.6 * r, cy)], fill=color)
    elif shape == "bar":
        draw.polygon(_rectangle(cx, cy, r, r / 5, rot), fill=color)


def render_shapes(n: int, n_classes: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` images (uint8, n x size x size x 3) and balanced labels, identical for the same seed."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    rng.shuffle(labels)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        background = rng.integers(0, 120, size=3)
        noise = rng.normal(0, 25, size=(size, size, 3))
        canvas = Image.fromarray(np.clip(background + noise, 0, 255).astype(np.uint8))
        r = size * rng.uniform(0.18, 0.32)
        cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
        color = tuple(int(c) for c in rng.integers(130, 256, size=3))
        _draw_shape(ImageDraw.Draw(canvas), SHAPE_NAMES[label], cx, cy, r, rng.uniform(0, math.pi), color)
        images[i] = np.asarray(canvas)
    return images, labels.astype(np.int64)

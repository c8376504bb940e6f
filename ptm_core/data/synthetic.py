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


def _noisy_background(rng: np.random.Generator, size: int) -> Image.Image:
    background = rng.integers(0, 120, size=3)
    noise = rng.normal(0, 25, size=(size, size, 3))
    return Image.fromarray(np.clip(background + noise, 0, 255).astype(np.uint8))


def _textured_background(rng: np.random.Generator, size: int) -> Image.Image:
    """Stripes, checks or a gradient in two random colours: texture a shape must be told apart from."""
    a, b = (rng.integers(0, 256, size=3).astype(np.float32) for _ in range(2))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle, frequency = rng.uniform(0, math.pi), rng.uniform(3, 9)
    along = xx * math.cos(angle) + yy * math.sin(angle)
    kind = rng.integers(0, 3)
    if kind == 0:
        mix = (np.sin(along * frequency * 2 * math.pi) > 0).astype(np.float32)
    elif kind == 1:
        mix = ((np.floor(xx * frequency) + np.floor(yy * frequency)) % 2).astype(np.float32)
    else:
        mix = along / max(along.max(), 1e-6)
    pixels = a + (b - a) * mix[..., None] + rng.normal(0, 18, size=(size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _add_clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int, count: int) -> None:
    """Thin strokes and small blobs: distractors no bigger than a third of the smallest shape."""
    for _ in range(count):
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        x0, y0 = rng.uniform(0, size, size=2)
        if rng.random() < 0.5:
            length, angle = size * rng.uniform(0.1, 0.3), rng.uniform(0, 2 * math.pi)
            end = (x0 + length * math.cos(angle), y0 + length * math.sin(angle))
            draw.line([(x0, y0), end], fill=color, width=max(1, size // 48))
        else:
            r = size * rng.uniform(0.02, 0.05)
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=color)


def _render_one(rng: np.random.Generator, shape: str, size: int, clutter: int) -> np.ndarray:
    canvas = _textured_background(rng, size) if clutter else _noisy_background(rng, size)
    draw = ImageDraw.Draw(canvas)
    if clutter:
        _add_clutter(draw, rng, size, int(rng.integers(2, 3 + 3 * clutter)))
    low, high = (0.16, 0.3) if clutter else (0.18, 0.32)
    r = size * rng.uniform(low, high)
    cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
    color = tuple(int(c) for c in rng.integers(0 if clutter else 130, 256, size=3))
    _draw_shape(draw, shape, cx, cy, r, rng.uniform(0, math.pi), color)
    if clutter > 1:  # a few strokes across the shape too: partial occlusion
        _add_clutter(draw, rng, size, clutter - 1)
    return np.asarray(canvas)


def render_shapes(n: int, n_classes: int, size: int, seed: int, clutter: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` images (uint8, n x size x size x 3) and balanced labels, identical for the same seed.

    clutter=0: one bright shape on a noisy dark background. clutter>=1: textured backgrounds
    (stripes, checks, gradients), shapes of any colour, and distractor strokes and blobs (more with a
    higher level; from 2 some cross the shape) — a task where the features must ignore texture,
    colour and position, which is what ImageNet pretraining provides.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    rng.shuffle(labels)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i] = _render_one(rng, SHAPE_NAMES[label], size, clutter)
    return images, labels.astype(np.int64)

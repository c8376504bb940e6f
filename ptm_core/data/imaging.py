"""Decoding user images safely into RGB uint8, whatever their mode, size or state.

Every image a user brings (folder, zip, upload) goes through `open_rgb` or `check_image`,
so a 16-bit scan, a CMYK print file, a transparent icon, a decompression bomb or a one-pixel
line behaves the same in every dataset: converted sensibly, or refused with a one-line reason.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ptm_core.base.limits import env_int
from ptm_core.base.messages import M_, Message
from ptm_core.data.files import FileRejected

PIXELS_ENV = "PTM_MAX_IMAGE_PIXELS"
ASPECT_ENV = "PTM_MAX_ASPECT_RATIO"
DEFAULT_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)  # Pillow's own default (~89.5M)
# Wide panoramas reach ~10:1 and scanned strips ~20:1; beyond 50:1 an "image" is a line of pixels that
# only becomes huge once its shorter side is scaled up to the model's input (400,000 x 1 -> 14M x 36).
DEFAULT_MAX_ASPECT = 50
_WHITE = (255, 255, 255, 255)
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


class ImageRejected(FileRejected):
    """A file that is not a usable image; the message is the reason, fit for a skip list."""


def max_image_pixels() -> int:
    return env_int(PIXELS_ENV, DEFAULT_MAX_PIXELS)


def max_aspect_ratio() -> int:
    return env_int(ASPECT_ENV, DEFAULT_MAX_ASPECT)


def size_problem(width: int, height: int) -> Message | None:
    """Why an image of this size must not be decoded (too many pixels, empty, too thin), or None; a Message, so the
    interface words it in its language."""
    limit, ratio_limit = max_image_pixels(), max_aspect_ratio()
    if width < 1 or height < 1:
        return M_("an empty image ({width}x{height})", width=width, height=height)
    if width * height > limit:
        return M_("too many pixels ({width}x{height}, over the {limit:,} limit set by {env})", width=width,
                  height=height, limit=limit, env=PIXELS_ENV)
    ratio = max(width, height) / min(width, height)
    if ratio > ratio_limit:
        return M_("too thin ({width}x{height}, {ratio:,.0f}:1, over the {ratio_limit}:1 aspect ratio limit set by "
                  "{env})", width=width, height=height, ratio=ratio, ratio_limit=ratio_limit, env=ASPECT_ENV)
    return None


def resize_problem(width: int, height: int, shorter_side: int) -> Message | None:
    """Why resizing this image so its shorter side is `shorter_side` would make too many pixels, or None.

    A model's eval transform scales the shorter side to its input size, upscaling as needed, so the
    decoded size alone does not bound memory: the resized size is checked against the same pixel limit.
    """
    scale = shorter_side / max(min(width, height), 1)
    out_w, out_h = math.ceil(width * scale), math.ceil(height * scale)
    limit = max_image_pixels()
    if out_w * out_h > limit:
        return M_("too large once resized ({width}x{height} would become {out_w}x{out_h}, over the {limit:,} pixel "
                  "limit set by {env})", width=width, height=height, out_w=out_w, out_h=out_h, limit=limit,
                  env=PIXELS_ENV)
    return None


def _open(source: Path | bytes) -> Image.Image:
    """Open lazily (header only) with the pixel limit applied, so a bomb is refused before decoding."""
    limit = max_image_pixels()
    # Pillow raises by itself above 2x its limit and only warns between 1x and 2x; keeping its
    # limit in step with ours means anything it warns about is refused by the check below.
    Image.MAX_IMAGE_PIXELS = limit
    try:
        img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Image.DecompressionBombError:
        raise ImageRejected(M_("too many pixels (over the {limit:,} limit set by {env})", limit=limit,
                               env=PIXELS_ENV)) from None
    except UnidentifiedImageError:
        raise ImageRejected(M_("not an image Pillow can read")) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected(M_("unreadable image ({error})", error=first_line(exc))) from None
    # Checked on the header, before a byte of pixel data is decoded.
    problem = size_problem(img.width, img.height)
    if problem is not None:
        img.close()
        raise ImageRejected(problem)
    return img


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def check_image(data: bytes) -> None:
    """Validity check: header, pixel limit, Pillow's verify(), then a decode of every byte.

    verify() walks the chunk structure (CRCs for PNG) but decompresses nothing, so a truncated
    JPEG or a PNG with a broken IDAT passes it and only fails at decode time, in the middle of
    an extraction. So the pixel data is decoded too, JPEG at reduced scale (`draft`), which
    still reads every byte but skips most of the work.
    """
    img = _open(data)
    try:
        img.verify()
        img.close()
        img = _open(data)
        img.draft("RGB", (64, 64))
        img.load()
    except ImageRejected:
        raise
    except Exception as exc:  # the plugins raise OSError, SyntaxError, struct.error, zlib.error...
        raise ImageRejected(M_("corrupt image ({error})", error=first_line(exc))) from None
    finally:
        img.close()


def open_rgb(source: Path | bytes, draft_side: int | None = None) -> Image.Image:
    """Decode a file (or its bytes) into an RGB uint8 image, or raise ImageRejected.

    `draft_side`: the caller will shrink the image to fit this side anyway, so a JPEG may be decoded at a reduced
    scale (Pillow's `draft`: 1/2, 1/4 or 1/8, never below the side asked for): a 12-megapixel phone photo then
    takes a fraction of the time and memory. Other formats ignore it.
    """
    img = _open(source)
    try:
        with img:
            if draft_side is not None:
                img.draft("RGB", (draft_side, draft_side))
            img.load()
            rgb = to_rgb(_upright(img))
            # Closing the opened image frees its pixels, so never hand that very object back.
            return rgb.copy() if rgb is img else rgb
    except ImageRejected:
        raise
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, struct.error...
        raise ImageRejected(M_("corrupt image ({error})", error=first_line(exc))) from None


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation so phone photos are not sideways; a broken tag is ignored."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB: alpha composited on white, high bit depths scaled, not clipped."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        # Transparent pixels have arbitrary colour underneath; white is what a viewer shows.
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_scale_to_uint8(np.asarray(img), mode), "L").convert("RGB")
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageRejected(M_("unsupported image mode {mode} ({error})", mode=mode, error=first_line(exc))) from None


def _scale_to_uint8(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Map integer/float samples to 0-255 by their nominal range, so 16-bit 65535 is 255.

    Mode "I" is Pillow's catch-all 32-bit container: it holds 8-bit data from some TIFFs,
    16-bit data from older PNG readers, or arbitrary values; pick the range that fits.
    """
    values = pixels.astype(np.float32)  # half of float64's memory; exact for 16-bit samples
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if mode.startswith("I;16") or (mode == "I" and lo >= 0 and 255 < hi <= 65535):
        scaled = values / 257.0
    elif mode == "I" and lo >= 0 and hi <= 255:
        scaled = values
    elif mode == "F" and lo >= 0 and hi <= 1:
        scaled = values * 255.0
    elif hi > lo:
        scaled = (values - lo) * (255.0 / (hi - lo))
    else:
        scaled = np.zeros_like(values)
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)

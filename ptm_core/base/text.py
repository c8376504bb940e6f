"""Making user-supplied text safe to show or export: terminals, spreadsheets, JSON readers."""
from __future__ import annotations

import json
import math
import re

import numpy as np

# Cells a spreadsheet would run as a formula (OWASP CSV injection): = + - @, and tab / CR,
# which some importers strip before looking at the next character.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` with control characters (ESC, CR, BEL, bidi overrides...) written as visible escapes.

    A file name from a zip can hold an escape sequence that clears or retitles a terminal when
    an error message quotes it; escaped, it is shown for what it is and does nothing.
    """
    return _UNSAFE.sub(_escape, str(text))


def csv_cell(value: object) -> object:
    """A value safe to put in a CSV cell: text that a spreadsheet would run as a formula is quoted."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_safe_frame(frame):
    """A copy of a pandas DataFrame with every text cell passed through `csv_cell` (numbers untouched)."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype.kind not in "biufcmM":  # any text-like column: object, str, string, category
            safe[column] = safe[column].map(csv_cell)
    safe.columns = [csv_cell(str(c)) for c in safe.columns]
    return safe


def json_safe(value: object) -> object:
    """`value` with NaN/inf turned into None and numpy scalars into Python ones, for strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: object) -> str:
    """Strict JSON (no bare NaN): what `--json` prints."""
    return json.dumps(json_safe(value), allow_nan=False, default=str)

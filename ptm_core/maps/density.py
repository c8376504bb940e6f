"""Maps too large for a WebGL scatter: one datashader image of every point, selections answered here.

Up to SCATTERGL_MAX_POINTS the browser draws each point (plotly scattergl: plot + box select within 2 s in
headless Chromium up to there, not at 1M: `python benchmarks/browser_points.py --sizes 300000,1000000`; the
browser-map rows of benchmarks/RESULTS.md are its quick sizes).
Beyond that the server renders the points to an image (datashader, the colours of the classes mixed
per pixel) and the browser draws the image plus a coarse grid of invisible click targets, one per grid
cell that holds points. A box or lasso comes back as its outline and a click as a grid node; the rows
are found here, in every point's map coordinates: the rows inside the outline, or the nearest row.
datashader is optional (requirements-bigmap.txt): without it the app draws scattergl at any size.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pandas as pd
from matplotlib.path import Path as Polygon
from scipy.spatial import cKDTree

# Measured (benchmarks/browser_points.py, SwiftShader WebGL on 2 cores): 300k points plot 1.1 s + select
# 0.5-0.8 s, 1M 2.4 + 1.8 s. The environment variable lowers it (the browser test draws 60 points this way).
SCATTERGL_MAX_POINTS = 300_000
IMAGE_SIZE = (1200, 600)  # pixels rendered: about the map's size on screen, so one pixel per screen pixel
GRID = (120, 60)  # click targets: one per cell holding points, at most 7,200 invisible (SVG) markers
MARGIN = 0.03  # of each axis' span, so points on the edge are not cut by the image's border


def scattergl_max_points() -> int:
    return int(os.environ.get("PTM_SCATTERGL_MAX_POINTS", SCATTERGL_MAX_POINTS))


def available() -> bool:
    return importlib.util.find_spec("datashader") is not None


def use_density(n: int) -> bool:
    """Whether a 2-D map of n points is drawn as a density image (only where datashader is installed)."""
    return n > scattergl_max_points() and available()


def extent(coords: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """(x range, y range) of the map with a margin; a flat axis gets a unit span."""
    ranges = []
    for column in coords[:, :2].T:
        lo, hi = float(column.min()), float(column.max())
        pad = (hi - lo) * MARGIN or 0.5
        ranges.append((lo - pad, hi + pad))
    return ranges[0], ranges[1]


def _points(coords: np.ndarray, categories: pd.Categorical | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1]})
    if categories is not None:
        frame["c"] = categories
    return frame


def render(coords: np.ndarray, codes: np.ndarray, colours: list[str], size=IMAGE_SIZE):
    """An RGBA PIL image of every point, each pixel coloured by the mix of the categories in it.

    `codes`: one category number per point (0..len(colours)-1). eq_hist shading, so both a pixel
    holding a few points and one holding thousands stay visible.
    """
    import datashader as ds
    import datashader.transfer_functions as tf

    x_range, y_range = extent(coords)
    canvas = ds.Canvas(plot_width=size[0], plot_height=size[1], x_range=x_range, y_range=y_range)
    codes = np.asarray(codes)
    known = codes >= 0  # -1: a value outside the categories (pandas' code for it) is left out of the image
    frame = _points(coords[known], pd.Categorical(codes[known], categories=range(len(colours))))
    agg = canvas.points(frame, "x", "y", ds.count_cat("c"))
    image = tf.shade(agg, color_key=colours, how="eq_hist", min_alpha=90)
    # Sparse maps: grow isolated pixels to up to 2 px so lone points can be seen (and clicked).
    return tf.dynspread(image, threshold=0.5, max_px=2).to_pil()


def click_targets(coords: np.ndarray, grid=GRID) -> np.ndarray:
    """Centres of the grid cells that hold at least one point (k x 2): where a click can land."""
    import datashader as ds

    x_range, y_range = extent(coords)
    canvas = ds.Canvas(plot_width=grid[0], plot_height=grid[1], x_range=x_range, y_range=y_range)
    agg = canvas.points(_points(coords), "x", "y", ds.count())
    ys, xs = np.nonzero(agg.values)
    return np.column_stack([agg.coords["x"].values[xs], agg.coords["y"].values[ys]])


def rows_in_box(coords: np.ndarray, x_range, y_range) -> np.ndarray:
    (x0, x1), (y0, y1) = sorted(x_range), sorted(y_range)
    x, y = coords[:, 0], coords[:, 1]
    return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))


def rows_in_lasso(coords: np.ndarray, xs, ys) -> np.ndarray:
    return np.flatnonzero(Polygon(np.column_stack([xs, ys])).contains_points(coords[:, :2]))


def nearest_row(coords: np.ndarray, x: float, y: float) -> int:
    return int(cKDTree(coords[:, :2]).query([x, y])[1])


def selected_rows(coords: np.ndarray, selection: dict | None) -> np.ndarray:
    """The rows a plotly selection on the density view names: inside its box or lasso, or nearest its click."""
    selection = selection or {}
    box = (selection.get("box") or [None])[-1]
    # A click in select mode can come back with a box too, of no area: then the clicked point decides.
    if box and np.ptp(box["x"]) > 0 and np.ptp(box["y"]) > 0:
        return rows_in_box(coords, box["x"], box["y"])
    if selection.get("lasso"):
        lasso = selection["lasso"][-1]
        return rows_in_lasso(coords, lasso["x"], lasso["y"])
    points = selection.get("points") or []
    if len(points) == 1 and "x" in points[0]:
        return np.array([nearest_row(coords, points[0]["x"], points[0]["y"])])
    return np.array([], dtype=int)

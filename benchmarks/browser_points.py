"""Browser map of N points: how long headless Chromium takes to draw it and to answer a box selection.

    python benchmarks/browser_points.py [--sizes 10000,100000] [--variant app|one-trace|no-hover] [--repeats 2]

The figure is the app's own (`pages.ui.maps.map_figure`: plotly express, render_mode="webgl", one
scattergl trace per class, each point's row first in customdata, a hover template) on seeded synthetic
points (10 Gaussian clusters, one per class). It is written with `fig.to_html(include_plotlyjs=True)`
(offline) and opened in Playwright; times are taken in the page with performance.now():
  draw:   navigation start -> Plotly.newPlot resolves (plotly emits its first plotly_afterplot just
          before resolving) plus one animation frame, so the gl canvas has been presented; also split
          at the newPlot call into loading (plotly.js, the figure's JSON) and `plot` (newPlot -> drawn);
  select: dragmode 'select' via Plotly.relayout, a page.mouse drag over ~40 % of the plot area,
          then mouse-up -> plotly_selected (with the number of points it names).
  drag:   mouse-down -> mouse-up of the 10-step drag; plotly reselects and redraws on every move, so
          this, not `select`, is where a big map feels slow (reported, not judged).
Chromium has no GPU here (--disable-gpu): WebGL runs on SwiftShader, on the CPU, so these are
pessimistic for a user with a GPU. Not measured: Streamlit's websocket transfer of the figure and its
round trip of the selection back to Python.
Variants, to find what keeps 100k+ under 2 s: `app` (as the app draws it), `one-trace` (one scattergl
trace, colour as a numeric class code, customdata = row only), `no-hover` (app plus hovermode=False).
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_S = 2.0
QUICK_SIZES = (10_000, 100_000)
ALL_SIZES = (10_000, 100_000, 300_000, 1_000_000)
CLASSES = [f"class {i}" for i in range(10)]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1200, "height": 700}

# Runs in the page after newPlot resolves: stamps the draw, then waits a frame so the canvas is shown.
POST_SCRIPT = """
var gd = document.getElementById('map');
window.__plotted = performance.now();
requestAnimationFrame(function () { window.__drawn = performance.now(); window.__traces = gd._fullData.length; });
gd.on('plotly_selected', function (e) {
  window.__selected = {t: performance.now(), n: e && e.points ? e.points.length : 0};
});
// Capture phase on window: stamps the user's mouse-up before plotly's own handler starts working.
window.addEventListener('mouseup', function () { window.__up = performance.now(); }, true);
window.addEventListener('mousedown', function () { window.__down = performance.now(); }, true);
"""


def synthetic_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """The columns `ptm_core.flows.tables.point_frame` gives a map without a probe: row, id, class, x, y."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(len(CLASSES), 2))
    labels = rng.integers(0, len(CLASSES), size=n)
    xy = centres[labels] + rng.normal(scale=1.5, size=(n, 2))
    return pd.DataFrame({"row": np.arange(n), "id": [f"img_{i:07d}.png" for i in range(n)],
                         "class": np.asarray(CLASSES)[labels], "x": xy[:, 0], "y": xy[:, 1]})


def app_figure(frame: pd.DataFrame) -> go.Figure:
    """The app's map_figure; importing it outside `streamlit run` only logs warnings, silenced here."""
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
    from pages.ui.maps import map_figure

    return map_figure(frame, "class", CLASSES)


def one_trace_figure(frame: pd.DataFrame) -> go.Figure:
    """One scattergl trace: colour from a numeric class code, customdata = row (a typed array, not JSON objects)."""
    from pages.ui.maps import PALETTE

    codes = pd.Categorical(frame["class"], categories=CLASSES).codes
    k = len(CLASSES)
    # A stepped colour scale, one flat band per class code, so the colours match the app's palette.
    scale = [[edge, PALETTE[i]] for i in range(k) for edge in (i / k, (i + 1) / k)]
    trace = go.Scattergl(x=frame["x"].to_numpy(), y=frame["y"].to_numpy(), mode="markers",
                         customdata=frame["row"].to_numpy(), hovertemplate="#%{customdata}<extra></extra>",
                         marker={"size": 5, "opacity": 0.8, "color": codes, "colorscale": scale,
                                 "cmin": -0.5, "cmax": k - 0.5})
    return go.Figure(trace).update_layout(height=600, margin={"l": 10, "r": 10, "t": 30, "b": 10})


def build_figure(n: int, variant: str) -> go.Figure:
    frame = synthetic_frame(n)
    if variant == "app":
        return app_figure(frame)
    if variant == "no-hover":  # the app's ten traces, hover off: plotly skips its hover hit-testing
        return app_figure(frame).update_layout(hovermode=False)
    return one_trace_figure(frame)


def write_html(fig: go.Figure, folder: Path) -> Path:
    path = folder / "map.html"
    html = fig.to_html(include_plotlyjs=True, full_html=True, div_id="map", post_script=POST_SCRIPT)
    # Stamp the newPlot call (the last one: the bundle's own text may name it too), to split the draw
    # into loading plotly.js plus the figure's JSON, and plotting, which is all a rerun in the app pays.
    head, call, tail = html.rpartition("Plotly.newPlot(")
    path.write_text(head + "window.__call = performance.now(), " + call + tail)
    return path


def measure_once(browser, url: str, timeout_s: float) -> dict:
    """One fresh page: draw seconds, select seconds and points selected; None where it timed out."""
    page = browser.new_page(viewport=VIEWPORT)
    result: dict = {"draw": None, "plot": None, "select": None, "selected": None, "drag": None}
    try:
        page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
        page.wait_for_function("window.__drawn !== undefined", timeout=timeout_s * 1000, polling=50)
        call, drawn = page.evaluate("[window.__call, window.__drawn]")
        result.update(draw=drawn / 1000, plot=(drawn - call) / 1000)
        page.evaluate("Plotly.relayout(document.getElementById('map'), {dragmode: 'select'})")
        # The plot area, from plotly's own layout of the axes inside the div.
        box = page.evaluate("""(() => { const gd = document.getElementById('map'), s = gd._fullLayout._size,
            r = gd.getBoundingClientRect(); return [r.left + s.l, r.top + s.t, s.w, s.h]; })()""")
        left, top, width, height = box
        side = 0.4 ** 0.5  # a square of 0.63 x 0.63 of each side: 40 % of the plot area
        x0, y0 = left + width * (1 - side) / 2, top + height * (1 - side) / 2
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + width * side, y0 + height * side, steps=10)
        page.mouse.up()
        page.wait_for_function("window.__selected !== undefined", timeout=timeout_s * 1000, polling=50)
        down, up, selected = page.evaluate("[window.__down, window.__up, window.__selected]")
        # drag: mouse-down to mouse-up of a 10-step drag; plotly selects on every move, so it grows with N.
        result.update(select=(selected["t"] - up) / 1000, selected=selected["n"], drag=(up - down) / 1000)
    except Exception as error:  # a timeout or a crashed tab at 1M is a result, not a failure
        result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
    finally:
        page.close()
    return result


def median_or_none(values: list) -> float | None:
    return statistics.median(values) if values and all(v is not None for v in values) else None


def measure(n: int, variant: str = "app", repeats: int = 2, timeout_s: float = 60.0) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        path = write_html(build_figure(n, variant), Path(folder))
        megabytes = path.stat().st_size / 1e6
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                runs = [measure_once(browser, path.as_uri(), timeout_s) for _ in range(repeats)]
            finally:
                browser.close()
    return {"n": n, "variant": variant, "html_mb": megabytes, "timeout_s": timeout_s,
            "draw": median_or_none([r["draw"] for r in runs]), "plot": median_or_none([r["plot"] for r in runs]),
            "select": median_or_none([r["select"] for r in runs]), "drag": median_or_none([r["drag"] for r in runs]),
            "selected": runs[-1]["selected"], "errors": [r["error"] for r in runs if "error" in r]}


def to_row(m: dict) -> dict:
    """The shape benchmarks/run.py reads: figure, ours, baseline, ratio, target, met, note.

    The target is judged on plot + select: in the app plotly.js comes once with Streamlit's frontend,
    so a new map pays for plotting, not for loading the library (2-3 s here on its own, any N).
    """
    figure = f"{m['n']:,} points in the browser map (scattergl, {m['variant']}): draw + box select"
    base = {"figure": figure, "baseline": "target 2 s", "target": "≤ 2 s (plot + select)"}
    note = f"html {m['html_mb']:.0f} MB; SwiftShader WebGL (no GPU)"
    if m["draw"] is not None:
        note += f"; page load to drawn {m['draw']:.2f} s (plotly.js + figure JSON + plot)"
    if m["plot"] is None or m["select"] is None:
        done = f"plot {m['plot']:.2f} s, " if m["plot"] is not None else ""
        return {**base, "ours": f"{done}did not finish in {m['timeout_s']:.0f} s", "ratio": 0.0, "met": False,
                "note": f"{note}; {'; '.join(m['errors'])}"}
    total = m["plot"] + m["select"]
    return {**base, "ours": f"plot {m['plot']:.2f} s, select {m['select']:.2f} s", "ratio": TARGET_S / total,
            "met": total <= TARGET_S,
            "note": f"{m['selected']:,} points selected; 10-step drag {m['drag']:.2f} s; {note}"}


def rows(quick: bool = False, variant: str = "app") -> list[dict]:
    """One row per size; quick: 10k and 100k only."""
    sizes = QUICK_SIZES if quick else ALL_SIZES
    return [to_row(measure(n, variant, timeout_s=30.0 if n <= 100_000 else 90.0)) for n in sizes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, QUICK_SIZES)), help="comma-separated point counts")
    parser.add_argument("--variant", default="app", choices=["app", "one-trace", "no-hover"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per draw and per selection")
    args = parser.parse_args()
    print(f"{'N':>10} {'variant':>9} {'load→drawn s':>12} {'plot s':>6} {'select s':>8} {'selected':>9} "
          f"{'drag s':>6} {'html MB':>7}  met")
    fmt = lambda v: f"{v:.2f}" if v is not None else "DNF"  # noqa: E731
    for n in (int(s) for s in args.sizes.split(",")):
        m = measure(n, args.variant, args.repeats, args.timeout)
        selected = f"{m['selected']:,}" if m["selected"] is not None else "-"
        errors = f"  ({'; '.join(m['errors'])})" if m["errors"] else ""
        print(f"{n:>10,} {args.variant:>9} {fmt(m['draw']):>12} {fmt(m['plot']):>6} {fmt(m['select']):>8} "
              f"{selected:>9} {fmt(m['drag']):>6} {m['html_mb']:>7.0f}  {to_row(m)['met']}{errors}", flush=True)


if __name__ == "__main__":
    main()

"""The page's plotly charts as static PNG images, for the lesson file (pages/ui/lesson_views.py).

Plotly's own image export needs Kaleido and a Chrome, which an offline classroom machine may not have; matplotlib
is already installed (grad-cam requires it). So this draws what the tour's charts use, from the figure's own data:
scatter traces (markers, lines, text; error bars), grouped bars with error bars, a heatmap, facet columns, log and
percent axes, titles, legends. A trace type outside that list is named in the image rather than dropped silently.
"""
from __future__ import annotations

import io
import re

import numpy as np

# A Latin font first, then CJK ones (fonts-wqy-microhei in CI), so a Chinese legend renders as text, not boxes.
FONTS = ["DejaVu Sans", "WenQuanYi Micro Hei", "Noto Sans CJK SC"]
MARKERS = {"circle": "o", "diamond": "D", "square": "s", "x": "x", "cross": "P", "star": "*",
           "triangle-up": "^", "triangle-down": "v"}
_TAG = re.compile(r"<[^>]+>")


def installed_fonts() -> list[str]:
    """FONTS that this machine has (matplotlib warns on every draw about a missing one)."""
    from matplotlib import font_manager

    names = {entry.name for entry in font_manager.fontManager.ttflist}
    return [name for name in FONTS if name in names] or ["sans-serif"]


def plain(text: object) -> str:
    """A plotly label as plain text: `<br>` a line break, other tags dropped, entities resolved."""
    import html

    value = "" if text is None else str(text)
    return html.unescape(_TAG.sub("", re.sub(r"<br\s*/?>", "\n", value)))


def _axis_pairs(fig) -> list[tuple[str, str]]:
    """The (xaxis, yaxis) pairs the traces use, left to right by their x domain (plotly's facet columns)."""
    pairs = list(dict.fromkeys((t.xaxis or "x", t.yaxis or "y") for t in fig.data)) or [("x", "y")]

    def left(pair):
        domain = _layout_axis(fig, pair[0]).domain
        return domain[0] if domain else 0.0
    return sorted(pairs, key=left)


def _layout_axis(fig, ref: str):
    name = ref[0] + "axis" + ref[1:]  # "x2" -> "xaxis2"
    return fig.layout[name]


def _values(values) -> np.ndarray | None:
    return None if values is None else np.asarray(values)


def _colour(value, default: str) -> object:
    if value is None:
        return default
    if isinstance(value, (list, tuple, np.ndarray)):
        return [c if isinstance(c, str) else default for c in value]
    return value if isinstance(value, str) else default


def _errors(error) -> tuple[np.ndarray, np.ndarray] | None:
    if error is None or error.array is None or error.visible is False:
        return None
    above = np.asarray(error.array, dtype=float)
    below = np.asarray(error.arrayminus, dtype=float) if error.arrayminus is not None else above
    return np.clip(below, 0, None), np.clip(above, 0, None)  # rounding can leave a bound a hair inside its value


def _draw_scatter(ax, trace, index: int, categories: dict) -> None:
    x, y = _values(trace.x), _values(trace.y)
    if y is None:
        return
    x = np.arange(len(y)) if x is None else _category_positions(x, categories)
    mode = trace.mode or "markers"
    line_colour = trace.line.color if trace.line and trace.line.color else None
    colour = _colour(trace.marker.color if trace.marker else None, line_colour or f"C{index}")
    line_colour = line_colour or (colour if isinstance(colour, str) else None)
    label = plain(trace.name) if trace.name and trace.showlegend is not False else None
    if "lines" in mode:
        ax.plot(x, y, color=line_colour or f"C{index}", label=label, linewidth=1.5)
        label = None
    if "markers" in mode:
        size = trace.marker.size if trace.marker and isinstance(trace.marker.size, (int, float)) else 6
        symbol = MARKERS.get(trace.marker.symbol if trace.marker and isinstance(trace.marker.symbol, str) else "",
                             "o")
        ax.scatter(x, y, c=colour, s=float(size) ** 2 * 0.6, marker=symbol, label=label, linewidths=0, zorder=3)
    errors = _errors(trace.error_y)
    if errors is not None:
        ax.errorbar(x, y, yerr=np.vstack(errors), fmt="none", ecolor=line_colour or "#444", capsize=3, zorder=2)
    if "text" in mode and trace.text is not None:
        texts = [trace.text] * len(y) if isinstance(trace.text, str) else list(trace.text)
        for xi, yi, text in zip(x, y, texts):
            ax.annotate(plain(text), (xi, yi), xytext=(-8, 0), textcoords="offset points", ha="right", va="center",
                        fontsize=8)


def _category_positions(values: np.ndarray, categories: dict) -> np.ndarray:
    """Numbers stay numbers; strings become their category's position, in the order first seen (plotly's)."""
    if values.dtype.kind in "if":
        return values
    for value in values:
        categories.setdefault(str(value), len(categories))
    return np.array([categories[str(value)] for value in values], dtype=float)


def _draw_bars(ax, bars: list, categories: dict, start: int) -> None:
    """Grouped bars: each trace takes its own slot within a category's width, like plotly's barmode="group"."""
    width = 0.8 / max(len(bars), 1)
    for i, trace in enumerate(bars):
        x = _category_positions(_values(trace.x), categories) + (i - (len(bars) - 1) / 2) * width
        y = np.asarray(trace.y, dtype=float)
        colour = _colour(trace.marker.color if trace.marker else None, f"C{start + i}")
        errors = _errors(trace.error_y)
        label = plain(trace.name) if trace.name and trace.showlegend is not False else None
        ax.bar(x, y, width=width, color=colour, label=label,
               yerr=None if errors is None else np.vstack(errors), capsize=3, ecolor="#444")


def _draw_heatmap(ax, trace) -> None:
    z = np.asarray(trace.z, dtype=float)
    limit = float(np.nanmax(np.abs(z))) if z.size else 1.0
    centred = trace.zmid is not None
    ax.imshow(z, aspect="auto", cmap="RdBu", vmin=-limit if centred else None, vmax=limit if centred else None,
              interpolation="nearest")


def _style_axis(ax, fig, xref: str, yref: str, categories: dict) -> None:
    for ref, setters in ((xref, (ax.set_xscale, ax.set_xlim, ax.set_xlabel, ax.xaxis, "labelbottom")),
                         (yref, (ax.set_yscale, ax.set_ylim, ax.set_ylabel, ax.yaxis, "labelleft"))):
        axis, (set_scale, set_limits, set_label, mpl_axis, labels) = _layout_axis(fig, ref), setters
        if axis.type == "log":
            set_scale("log")
        if axis.range is not None and axis.type != "log" and axis.type != "category":
            set_limits(*axis.range)
        if axis.title and axis.title.text:
            set_label(plain(axis.title.text))
        if axis.tickformat and "%" in axis.tickformat:
            from matplotlib.ticker import PercentFormatter
            mpl_axis.set_major_formatter(PercentFormatter(1.0, decimals=int(axis.tickformat.strip(".%") or 0)))
        if axis.tickvals is not None and axis.type != "category":
            from matplotlib.ticker import NullFormatter
            mpl_axis.set_ticks(list(axis.tickvals), [str(v) for v in axis.tickvals])
            mpl_axis.set_minor_formatter(NullFormatter())  # a log axis would label its minor ticks "3×10⁰"
        if axis.visible is False:
            mpl_axis.set_visible(False)
        elif axis.showticklabels is False:  # labels only: a facet's axis shares its ticks with its neighbour's
            ax.tick_params(**{labels: False})
    if categories:
        ax.set_xticks(list(categories.values()), list(categories.keys()))


def _facet_titles(fig, axes: dict) -> None:
    """Facet labels (paper annotations above the plots) as each subplot's title."""
    for note in fig.layout.annotations or ():
        if note.yref != "paper" or note.y is None or note.y < 0.99 or not note.text:
            continue
        for (xref, _yref), ax in axes.items():
            domain = _layout_axis(fig, xref).domain or (0, 1)
            if domain[0] <= note.x <= domain[1]:
                ax.set_title(plain(note.text), fontsize=10)


def figure_png(fig, width: float = 8.0, dpi: int = 110) -> bytes:
    """`fig` (a plotly Figure) drawn by matplotlib as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"font.family": installed_fonts(), "font.size": 9,
                         "axes.spines.top": False, "axes.spines.right": False}):
        pairs = _axis_pairs(fig)
        height = max((fig.layout.height or 350) / 100 * 0.9, 0.6)
        canvas, grid = plt.subplots(1, len(pairs), figsize=(width, height), squeeze=False, sharey=len(pairs) > 1)
        axes = dict(zip(pairs, grid[0]))
        for (xref, yref), ax in axes.items():
            traces = [t for t in fig.data if (t.xaxis or "x", t.yaxis or "y") == (xref, yref)]
            categories: dict = {}
            bars = [t for t in traces if t.type == "bar"]
            if bars:
                _draw_bars(ax, bars, categories, 0)
            for index, trace in enumerate(traces):
                if trace.type in ("scatter", "scattergl"):
                    _draw_scatter(ax, trace, index, categories)
                elif trace.type == "heatmap":
                    _draw_heatmap(ax, trace)
                elif trace.type != "bar":
                    ax.text(0.5, 0.5, f"({trace.type} chart: see the app)", ha="center", transform=ax.transAxes)
            _style_axis(ax, fig, xref, yref, categories)
        _facet_titles(fig, axes)
        title = fig.layout.title.text if fig.layout.title else None
        if title:
            canvas.suptitle(plain(title), fontsize=10)
        handles = [h for ax in axes.values() for h in ax.get_legend_handles_labels()[0]]
        if handles and fig.layout.showlegend is not False:
            labels = [label for ax in axes.values() for label in ax.get_legend_handles_labels()[1]]
            unique = dict(zip(labels, handles))
            canvas.legend(unique.values(), unique.keys(), loc="lower center", ncol=min(len(unique), 4),
                          frameon=False, bbox_to_anchor=(0.5, -0.02))
            canvas.tight_layout(rect=(0, 0.08 + 0.04 * ((len(unique) - 1) // 4), 1, 1))
        else:
            canvas.tight_layout()
        buffer = io.BytesIO()
        canvas.savefig(buffer, format="png", dpi=dpi)
        plt.close(canvas)
        return buffer.getvalue()

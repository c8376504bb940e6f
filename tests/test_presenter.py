"""Presenter mode reaches every chart: one route for plotly charts, and what it does to a figure."""
import re
from pathlib import Path

import plotly.express as px
import plotly.graph_objects as go

from pages.ui import i18n

ROOT = Path(__file__).resolve().parents[1]


def test_every_plotly_chart_goes_through_show_chart():
    """A page that called st.plotly_chart itself would keep laptop-sized points and fonts on a projector."""
    offenders = []
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py"))]:
        if path.name == "i18n.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"\.plotly_chart\(", code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert not offenders, offenders


def test_presenter_mode_scales_markers_and_fonts_on_a_copy(monkeypatch):
    fig = px.scatter(x=[0, 1, 2], y=[1, 0, 1], render_mode="webgl")
    fig.update_traces(marker={"size": 5})
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines+markers"))  # plotly's default marker size
    fig.add_trace(go.Bar(x=[0], y=[1]))
    monkeypatch.setattr(i18n, "presenter", lambda: False)
    assert i18n.presented(fig) is fig
    monkeypatch.setattr(i18n, "presenter", lambda: True)
    big = i18n.presented(fig)
    assert big.data[0].marker.size == 5 * i18n.PRESENTER_SCALE
    assert big.data[1].marker.size == 6 * i18n.PRESENTER_SCALE
    assert big.layout.font.size == 20
    assert fig.data[0].marker.size == 5, "the caller's (maybe cached) figure is left as it was"


def test_per_point_sizes_scale_too(monkeypatch):
    monkeypatch.setattr(i18n, "presenter", lambda: True)
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="markers", marker={"size": [3, 7]}))
    assert list(i18n.presented(fig).data[0].marker.size) == [6, 14]


def test_the_metric_value_rule_outranks_the_paragraph_rule():
    """Both rules are !important, so the more specific selector wins: the value's must name more containers
    than the paragraphs' rule, or metric values shrink to their label's size (measured: 25.3 px)."""
    css = i18n.PRESENTER_CSS
    value_rule = re.search(r'(\[data-testid="stMetric"\] \[data-testid="stMetricValue"\] \*)', css)
    assert value_rule and "3rem !important" in css.split(value_rule.group(1), 1)[1].split("}", 1)[0]

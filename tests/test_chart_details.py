"""What a chart says on its face: ticks that never repeat, names a reader uses, titles that fit, files that carry
their provenance (issue 23, item 10)."""
import plotly.express as px

from pages.ui.lab_charts import efficiency_chart, efficiency_table, percent_axis, wrapped_title
from pages.ui.maps import exported_figure

PRODUCED_BY = "tf_efficientnet_lite0 (bundled) on mnist5k (limit 5000) @ 128px"


def _ticks(fig) -> list[str]:
    """The tick labels plotly draws for the y axis, with its tickformat, on a 5-tick axis over the data's range."""
    low, high = min(fig.data[0].y), max(fig.data[0].y)
    form = fig.layout.yaxis.tickformat
    return [format(low + (high - low) * i / 4, form[1:]) for i in range(5)]


def test_a_narrow_percent_range_gets_a_decimal_and_no_tick_repeats():
    fig = percent_axis(px.line(x=[1, 2, 3], y=[0.912, 0.921, 0.931]), [0.912, 0.921, 0.931])
    assert fig.layout.yaxis.tickformat == ".1%"
    assert len(set(_ticks(fig))) == 5, _ticks(fig)
    wide = percent_axis(px.line(x=[1, 2], y=[0.2, 0.9]), [0.2, 0.9])
    assert wide.layout.yaxis.tickformat == ".0%"


def test_label_efficiency_names_its_methods_and_wraps_its_title():
    rows = [{"k": 1, "method": "logreg", "mean": 0.5, "ci95": [0.4, 0.6], "accuracies": [0.5] * 5},
            {"k": 1, "method": "knn", "mean": 0.45, "ci95": [0.4, 0.5], "accuracies": [0.45] * 5}]
    fig = efficiency_chart(rows, PRODUCED_BY)
    assert {trace.name for trace in fig.data} == {"linear probe", "k-NN"}
    assert set(efficiency_table(rows)["method"]) == {"linear probe", "k-NN"}
    title = fig.layout.title.text
    assert title.split("<br>")[1] == f"<sup>{PRODUCED_BY}</sup>", "the provenance gets a line of its own"


def test_the_exported_map_carries_its_title_and_provenance():
    fig = px.scatter(x=[0, 1], y=[1, 0])
    html = exported_figure(fig, "UMAP 2-D (15 neighbours)", PRODUCED_BY).to_html(include_plotlyjs=False)
    assert "UMAP 2-D (15 neighbours)" in html and PRODUCED_BY in html
    assert fig.layout.title.text is None, "the figure on screen is left as it was"


def test_wrapped_title_escapes_what_produced_it():
    assert wrapped_title("Title", "a <b>") == "Title<br><sup>a &lt;b&gt;</sup>"

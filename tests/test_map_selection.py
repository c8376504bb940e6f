"""Selections on the map name the right images (streamlit issue 8914), and the map views around them."""
import copy

import numpy as np
import pytest

from indexed_images import decode, encode, write_indexed_folder
from pages.ui import maps as views
from ptm_core.base.configs import DatasetConfig, ProjectionConfig
from ptm_core.data import load_dataset
from ptm_core.features.featureset import FeatureSet
from ptm_core.probes.linear import run_linear_probe
from ptm_core.maps.projection import compute_projection
from ptm_core.flows.tables import point_frame, selection_counts, stratified_sample


def test_the_index_code_round_trips_through_jpeg():
    import io

    from PIL import Image

    for index in (0, 1, 15, 16, 59, 200):
        buffer = io.BytesIO()
        encode(index).resize((80, 80)).save(buffer, format="JPEG", quality=75)
        assert decode(Image.open(buffer)) == index


@pytest.fixture()
def indexed(tmp_path):
    """The indexed folder as a dataset, features that are its encoded colours, a probe and a PCA map."""
    dataset = load_dataset(DatasetConfig(f"folder:{write_indexed_folder(tmp_path / 'indexed')}"))
    assert [decode(dataset.image(i)) for i in range(len(dataset.labels))] == list(range(60))
    rng = np.random.default_rng(0)
    features = (np.eye(3)[dataset.labels] * 3 + rng.normal(size=(60, 3))).astype(np.float32)
    fs = FeatureSet(np.hstack([features, rng.normal(size=(60, 5)).astype(np.float32)]), dataset.labels,
                    dataset.class_names, dataset.ids, "indexed")
    coords = compute_projection(fs.features, ProjectionConfig(method="pca"))
    return dataset, fs, run_linear_probe(fs.features, fs.labels), coords


def _event(fig, inside) -> dict:
    """What Streamlit hands back for a box selection: per point, its trace, its number in the trace, customdata."""
    points = []
    for curve, trace in enumerate(fig.data):
        customdata = trace.customdata if trace.customdata is not None else [None] * len(trace.x)
        for number, (x, y, custom) in enumerate(zip(trace.x, trace.y, customdata)):
            if inside(x, y):
                point = {"curve_number": curve, "point_number": number, "point_index": number, "x": x, "y": y}
                if custom is not None:
                    point["customdata"] = list(custom)
                points.append(point)
    return {"selection": {"points": points, "box": [], "lasso": []}}


@pytest.mark.parametrize("colour", list(views.COLOUR_BY))
def test_every_selected_point_shows_its_own_image(indexed, colour):
    dataset, fs, probe, coords = indexed
    frame = point_frame(fs, probe, coords)
    fig = views.map_figure(frame, colour, fs.class_names)
    if colour in ("class", "prediction"):
        assert len(fig.data) > 1  # several traces: trace-local point numbers are not rows
    x0, x1 = np.quantile(coords[:, 0], [0.2, 0.8])
    inside = lambda x, y: x0 <= x <= x1  # noqa: E731
    rows = views.selected_rows(_event(fig, inside))
    expected = np.flatnonzero((coords[:, 0] >= x0) & (coords[:, 0] <= x1))
    assert rows.tolist() == expected.tolist() and len(rows) > 10
    # The gallery draws dataset.image(row) for each selected row: each is the image of that very point.
    for row in rows:
        assert decode(dataset.image(int(row))) == row
        assert tuple(coords[row, :2]) == (frame.loc[row, "x"], frame.loc[row, "y"])


def test_trace_point_numbers_would_have_shown_the_wrong_images(indexed):
    """The bug this guards against: reading point numbers instead of customdata picks other images."""
    _, fs, probe, coords = indexed
    fig = views.map_figure(point_frame(fs, probe, coords), "class", fs.class_names)
    event = _event(fig, lambda x, y: True)
    by_number = sorted({p["point_index"] for p in event["selection"]["points"]})
    assert by_number != views.selected_rows(event).tolist()


def test_a_selection_over_ringed_points_reads_the_data_points_only(indexed):
    """Issue 14.1: a second box over a ring crashed with KeyError: 0 (the ring trace's points)."""
    _, fs, probe, coords = indexed
    fig = views.map_figure(point_frame(fs, probe, coords), "class", fs.class_names, highlight=[3, 25, 41])
    assert fig.data[-1].name == "selected" and fig.data[-1].customdata is None
    data_traces = fig.layout.meta["data_traces"]
    assert data_traces == len(fig.data) - 1
    event = _event(fig, lambda x, y: True)
    assert views.selected_rows(event, data_traces).tolist() == list(range(60))
    # Whatever shape a ring point arrives in (no customdata, a dict, a scalar), it is never read as a row.
    ring = [p for p in event["selection"]["points"] if p["curve_number"] == data_traces]
    for shape in ({"0": 999}, {0: 999}, 999, [999]):
        for point in ring:
            point["customdata"] = shape
        assert views.selected_rows(event, data_traces).tolist() == list(range(60))


def test_customdata_in_any_shape_names_its_row():
    for shape in ([7, "id"], (7,), {"0": 7, "1": "id"}, 7, "7"):
        event = {"selection": {"points": [{"curve_number": 0, "customdata": shape}]}}
        assert views.selected_rows(event, data_traces=1).tolist() == [7]


def test_empty_and_malformed_events_select_nothing():
    assert views.selected_rows(None).size == 0
    assert views.selected_rows({"selection": {"points": []}}).size == 0
    assert views.selected_rows({"selection": {"points": [{"x": 1.0}]}}).size == 0


def test_point_frame_columns_and_counts(indexed):
    _, fs, probe, coords = indexed
    frame = point_frame(fs, probe, coords, selected=[0, 1, 2, 30])
    assert {"row", "id", "class", "x", "y", "prediction", "correct", "confidence", "split", "selected"} <= set(frame)
    assert frame["selected"].sum() == 4 and (frame["split"] == "test").sum() == probe.n_test
    counts = selection_counts(frame, np.array([0, 1, 2, 30]))
    assert counts.loc["c0", "selected"] == 3 and counts.loc["c1", "selected"] == 1
    assert counts.loc["c0", "in dataset"] == 20
    three_d = views.map_figure(point_frame(fs, None, np.hstack([coords, coords[:, :1]])), "class", fs.class_names)
    assert three_d.data[0].type == "scatter3d"


def test_gallery_sample_spreads_over_the_selected_classes_reproducibly():
    labels = np.repeat([0, 1, 2], [500, 60, 3])
    rows = np.arange(len(labels))
    shown = stratified_sample(rows, labels, 60, seed=0)
    assert len(shown) == 60 and np.array_equal(shown, stratified_sample(rows, labels, 60, seed=0))
    per_class = np.bincount(labels[shown], minlength=3)
    assert per_class.tolist() == [53, 6, 1]  # in proportion, every selected class present
    assert shown.max() > 500  # not "the first 60 by row number"
    assert np.array_equal(stratified_sample(rows[:40], labels[:40], 60), rows[:40])
    many = stratified_sample(np.arange(100), np.arange(100) % 80, 60)
    assert len(many) == 60 and len(set(many)) == 60


def test_hover_shows_rounded_confidence_and_named_axes(indexed):
    _, fs, probe, coords = indexed
    fig = views.map_figure(point_frame(fs, probe, coords), "class", fs.class_names, method="umap")
    template = fig.data[0].hovertemplate
    assert "%{customdata[4]:.2f}" in template and "=" not in template
    assert fig.layout.xaxis.title.text == "UMAP 1" and fig.layout.yaxis.title.text == "UMAP 2"


def test_ten_classes_get_ten_distinct_dark_enough_colours():
    from PIL import ImageColor

    colours = views.PALETTE[:10]
    assert len(set(colours)) == 10
    for colour in colours:
        r, g, b = ImageColor.getrgb(colour)
        assert 0.2126 * r + 0.7152 * g + 0.0722 * b < 200  # nothing pale on a white projector screen


def test_export_names_say_which_map():
    umap = views.export_name("abcdef1234567", ProjectionConfig(method="umap", n_neighbors=30, min_dist=0.25))
    tsne = views.export_name("abcdef1234567", ProjectionConfig(method="tsne", n_components=3, perplexity=20))
    assert umap == "map-umap-2d-n30-md0.25-euclidean-abcdef1234"
    assert tsne == "map-tsne-3d-p20-euclidean-abcdef1234"
    assert views.export_name("k", ProjectionConfig(method="pca")) == "map-pca-2d-k"


def test_exported_html_keeps_the_class_colours(indexed):
    _, fs, probe, coords = indexed
    fig = views.map_figure(point_frame(fs, probe, coords), "class", fs.class_names)
    colours = [trace.marker.color for trace in fig.data]
    assert colours == views.PALETTE[:len(fig.data)]  # class i is colour i, whatever else the figure styles
    html = copy.deepcopy(fig).update_layout(template="plotly_white").to_html(include_plotlyjs=False)
    assert all(colour in html for colour in colours) and "#000001" not in html


def test_run_titles_split_into_short_columns():
    from ptm_core.flows.tables import title_parts

    assert title_parts("probes · m (bundled) on mnist5k (limit 1000) @ 64px", "lab-probes") == {
        "what": "probes", "model (weights)": "m (bundled)", "data": "mnist5k (limit 1000)", "size": "64px"}
    assert title_parts("m (random init, seed 0) on folder:/a b/c @ 32px", "explore")["data"] == "folder:/a b/c"
    compare = title_parts("a (bundled) @ 32px vs b (random init, seed 0) @ 64px on digits", "compare")
    assert compare["what"] == "compare" and compare["data"] == "digits" and " vs " in compare["model (weights)"]
    assert title_parts("raw pixels (32×32 grey) · digits", "lab-pixels")["data"] == "digits"

"""Selections on the map name the right images (streamlit issue 8914), and the map views around them."""
import numpy as np
import pytest

from indexed_images import decode, encode, write_indexed_folder
from pages import map_views as views
from ptm_core.configs import DatasetConfig, ProjectionConfig
from ptm_core.data import load_dataset
from ptm_core.extraction import FeatureSet
from ptm_core.probes import run_linear_probe
from ptm_core.projection import compute_projection


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
        for number, (x, y, custom) in enumerate(zip(trace.x, trace.y, trace.customdata)):
            if inside(x, y):
                points.append({"curve_number": curve, "point_number": number, "point_index": number,
                               "x": x, "y": y, "customdata": list(custom)})
    return {"selection": {"points": points, "box": [], "lasso": []}}


@pytest.mark.parametrize("colour", list(views.COLOUR_BY))
def test_every_selected_point_shows_its_own_image(indexed, colour):
    dataset, fs, probe, coords = indexed
    frame = views.point_frame(fs, probe, coords)
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
    fig = views.map_figure(views.point_frame(fs, probe, coords), "class", fs.class_names)
    event = _event(fig, lambda x, y: True)
    by_number = sorted({p["point_index"] for p in event["selection"]["points"]})
    assert by_number != views.selected_rows(event).tolist()


def test_highlighted_points_are_selected_once(indexed):
    _, fs, probe, coords = indexed
    fig = views.map_figure(views.point_frame(fs, probe, coords), "class", fs.class_names, highlight=[3, 25, 41])
    assert fig.data[-1].name == "selected" and [c[0] for c in fig.data[-1].customdata] == [3, 25, 41]
    assert views.selected_rows(_event(fig, lambda x, y: True)).tolist() == list(range(60))


def test_empty_and_malformed_events_select_nothing():
    assert views.selected_rows(None).size == 0
    assert views.selected_rows({"selection": {"points": []}}).size == 0
    assert views.selected_rows({"selection": {"points": [{"x": 1.0}]}}).size == 0


def test_point_frame_columns_and_counts(indexed):
    _, fs, probe, coords = indexed
    frame = views.point_frame(fs, probe, coords, selected=[0, 1, 2, 30])
    assert {"row", "id", "class", "x", "y", "prediction", "correct", "confidence", "split", "selected"} <= set(frame)
    assert frame["selected"].sum() == 4 and (frame["split"] == "test").sum() == probe.n_test
    counts = views.selection_counts(frame, np.array([0, 1, 2, 30]))
    assert counts.loc["c0", "selected"] == 3 and counts.loc["c1", "selected"] == 1
    assert counts.loc["c0", "in dataset"] == 20
    three_d = views.map_figure(views.point_frame(fs, None, np.hstack([coords, coords[:, :1]])), "class", fs.class_names)
    assert three_d.data[0].type == "scatter3d"

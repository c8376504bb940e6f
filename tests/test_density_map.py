"""The large-set map: a datashader image whose selections are answered on the server, and fitted/placed colours."""
import numpy as np
import pytest

pytest.importorskip("datashader")

from pages.ui import density_view  # noqa: E402
from pages.ui import maps as views  # noqa: E402
from ptm_core.maps import density as density_map  # noqa: E402
from ptm_core.base.configs import ProjectionConfig  # noqa: E402
from ptm_core.features.extraction import FeatureSet  # noqa: E402
from ptm_core.maps.projection import fitted_mask  # noqa: E402
from ptm_core.flows.tables import point_frame  # noqa: E402

COORDS = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [10.0, 10.0], [10.5, 9.0]], dtype=np.float32)


def test_a_box_selects_the_rows_inside_it_whichever_way_it_was_dragged():
    assert density_map.rows_in_box(COORDS, (0.5, 2.5), (0.5, 2.5)).tolist() == [1, 2]
    assert density_map.rows_in_box(COORDS, (2.5, 0.5), (2.5, 0.5)).tolist() == [1, 2]
    event = {"box": [{"xref": "x", "yref": "y", "x": [9, 11], "y": [8, 11]}], "lasso": [],
             "points": [{"x": 9.5, "y": 9.5}, {"x": 10.5, "y": 9.5}]}
    assert density_map.selected_rows(COORDS, event).tolist() == [3, 4]  # the outline decides, not the grid nodes


def test_a_lasso_selects_the_rows_inside_its_polygon():
    event = {"box": [], "lasso": [{"x": [-1, 3, 3], "y": [-1, -1, 3]}], "points": []}
    assert density_map.selected_rows(COORDS, event).tolist() == [0, 1, 2]  # on and below the diagonal


def test_a_click_selects_the_nearest_row():
    assert density_map.selected_rows(COORDS, {"points": [{"x": 9.9, "y": 9.2}]}).tolist() == [4]
    assert density_map.nearest_row(COORDS, 1.2, 0.9) == 1
    assert density_map.selected_rows(COORDS, None).size == 0
    assert density_map.selected_rows(COORDS, {"points": [], "box": [], "lasso": []}).size == 0


def test_click_targets_sit_only_where_there_are_points():
    targets = density_map.click_targets(COORDS, grid=(20, 20))
    assert 1 <= len(targets) <= len(COORDS)
    # every target is within one grid cell of a point
    (x0, x1), (y0, y1) = density_map.extent(COORDS)
    cell = max((x1 - x0) / 20, (y1 - y0) / 20)
    gaps = np.min(np.linalg.norm(targets[:, None] - COORDS[None], axis=2), axis=1)
    assert (gaps <= cell).all()


def test_the_threshold_is_measured_and_can_be_lowered(monkeypatch):
    assert density_map.scattergl_max_points() == density_map.SCATTERGL_MAX_POINTS == 300_000
    assert not density_map.use_density(300_000) and density_map.use_density(300_001)
    monkeypatch.setenv("PTM_SCATTERGL_MAX_POINTS", "10")
    assert density_map.use_density(11)


def _feature_set(n: int = 400) -> FeatureSet:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n)
    features = (np.eye(3)[labels] * 4 + rng.normal(size=(n, 3))).astype(np.float32)
    return FeatureSet(features, labels, ["a", "b", "c"], [f"img{i}" for i in range(n)], "dense")


def test_fitted_or_placed_column_and_its_colours():
    fs = _feature_set()
    config = ProjectionConfig(method="pca", fit_max=100)
    mask = fitted_mask(len(fs.labels), config)
    frame = point_frame(fs, None, fs.features[:, :2], fitted=mask)
    assert (frame["fitted"] == "fitted").sum() == 100 and (frame["fitted"] == "placed").sum() == 300
    assert "fitted" not in point_frame(fs, None, fs.features[:, :2])
    fig = views.map_figure(frame, "fitted", fs.class_names)
    assert {t.name: t.marker.color for t in fig.data} == views.FITTED_COLOURS


@pytest.mark.parametrize("colour", ["class", "fitted", "confidence", "correct"])
def test_the_density_figure_is_an_image_with_click_targets_and_a_legend(colour):
    fs = _feature_set()
    frame = point_frame(fs, None, fs.features[:, :2], fitted=fitted_mask(400, ProjectionConfig(fit_max=100)))
    fig = density_view.density_figure(frame, colour, fs.class_names, method="umap")
    assert len(fig.layout.images) == 1 and fig.layout.images[0].source.startswith("data:image/png;base64,")
    targets, *legend = fig.data
    assert targets.type == "scatter" and targets.marker.opacity == 0 and len(targets.x) > 10
    names = [t.name for t in legend]
    assert names == (["fitted", "placed"] if colour == "fitted" else fs.class_names)  # no probe: class colours
    assert fig.layout.meta["data_traces"] == 1


def test_points_of_no_known_category_are_left_out_of_the_image():
    image = density_map.render(COORDS, np.array([0, 1, -1, 0, 1]), ["#ff0000", "#0000ff"], size=(40, 20))
    assert image.size == (40, 20) and np.asarray(image)[..., 3].max() > 0


def test_without_datashader_large_maps_stay_scattergl(monkeypatch):
    monkeypatch.setattr(density_map, "available", lambda: False)
    assert not density_map.use_density(1_000_000)  # the page then draws scattergl with a one-line note

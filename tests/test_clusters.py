"""Cluster labels on the map: HDBSCAN clusters said by their class mix, purity and exemplars; cached per map; drawn as
annotations that leave selections alone."""
import numpy as np
import pytest

from ptm_core.base.errors import PTMError
from ptm_core.maps import clusters as engine
from ptm_core.maps.clusters import ClusterConfig, default_min_cluster_size, describe_clusters, find_clusters

NAMES = ["coat", "pullover", "shirt"]


def _blobs(n_per=40, seed=0, dims=2):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [20, 0, 5], [0, 20, -5]])[:, :dims]
    coords = np.concatenate([c + rng.normal(size=(n_per, dims)) for c in centres]).astype(np.float32)
    return coords, np.repeat(np.arange(3), n_per)


def test_separated_blobs_are_one_pure_cluster_each():
    coords, labels = _blobs()
    result = find_clusters(coords, labels, NAMES, ClusterConfig(min_cluster_size=10))
    assert len(result.clusters) == 3 and result.n_noise == int(np.sum(result.ids < 0)) < 12
    by_class = {c.classes[0][0]: c for c in result.clusters}
    assert set(by_class) == set(NAMES)
    for name, c in by_class.items():
        assert c.purity == 1.0 and c.label == f"100 % {name}" and c.classes == [(name, 1.0)]
        assert 1 <= len(c.exemplars) <= engine.EXEMPLARS and all(labels[r] == NAMES.index(name) for r in c.exemplars)
    assert "HDBSCAN (leaf selection), min_cluster_size 10" in result.description
    assert "map's coordinates" in result.description


def test_a_mixed_cluster_says_its_mix_and_purity():
    ids = np.array([0] * 8 + [1] * 4 + [-1] * 3)
    labels = np.array([0] * 7 + [1] + [2] * 3 + [1] + [0, 1, 2])
    coords = np.arange(30, dtype=float).reshape(15, 2)
    first, second = describe_clusters(ids, labels, NAMES, coords)
    assert first.label == "88 % coat, 12 % pullover" and first.purity == pytest.approx(7 / 8) and first.size == 8
    assert second.label == "75 % shirt, 25 % pullover" and second.purity == 0.75


def test_shares_under_five_percent_are_left_out_of_the_label():
    ids = np.zeros(40, dtype=int)
    labels = np.array([0] * 39 + [1])
    (only,) = describe_clusters(ids, labels, NAMES, np.random.default_rng(0).normal(size=(40, 2)))
    assert only.label == "98 % coat"


def test_the_vectorised_summary_equals_a_loop_over_clusters():
    rng = np.random.default_rng(1)
    ids = rng.integers(-1, 6, 500)
    labels = rng.integers(0, 3, 500)
    coords = rng.normal(size=(500, 2))
    for c in describe_clusters(ids, labels, NAMES, coords):
        members = np.flatnonzero(ids == c.id)
        counts = np.bincount(labels[members], minlength=3)
        assert c.size == len(members) and c.purity == pytest.approx(counts.max() / len(members))
        assert c.classes[0] == (NAMES[counts.argmax()], pytest.approx(counts.max() / len(members)))
        mean = coords[members].mean(axis=0)
        distance = ((coords[members] - mean) ** 2).sum(axis=1)
        assert c.exemplars == members[np.argsort(distance, kind="stable")][:engine.EXEMPLARS].tolist()
        assert c.centre == tuple(coords[c.exemplars[0]])  # the label sits on the member nearest the mean


def test_clusters_are_cached_per_map_and_recomputed_when_it_changes(monkeypatch):
    coords, labels = _blobs()
    calls = []
    real = engine.run_hdbscan
    monkeypatch.setattr(engine, "run_hdbscan", lambda *a: calls.append(1) or real(*a))
    first = find_clusters(coords, labels, NAMES, cache_key="map-a")
    again = find_clusters(coords, labels, NAMES, cache_key="map-a")
    assert len(calls) == 1 and not first.cache_hit and again.cache_hit
    assert again.ids.tolist() == first.ids.tolist() and again.seconds == pytest.approx(first.seconds)
    assert [c.label for c in again.clusters] == [c.label for c in first.clusters]
    find_clusters(coords + 1, labels, NAMES, cache_key="map-b")  # another map
    find_clusters(coords, labels, NAMES, ClusterConfig(min_cluster_size=20), cache_key="map-a")  # other settings
    assert len(calls) == 3


def test_three_d_maps_and_feature_space():
    coords, labels = _blobs(dims=3)
    result = find_clusters(coords, labels, NAMES, ClusterConfig(min_cluster_size=10))
    assert len(result.clusters) == 3 and all(len(c.centre) == 3 for c in result.clusters)
    rng = np.random.default_rng(2)
    features = np.eye(3)[labels] * 5 + rng.normal(scale=0.1, size=(120, 3))
    features = np.hstack([features, rng.normal(scale=0.1, size=(120, 60))])
    on_features = find_clusters(rng.normal(size=(120, 2)), labels, NAMES,
                                ClusterConfig(space="features", min_cluster_size=10, pca_dims=10), features=features)
    assert sorted(c.label for c in on_features.clusters) == ["100 % coat", "100 % pullover", "100 % shirt"]
    assert "features (PCA to 10 dims)" in on_features.description


def test_default_size_scales_with_the_points():
    assert [default_min_cluster_size(n) for n in (60, 300, 5_000, 50_000)] == [10, 10, 50, 500]


@pytest.mark.parametrize("coords, config, words", [
    (np.full((30, 2), np.nan), ClusterConfig(), "NaN"),
    (np.zeros((5, 2)), ClusterConfig(), "fewer than the smallest cluster"),
    (np.zeros((30, 2)), ClusterConfig(space="pixels"), "Unknown cluster space"),
    (np.zeros((30, 2)), ClusterConfig(space="features"), "need the features"),
    (np.zeros((30, 4)), ClusterConfig(), "2-D or 3-D"),
    (np.zeros((30, 2)), ClusterConfig(min_cluster_size=1), "min_cluster_size >= 2"),
    (np.zeros((30, 2)), ClusterConfig(selection="dbscan"), "Unknown HDBSCAN cluster selection"),
])
def test_bad_input_is_one_line(coords, config, words):
    with pytest.raises(PTMError, match=words):
        find_clusters(coords, np.zeros(len(coords), dtype=int), NAMES, config)


@pytest.mark.slow  # importing the pages (streamlit, plotly express) took 20 s on the loaded 2-core machine
def test_labels_are_annotations_and_selection_still_reads_every_point():
    import pandas as pd

    from pages.ui import cluster_views, maps as views

    coords, labels = _blobs()
    result = find_clusters(coords, labels, NAMES, ClusterConfig(min_cluster_size=10))
    frame = pd.DataFrame({"row": np.arange(120), "id": [str(i) for i in range(120)], "class": np.array(NAMES)[labels],
                          "x": coords[:, 0], "y": coords[:, 1]})
    frame = cluster_views.with_cluster_column(frame, result)
    fig = views.map_figure(frame, "cluster", NAMES)
    traces = len(fig.data)
    cluster_views.decorate(fig, result, labels=True, three_d=False)
    assert len(fig.data) == traces == fig.layout.meta["data_traces"]  # no trace added
    texts = [a.text for a in fig.layout.annotations]
    assert sorted(texts) == sorted(f"cluster {c.id + 1}: 100 % {c.classes[0][0]}" for c in result.clusters)
    assert {t.split(": ")[1] for t in texts} == {f"100 % {n}" for n in NAMES}
    noise = [t for t in fig.data if t.name == "no cluster"]
    assert all(t.marker.color == cluster_views.NOISE_COLOUR for t in noise) and len(noise) == (result.n_noise > 0)
    points = [{"curve_number": k, "customdata": [int(r)]} for k, t in enumerate(fig.data) for r, *_ in t.customdata]
    assert views.selected_rows({"selection": {"points": points}}, traces).tolist() == list(range(120))
    # A 3-D map: the labels go into the scene, at each cluster's centre in three coordinates.
    coords3, _ = _blobs(dims=3)
    result3 = find_clusters(coords3, labels, NAMES, ClusterConfig(min_cluster_size=10))
    fig3 = views.map_figure(frame.assign(z=coords3[:, 2]), "class", NAMES)
    cluster_views.decorate(fig3, result3, labels=True, three_d=True)
    assert [(a.x, a.y, a.z) for a in fig3.layout.scene.annotations] == [c.centre for c in result3.clusters]
    assert len(fig3.data) == fig3.layout.meta["data_traces"]

"""Projection engine: methods, 2-D/3-D, subsample + placement, cache, time estimate (UMAP kept to one tiny test)."""
from __future__ import annotations

import numpy as np
import pytest

from ptm_core.base.configs import ProjectionConfig
from ptm_core.base.errors import PTMError
from ptm_core.maps.projection import compute_projection, project
from ptm_core.maps.estimate import estimate_seconds


def blobs(n: int = 60, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5.0, size=(3, dim))
    return (centres[np.arange(n) % 3] + rng.normal(size=(n, dim))).astype(np.float32)


@pytest.mark.parametrize("n_components", [2, 3])
def test_pca_shapes_and_deterministic(n_components):
    x = blobs()
    config = ProjectionConfig(method="pca", n_components=n_components)
    first, second = compute_projection(x, config), compute_projection(x, config)
    assert first.shape == (60, n_components) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("n_components", [2, 3])
def test_tsne_shapes(n_components):
    coords = compute_projection(blobs(40), ProjectionConfig(method="tsne", perplexity=30, n_components=n_components))
    assert coords.shape == (40, n_components) and np.isfinite(coords).all()


def test_tsne_with_pca_pre_reduction():
    coords, meta = project(blobs(40, dim=32), "feat", ProjectionConfig(method="tsne", pca_dims=5))
    assert coords.shape == (40, 2) and not meta["subsampled"] and meta["placement"] == "fit"


@pytest.mark.parametrize("config, message", [
    (ProjectionConfig(method="mds"), "Unknown projection"),
    (ProjectionConfig(method="pca", n_components=4), "2 or 3 dimensions"),
    (ProjectionConfig(method="tsne", perplexity=0), "perplexity"),
    (ProjectionConfig(method="pca", fit_max=2), "fit_max"),
])
def test_bad_settings_raise_one_line_errors(config, message):
    with pytest.raises(PTMError, match=message):
        compute_projection(blobs(), config)


def test_too_few_points():
    with pytest.raises(PTMError, match="at least 4"):
        compute_projection(blobs()[:3], ProjectionConfig(method="pca"))


def test_subsample_then_transform_for_pca():
    x = blobs(50)
    coords, meta = project(x, "feat", ProjectionConfig(method="pca", fit_max=20))
    assert meta["subsampled"] and meta["n_fit"] == 20 and meta["n_points"] == 50 and meta["placement"] == "transform"
    assert coords.shape == (50, 2) and np.isfinite(coords).all()
    # Every point, fitted or placed, lands near its blob: PCA of the subsample still separates the blobs.
    centres = np.array([coords[np.arange(50) % 3 == c].mean(axis=0) for c in range(3)])
    nearest = np.argmin(((coords[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest == np.arange(50) % 3).mean() > 0.95


def test_subsample_then_knn_placement_for_tsne():
    x = blobs(60)
    coords, meta = project(x, "feat", ProjectionConfig(method="tsne", fit_max=30, perplexity=5))
    assert meta["subsampled"] and meta["n_fit"] == 30 and meta["placement"] == "knn-mean"
    assert coords.shape == (60, 2) and np.isfinite(coords).all()
    placed = np.all(coords != 0, axis=1)
    assert placed.all()  # no point left at the origin placeholder


def test_cache_round_trip():
    x, config = blobs(), ProjectionConfig(method="pca", n_components=3)
    first, meta = project(x, "feat", config)
    second, meta2 = project(x, "feat", config)
    assert not meta["cache_hit"] and meta2["cache_hit"]
    np.testing.assert_array_equal(first, second)
    assert meta2["n_components"] == 3 and meta2["config"] == config.to_dict()
    assert not project(x, "other-features", config)[1]["cache_hit"]
    assert not project(x, "feat", ProjectionConfig(method="pca"))[1]["cache_hit"]


@pytest.mark.parametrize("config", [ProjectionConfig(), ProjectionConfig(reproducible=False),
                                    ProjectionConfig(method="pca"), ProjectionConfig(method="tsne"),
                                    ProjectionConfig(pca_dims=50)])
def test_estimate_is_monotone_in_n(config):
    times = [estimate_seconds(n, 1280, config, include_compile=False) for n in (100, 1000, 5000, 20_000, 100_000)]
    assert all(t > 0 for t in times) and times == sorted(times)


def test_estimate_reflects_pre_reduction_and_compile():
    umap = ProjectionConfig()
    assert estimate_seconds(5000, 1280, ProjectionConfig(pca_dims=50), False) < estimate_seconds(5000, 1280, umap, False)
    assert estimate_seconds(5000, 1280, umap, True) >= estimate_seconds(5000, 1280, umap, False)


def test_umap_reproducible_gives_identical_maps():
    # The only UMAP test: each new process pays numba compilation, so it stays tiny.
    x = blobs(40, dim=8)
    config = ProjectionConfig(n_neighbors=5)
    first, second = compute_projection(x, config), compute_projection(x, config)
    assert first.shape == (40, 2)
    np.testing.assert_array_equal(first, second)


def test_layout_epochs_are_a_setting_and_drive_the_estimate():
    few, many = ProjectionConfig(n_epochs=100), ProjectionConfig(n_epochs=500)
    assert few.key() != many.key()
    assert estimate_seconds(5000, 1280, few, include_compile=False) < estimate_seconds(5000, 1280, many, include_compile=False)
    with pytest.raises(PTMError, match="at least 1 layout epoch"):
        compute_projection(np.zeros((10, 3), dtype=np.float32), ProjectionConfig(n_epochs=0))


def test_unknown_distance_is_one_line():
    with pytest.raises(PTMError, match="Unknown distance 'hamming'"):
        compute_projection(np.zeros((10, 3), dtype=np.float32), ProjectionConfig(metric="hamming"))


def test_a_metric_not_yet_compiled_adds_to_the_estimate(monkeypatch):
    from ptm_core.maps import projection
    from ptm_core.maps import estimate as projection_estimate

    monkeypatch.setattr(projection, "_compiled_paths", {("euclidean", True)})
    monkeypatch.setattr(projection, "umap_ready", lambda: True)
    warm = estimate_seconds(1000, 64, ProjectionConfig())
    cosine = estimate_seconds(1000, 64, ProjectionConfig(metric="cosine"))
    assert cosine == pytest.approx(warm + projection_estimate.UMAP_VARIANT_COMPILE_SECONDS)


def test_exact_knn_graph_for_whole_fits_of_blas_metrics():
    from ptm_core.maps import projection
    from ptm_core.maps import estimate as projection_estimate

    assert projection.exact_graph(ProjectionConfig(), 5000, n_rest=0)
    assert projection.exact_graph(ProjectionConfig(metric="cosine"), 5000, n_rest=0)
    assert not projection.exact_graph(ProjectionConfig(), 5000, n_rest=5)  # placing the rest needs NN-descent
    assert not projection.exact_graph(ProjectionConfig(metric="manhattan"), 5000, n_rest=0)
    assert not projection.exact_graph(ProjectionConfig(), projection.EXACT_KNN_MAX + 1, n_rest=0)
    indices, distances, index = projection._exact_knn(blobs(30), ProjectionConfig(n_neighbors=5))
    assert indices.shape == distances.shape == (30, 5) and index is None
    np.testing.assert_array_equal(indices[:, 0], np.arange(30))  # umap-learn expects each point first
    assert np.all(np.diff(distances, axis=1) >= 0) and np.all(distances[:, 0] == 0)
    from sklearn.neighbors import NearestNeighbors

    x = blobs(30)
    for metric in ("euclidean", "cosine"):
        ours_i, ours_d, _ = projection._exact_knn(x, ProjectionConfig(n_neighbors=5, metric=metric))
        ref_d, ref_i = NearestNeighbors(n_neighbors=5, metric=metric).fit(x).kneighbors(x)
        np.testing.assert_array_equal(np.sort(ours_i, 1), np.sort(ref_i, 1))
        np.testing.assert_allclose(ours_d, ref_d, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("config", [ProjectionConfig(method="pca", fit_max=20),
                                    ProjectionConfig(method="tsne", fit_max=30, perplexity=5, pca_dims=8)])
def test_placing_in_chunks_reports_progress_and_matches_one_pass(monkeypatch, config):
    from ptm_core.maps import projection

    x = blobs(90)
    one_pass = compute_projection(x, config)
    monkeypatch.setattr(projection, "PLACE_CHUNK", 7)
    seen = []
    coords, meta = projection._compute(x, config, progress=lambda done, total: seen.append((done, total)))
    n_rest = 90 - meta["n_fit"]
    assert seen[0] == (0, n_rest) and seen[-1] == (n_rest, n_rest) and len(seen) == 1 + -(-n_rest // 7)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    np.testing.assert_allclose(coords, one_pass, rtol=1e-5, atol=1e-5)


def test_placing_stops_between_chunks_when_cancelled(monkeypatch):
    from ptm_core.maps import projection
    from ptm_core.base.errors import Cancelled

    monkeypatch.setattr(projection, "PLACE_CHUNK", 10)
    seen = []
    with pytest.raises(Cancelled):
        projection._compute(blobs(90), ProjectionConfig(method="pca", fit_max=20),
                            progress=lambda done, total: seen.append(done), cancelled=lambda: len(seen) >= 3)
    assert seen == [0, 10, 20]


def test_fitted_mask_is_the_seeded_fit_sample():
    from ptm_core.maps.projection import fitted_mask

    config = ProjectionConfig(method="pca", fit_max=20)
    mask = fitted_mask(50, config)
    assert mask.sum() == 20 and project(blobs(50), "feat", config)[1]["n_fit"] == 20
    np.testing.assert_array_equal(mask, fitted_mask(50, config))
    assert fitted_mask(10, config).all()  # under the limit: every point is fitted


def test_estimate_splits_into_fit_and_placement():
    from ptm_core.maps.estimate import place_seconds

    config = ProjectionConfig(pca_dims=50)
    assert place_seconds(5000, 1280, config) == 0
    assert 0 < place_seconds(1_000_000, 1280, config) < estimate_seconds(1_000_000, 1280, config, False)


def test_the_map_job_says_how_many_points_it_has_placed(monkeypatch, tmp_path):
    from ptm_core.maps import projection
    from ptm_core.flows.explore import run_map
    from ptm_core.features.featureset import FeatureSet
    from ptm_core.runs.jobs import Job, JobContext

    monkeypatch.setenv("PTM_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(projection, "PLACE_CHUNK", 25)
    x = blobs(120)
    fs = FeatureSet(x, np.arange(120) % 3, ["a", "b", "c"], [str(i) for i in range(120)], "placing")
    job = Job("key", "title")
    messages = []
    ctx = JobContext(job)
    monkeypatch.setattr(ctx, "progress",
                        lambda fraction, message="", step_end=1.0: messages.append((fraction, message)))
    result = run_map(fs, ProjectionConfig(method="pca", fit_max=20), ctx)
    placing = [(f, m) for f, m in messages if m.startswith("placing")]
    assert placing[-1][1] == "placing 100 / 100 points" and len(placing) == 5  # 0, then 4 chunks of 25
    assert [f for f, _ in placing] == sorted(f for f, _ in placing) and placing[-1][0] == pytest.approx(0.95)
    assert any("fitted on 20, placing the other 100" in line for line in job.log)
    assert result.meta["subsampled"] and result.coords.shape == (120, 2)

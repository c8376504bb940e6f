"""Two backbones compared point by point, and the explore flow's two jobs (features + probe, then the map)."""
import dataclasses

import numpy as np
import pytest

from ptm_core.flows.compare import CompareRequest, Comparison, compare_neighbourhoods, run_compare
from ptm_core.base.configs import ProbeConfig, ProjectionConfig
from ptm_core.evals.versus import probe_versus
from ptm_core.base.errors import PTMError
from ptm_core.flows.explore import ExploreRequest, map_key, run_explore, run_map
from ptm_core.features.featureset import FeatureSet
from ptm_core.runs.jobs import DONE, JobManager
from ptm_core.flows.lab import job_key
from ptm_core.maps.neighbours import neighbour_agreement
from ptm_core.probes.linear import cached_linear_probe


def _feature_set(features, labels, key="k") -> FeatureSet:
    return FeatureSet(np.asarray(features, dtype=np.float32), np.asarray(labels), ["a", "b"],
                      [f"img{i}" for i in range(len(labels))], key)


def test_same_class_share_and_agreement_on_a_hand_example():
    # Two tight pairs per class in A; in B the pairs are swapped across classes.
    a = _feature_set([[1, 0], [1, 0.01], [0, 1], [0.01, 1]], [0, 0, 1, 1])
    b = _feature_set([[1, 0], [0, 1], [1, 0.01], [0.01, 1]], [0, 0, 1, 1])
    c = compare_neighbourhoods(a, b, k=1)
    assert c.same_class_a.tolist() == [1, 1, 1, 1]
    assert c.same_class_b.tolist() == [0, 0, 0, 0]
    assert c.agreement.tolist() == [0, 0, 0, 0]
    same = compare_neighbourhoods(a, a, k=1)
    assert same.agreement.tolist() == [1, 1, 1, 1]


def test_agreement_matches_the_neighbours_module_and_disagreement_order():
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(80, 8)), np.arange(80) % 2
    y = x.copy()
    y[:10] = rng.normal(size=(10, 8))  # ten images moved: their neighbourhoods change most
    c = compare_neighbourhoods(_feature_set(x, labels), _feature_set(y, labels), k=5)
    assert np.allclose(c.agreement, neighbour_agreement(x.astype(np.float32), y.astype(np.float32), k=5))
    assert set(c.most_disagreeing(10)) <= set(range(10)) | set(np.flatnonzero(c.agreement < 0.5))
    assert c.agreement[:10].mean() < c.agreement[10:].mean()


def test_most_disagreeing_breaks_ties_by_the_same_class_gap_never_by_row():
    agreement = np.array([0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.1], np.float32)
    same_a = np.array([0.9, 0.5, 1.0, 0.2, 0.5, 0.5, 1.0], np.float32)
    same_b = np.array([0.1, 0.5, 0.0, 0.2, 0.5, 0.5, 0.0], np.float32)
    c = Comparison(agreement, same_a, same_b, k=5)
    order = c.most_disagreeing(7)
    assert list(order[:2]) == [2, 0]  # agreement 0, the largest gaps first
    assert set(order[2:5]) == {1, 4, 5} and list(order[5:]) == [6, 3]
    # Full ties (rows 1, 4, 5) follow a seeded shuffle: reproducible, and not row order for every seed.
    assert np.array_equal(order, c.most_disagreeing(7))
    assert any(list(c.most_disagreeing(7, seed=s)[2:5]) != [1, 4, 5] for s in range(5))


def test_different_images_are_refused():
    a = _feature_set(np.eye(4), [0, 0, 1, 1])
    b = FeatureSet(a.features, a.labels, a.class_names, ["x", "y", "z", "w"], "other")
    with pytest.raises(PTMError, match="not of the same images"):
        compare_neighbourhoods(a, b)


def test_compare_refuses_two_different_sets_of_images(tiny):
    with pytest.raises(PTMError, match="same images"):
        CompareRequest(tiny.source(0), tiny.source(0, limit=tiny.limit + 10))


def test_one_source_key_rule_for_every_flow(tiny):
    """Layer and size change the features, so they change every flow's key; device and batch size do not."""
    source = tiny.source()
    deeper = dataclasses.replace(source, extraction=dataclasses.replace(source.extraction, layer="stage3"))
    faster = dataclasses.replace(source, extraction=dataclasses.replace(source.extraction, batch_size=8, device="auto"))
    assert source.key() != deeper.key() and source.key() == faster.key()
    assert ExploreRequest(source).key() != ExploreRequest(deeper).key()
    assert CompareRequest(source, source).key() != CompareRequest(source, deeper).key()
    assert job_key("probes", source, []) != job_key("probes", deeper, [])


def test_compare_job_extracts_both_sides_of_the_same_images(tiny, wait_until, one_torch_thread):
    request = CompareRequest(tiny.source(0), tiny.source(1), k=5)
    assert request.key() != CompareRequest(tiny.source(0), tiny.source(2), k=5).key()
    job = JobManager().submit(request.key(), request.title(), lambda ctx: run_compare(request, ctx))
    assert wait_until(lambda: job.finished is not None, 120) and job.status == DONE, job.error
    result = job.result
    assert result.a.ids == result.b.ids and len(result.a.ids) == tiny.limit
    assert result.a.key != result.b.key
    assert result.comparison.agreement.shape == (tiny.limit,) and 0 <= result.comparison.agreement.min() <= 1
    assert job.metrics["k"] == 5 and "mean_agreement" in job.metrics
    # The page's probe verdict: `versus`'s probe and McNemar's test on the same images, A first.
    versus = probe_versus(result.a, result.b, ProbeConfig(seed=request.a.split_seed))
    assert result.probe_test == versus.test and job.metrics["probe"] == versus.test.to_dict()
    assert [p.test_accuracy for p in result.probes] == [versus.a.test_accuracy, versus.b.test_accuracy]


def test_explore_then_map_jobs(tiny, wait_until, one_torch_thread):
    manager = JobManager()
    request = ExploreRequest(tiny.source())
    explore = manager.submit(request.key(), request.title(), lambda ctx: run_explore(request, ctx))
    assert wait_until(lambda: explore.finished is not None, 120) and explore.status == DONE, explore.error
    fs, probe = explore.result.features, explore.result.probe
    # The probe colours every image, and its test columns are the all-image columns at the test rows.
    assert probe.all_predictions.shape == (tiny.limit,) and np.all((0 < probe.all_confidence) & (probe.all_confidence <= 1))
    assert np.array_equal(probe.all_predictions[probe.test_indices], probe.predictions)
    again = cached_linear_probe(fs.features, fs.labels, fs.key, request.probe)  # read back from disk
    assert np.array_equal(again.all_predictions, probe.all_predictions)
    config = ProjectionConfig(method="tsne", n_components=3)
    job = manager.submit(map_key(fs.key, config), "map", lambda ctx: run_map(fs, config, ctx), lane="map")
    assert wait_until(lambda: job.finished is not None, 120) and job.status == DONE, job.error
    assert job.result.coords.shape == (tiny.limit, 3) and 0 <= job.result.faithfulness["trustworthiness"] <= 1
    assert map_key(fs.key, config) != map_key(fs.key, ProjectionConfig(method="tsne"))
    assert any("estimated" in line for line in job.log)

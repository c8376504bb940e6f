"""The tour's steps on a tiny plan: what each computes agrees with the engine's own functions."""
import numpy as np
import pytest

from ptm_core.flows import tour, tour_clock
from ptm_core.flows.tour_costs import dataset_size, estimate_step_seconds, step_phases
from ptm_core.evals.baselines import pixel_features
from ptm_core.base.configs import BackboneConfig, DatasetConfig, FinetuneConfig, ProbeConfig, ProjectionConfig
from ptm_core.data import load_dataset
from ptm_core.data.synthetic import render_shapes
from ptm_core.base.errors import PTMError
from ptm_core.base.stats import accuracy_interval, draws_test, paired_test
from ptm_core.features.extraction import extract
from ptm_core.runs.jobs import Job, JobContext
from ptm_core.probes.linear import run_linear_probe


def tiny_plan(tiny) -> tour.TourPlan:
    """Every step in seconds: a tiny random-init model at 32 px, a hundred images, PCA maps."""
    return tour.TourPlan(shapes=DatasetConfig("shapes:n=96,classes=4,size=32,clutter=1"),
                         digits=DatasetConfig("digits", limit=100), backbone=BackboneConfig(tiny.model, "random", 3),
                         image_size=32, projection=ProjectionConfig(method="pca"), ks=(1, 2), seeds=(0, 1),
                         finetune=FinetuneConfig(mode="lp-ft", epochs=1, image_size=32, augment=False,
                                                 val_every_steps=1, batch_size=16),
                         finetune_limit=100, lesson=DatasetConfig("digits", limit=100), lesson_sizes=(5, 10, 20),
                         zoo=(BackboneConfig(tiny.model, "random", 4), BackboneConfig(tiny.model, "random", 5)))


@pytest.fixture()
def plan(tiny):
    return tiny_plan(tiny)


def test_cluttered_shapes_are_seeded_bounded_and_different_from_plain_ones():
    a, labels = render_shapes(16, 8, 48, seed=1, clutter=2)
    b, _ = render_shapes(16, 8, 48, seed=1, clutter=2)
    plain, plain_labels = render_shapes(16, 8, 48, seed=1)
    assert np.array_equal(a, b) and np.array_equal(labels, plain_labels)
    assert not np.array_equal(a, plain)
    assert a.shape == (16, 48, 48, 3) and a.dtype == np.uint8
    with pytest.raises(PTMError, match="clutter must be between 0 and 4"):
        load_dataset(DatasetConfig("shapes:n=20,classes=2,clutter=5"))


def _phases_entered(job: Job, plan, step: str) -> None:
    """The step entered exactly the phases its time estimate lists (tour_costs.step_phases), one per stage."""
    assert len(job.log) == len(step_phases(plan, step)), job.log


def test_neighbours_step_finds_each_querys_nearest_images(plan):
    job = Job("key", "title")
    result = tour.run_neighbours(plan, JobContext(job))
    _phases_entered(job, plan, "neighbours")
    features = extract(plan.shapes, plan.backbone, plan.source(plan.shapes).extraction).features
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    for query, neighbours, similarities in zip(result.queries, result.neighbours, result.similarities):
        ranked = [i for i in np.argsort(-(unit @ unit[query]), kind="stable") if i != query][:plan.neighbours]
        assert set(neighbours) == set(ranked)
        assert similarities == sorted(similarities, reverse=True)
    assert len({result.labels[q] for q in result.queries}) == len(result.queries)  # one query per class
    assert len(result.vectors[0]) == tour.VECTOR_SHOWN and result.feature_dim == features.shape[1]


@pytest.mark.slow
def test_contrast_numbers_are_the_engines_probe_on_each_feature_kind(plan):
    job = Job("key", "title")
    result = tour.run_contrast(plan, plan.shapes, JobContext(job))
    _phases_entered(job, plan, "shapes")
    assert [r.kind for r in result.rows] == list(tour.KINDS)
    data = load_dataset(plan.shapes)
    expected = {"pixels": run_linear_probe(pixel_features(data), data.labels, ProbeConfig()).test_accuracy}
    for kind in ("random", "pretrained"):
        source = plan.source(plan.shapes, kind)
        fs = extract(source.dataset, source.backbone, source.extraction)
        expected[kind] = run_linear_probe(fs.features, fs.labels, ProbeConfig()).test_accuracy
    assert {r.kind: r.accuracy for r in result.rows} == pytest.approx(expected)
    assert all(r.coords.shape == (96, 2) for r in result.rows)
    # The captions' tests: pretrained against each other kind, image by image on the split they share.
    pretrained = run_linear_probe(fs.features, fs.labels, ProbeConfig())
    for kind, features in (("random", extract(plan.shapes, plan.source(plan.shapes, "random").backbone,
                                              plan.source(plan.shapes).extraction).features),
                           ("pixels", pixel_features(data))):
        other = run_linear_probe(features, data.labels, ProbeConfig())
        assert result.tests[kind] == paired_test(data.labels[other.test_indices], pretrained.predictions,
                                                 other.predictions)
        assert result.tests[kind].a_accuracy == pytest.approx(result.row("pretrained").accuracy)
    assert all(row["ci95"] == list(accuracy_interval(row["accuracy"], row["n_test"])) for row in job.metrics["rows"])
    assert [row["kind"] for row in job.metrics["rows"]] == list(tour.KINDS)  # shown while the maps still run
    assert "random init, seed 3" in result.row("random").produced_by
    assert result.row("pixels").produced_by.startswith("32×32 grey pixels of shapes:n=96")


@pytest.mark.slow
def test_efficiency_step_has_every_budget_for_both_kinds_on_both_sets(plan):
    job = Job("key", "title")
    points = tour.run_efficiency(plan, JobContext(job))
    _phases_entered(job, plan, "efficiency")
    assert {(p.dataset, p.kind, p.k) for p in points} == {
        (d.spec, kind, k) for d in (plan.shapes, plan.digits) for kind in ("pretrained", "pixels") for k in plan.ks}
    assert all(len(p.accuracies) == len(plan.seeds) and 0 <= p.mean <= 1 for p in points)


@pytest.mark.slow
def test_finetune_step_reports_the_probe_it_started_from(plan):
    import dataclasses

    from ptm_core.base.configs import ExtractionConfig
    from ptm_core.finetune.finetuning import finetune_split
    from ptm_core.probes.linear import LinearProbe

    job = Job("key", "title")
    result = tour.run_frozen_vs_adapted(plan, JobContext(job))
    _phases_entered(job, plan, "finetune")
    source = plan.finetune_source()
    config = dataclasses.replace(plan.finetune, split_seed=source.split_seed)
    labels = load_dataset(source.dataset).labels
    fit, val, test = finetune_split(labels, config)
    assert (result.n_train, result.n_val, result.n_test) == (len(fit), len(val), len(test)) == (64, 16, 20)
    # The page's "Linear probe (frozen)": the engine's probe on the frozen features of the same train images.
    frozen = extract(source.dataset, source.backbone, ExtractionConfig(config.image_size, config.batch_size, "auto",
                                                                       precision=config.precision))
    probe = LinearProbe(random_state=config.split_seed, c_rule="best").fit(frozen.features[fit], frozen.labels[fit])
    assert result.lp_test_accuracy == probe.score(frozen.features[test], frozen.labels[test])
    # The fine-tuned number beside it: its own predictions on the same test images.
    np.testing.assert_array_equal(result.test_indices, test)
    assert result.test_accuracy == np.mean(result.predictions == labels[test])
    # The caption's test: LP-FT against that probe, image by image.
    frozen_predictions = probe.predict(frozen.features[test])
    assert tour.adapted_test(result) == paired_test(labels[test], result.predictions, frozen_predictions)
    # The curve the page draws from the job's metrics: a validation after every step (val_every_steps=1).
    shown = job.metrics["val_curve"]
    assert shown == [{k: r[k] for k in ("epoch", "step", "val_accuracy")} for r in result.val_curve]
    assert [r["step"] for r in shown if r["step"]] == list(range(1, len(result.train_curve) + 1))


def test_estimates_exist_for_every_step_and_grow_with_the_data(plan):
    small = {s: estimate_step_seconds(plan, s) for s in tour.TOUR_STEPS}
    default = {s: estimate_step_seconds(tour.TourPlan(), s) for s in small}
    assert all(0 < small[s] < default[s] for s in small)
    assert dataset_size(tour.TourPlan().shapes) == 1000 and dataset_size(tour.TourPlan().digits) == 2000
    assert dataset_size(tour.TourPlan().lesson) == 5000


def test_every_step_has_one_job_in_the_order_run_every_step_queues_them(plan):
    specs = tour_clock.step_specs(plan)
    assert [s.key for s in specs] == [tour_clock.step_spec(plan, step).key for step in tour.TOUR_STEPS]
    assert tour.TOUR_STEPS == ("neighbours", "shapes", "digits", "efficiency", "finetune", "lesson", "zoo")
    assert [s.title.split(":")[0] for s in specs] == [f"tour {n}" for n in range(1, 8)]
    assert len({s.key for s in specs}) == len(specs) and all(s.kind == "tour" for s in specs)
    assert [s.key for s in tour_clock.step_specs(plan)] == [s.key for s in specs]  # stable across calls
    assert specs[0].key != tour_clock.step_specs(tour.TourPlan())[0].key  # another plan, other jobs
    # The keys of earlier versions, so a restarted server finds their runs.
    assert specs[1].key == plan.step_key("contrast", plan.shapes.key())
    assert specs[4].key == plan.step_key("finetune")
    with pytest.raises(ValueError, match="unknown tour step"):
        tour_clock.step_spec(plan, "nonsense")


def test_every_step_but_the_fine_tune_is_restored_after_a_restart(plan):
    restored = {step for step in tour.TOUR_STEPS if tour_clock.step_spec(plan, step).restore}
    assert restored == set(tour.RESTORED_STEPS) == set(tour.TOUR_STEPS) - {"finetune"}


@pytest.mark.slow
def test_lesson_scores_the_same_two_probes_on_ever_more_of_the_same_test_images(plan):
    job = Job("key", "title")
    result = tour.run_lesson(plan, JobContext(job))
    _phases_entered(job, plan, "lesson")
    assert [size.n for size in result.sizes] == [5, 10, 20]  # 20: every test image of 100 digits
    probes = {}
    for kind in ("pretrained", "random"):
        source = plan.source(plan.lesson, kind)
        fs = extract(source.dataset, source.backbone, source.extraction)
        probes[kind] = run_linear_probe(fs.features, fs.labels, ProbeConfig())
    truth = fs.labels[probes["pretrained"].test_indices]
    order = np.random.default_rng(plan.lesson.seed).permutation(len(truth))
    for size in result.sizes:
        chosen = order[:size.n]  # nested: each size's images include the smaller one's
        assert size.test == paired_test(truth[chosen], probes["pretrained"].predictions[chosen],
                                        probes["random"].predictions[chosen])
    last = result.sizes[-1].test
    assert last.a_accuracy == pytest.approx(probes["pretrained"].test_accuracy)
    assert last.b_accuracy == pytest.approx(probes["random"].test_accuracy)
    assert "random init, seed 3" in result.produced_by["random"] and result.n_train == 80


def test_efficiency_claim_tests_every_budget_against_pixels_with_as_many_labels():
    def point(kind, k, accuracies):
        return tour.EfficiencyPoint("d", kind, "src", k, float(np.mean(accuracies)), float(np.std(accuracies)),
                                    accuracies)

    # The MNIST case: pixels lead with few labels, pretrained with the most.
    draws = {("pixels", 1): [0.50, 0.52, 0.51, 0.49, 0.50], ("pretrained", 1): [0.40, 0.41, 0.42, 0.40, 0.39],
             ("pixels", 5): [0.70, 0.72, 0.71, 0.69, 0.70], ("pretrained", 5): [0.60, 0.75, 0.80, 0.66, 0.72],
             ("pixels", 25): [0.80, 0.81, 0.80, 0.79, 0.80], ("pretrained", 25): [0.85, 0.86, 0.84, 0.85, 0.86]}
    points = [point(kind, k, values) for (kind, k), values in draws.items()] + [point("other", 2, [0.1, 0.2])]
    claim = tour.efficiency_claim(points, "d")
    assert [k for k, _test in claim.tests] == [1, 5, 25]  # every budget both kinds have
    for k, test in claim.tests:
        assert test == draws_test(draws[("pretrained", k)], draws[("pixels", k)])
    assert (claim.ks("b"), claim.ks("tie"), claim.ks("a")) == ([1], [5], [25])


@pytest.mark.slow
def test_zoo_step_probes_every_backbone_and_tests_each_against_step_2s(plan):
    job = Job("key", "title")
    result = tour.run_zoo(plan, JobContext(job))
    _phases_entered(job, plan, "zoo")
    assert [row.backbone for row in result.rows] == [plan.backbone, *plan.zoo]  # step 2's first
    data = load_dataset(plan.shapes)
    probes = {}  # by init seed: 3 (step 2's), 4, 5
    for backbone in (plan.backbone, *plan.zoo):
        fs = extract(plan.shapes, backbone, plan.source(plan.shapes).extraction)
        probes[backbone.seed] = run_linear_probe(fs.features, fs.labels, ProbeConfig())
    reference = probes[plan.backbone.seed]
    assert result.rows[0].test is None and all(row.test is not None for row in result.rows[1:])
    for row in result.rows:
        probe = probes[row.backbone.seed]
        assert row.accuracy == pytest.approx(probe.test_accuracy)
        assert row.ci95 == accuracy_interval(row.accuracy, row.n_test)
        if row.test is not None:  # against step 2's, image by image on the split they share
            assert row.test == paired_test(data.labels[reference.test_indices], probe.predictions, reference.predictions)


def test_the_default_zoo_is_every_bundled_backbone():
    from ptm_core.models.bundled import bundled_names

    plan = tour.TourPlan()
    assert [b.name for b in plan.zoo] == bundled_names() and {b.weights for b in plan.zoo} == {"bundled"}
    assert plan.backbone in plan.zoo

"""Where it looks (ptm_core.evals.cam): class activation maps on the backbone the features came from.

Fast tests run a tiny random-weight model on digits at 64 px; the sanity check of Adebayo et al. ("Sanity Checks
for Saliency Maps", NeurIPS 2018) runs the bundled lite0 (real ImageNet weights) on skimage's cat at 224 px.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from ptm_core.base.configs import BackboneConfig, ProbeConfig
from ptm_core.base.errors import PTMError
from ptm_core.data import load_dataset
from ptm_core.evals import cam
from ptm_core.features.extraction import extract
from ptm_core.probes.linear import run_linear_probe

SIZE = 64


@pytest.fixture(scope="module")
def explored(tiny):
    """Digits through a tiny random-weight model at 64 px, its features and a probe on them."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as folder:  # the module-scoped fixture outlives each test's data dir
        old = os.environ.get("PTM_DATA_DIR")
        os.environ["PTM_DATA_DIR"] = folder
        try:
            setup = dataclasses.replace(tiny, image_size=SIZE, limit=80)
            fs = extract(setup.data(), setup.backbone(), setup.extraction())
            dataset = load_dataset(setup.data())
        finally:
            if old is None:
                os.environ.pop("PTM_DATA_DIR", None)
            else:
                os.environ["PTM_DATA_DIR"] = old
    probe = run_linear_probe(fs.features, fs.labels, ProbeConfig(solver="sklearn", Cs=(0.1, 1.0)), device="cpu")
    return setup, dataset, fs, probe


@pytest.mark.parametrize("method", ["gradcam", "eigencam"])
def test_probe_map_is_a_unit_heat_map_at_the_input_size(explored, method):
    setup, dataset, fs, probe = explored
    result = cam.feature_cam(dataset, fs, setup.backbone(), 3, cam.CamConfig(method=method), probe=probe,
                             probe_config=ProbeConfig(solver="sklearn", Cs=(0.1, 1.0)))
    assert result.heat.shape == (SIZE, SIZE) and result.heat.dtype == np.float32
    assert 0.0 <= result.heat.min() and result.heat.max() <= 1.0
    assert result.overlay.shape == (SIZE, SIZE, 3) and result.overlay.dtype == np.uint8
    assert result.image.shape == (SIZE, SIZE, 3)
    assert result.predicted == probe.all_predictions[3]
    assert result.probability == pytest.approx(float(probe.all_confidence[3]))
    assert "the probe's predicted class" in result.describe_target()


def test_probe_head_reproduces_the_probe_predictions(explored):
    setup, dataset, fs, probe = explored
    head, classes = cam.probe_head(fs, probe, ProbeConfig(solver="sklearn", Cs=(0.1, 1.0)))
    with torch.no_grad():
        logits = head(torch.as_tensor(fs.features))
    predicted = classes[logits.argmax(1).numpy()]
    # The refit is sklearn's on the probe's train split at its C: the probe (also sklearn here) predicts the same.
    assert np.mean(predicted == probe.all_predictions) > 0.97


def test_similarity_map_of_a_neighbour_pair(explored):
    setup, dataset, fs, _ = explored
    result = cam.feature_cam(dataset, fs, setup.backbone(), 0, cam.CamConfig(target="similarity"), other=5)
    assert result.heat.shape == (SIZE, SIZE) and 0 <= result.heat.min() <= result.heat.max() <= 1
    a, b = fs.features[0], fs.features[5]
    assert result.similarity == pytest.approx(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), abs=1e-5)
    assert result.describe_target().startswith("similarity to neighbour #5")


def test_bad_input_is_one_line(explored):
    setup, dataset, fs, probe = explored
    cases = [(dict(row=len(fs.ids)), cam.CamConfig(), "out of range"),
             (dict(row=0), cam.CamConfig(method="lime"), "Unknown CAM method"),
             (dict(row=0, other=10_000), cam.CamConfig(target="similarity"), "out of range"),
             (dict(row=0), cam.CamConfig(target="similarity"), "needs a second image")]
    for where, config, words in cases:
        with pytest.raises(PTMError, match=words) as caught:
            cam.feature_cam(dataset, fs, setup.backbone(), config=config, probe=probe, **where)
        assert "\n" not in str(caught.value)


def test_hub_weights_offline_are_one_line(explored, monkeypatch):
    setup, dataset, fs, probe = explored
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cam.cam_backbone.cache_clear()
    uncached = BackboneConfig("resnet50.a1_in1k", "hub")  # not bundled, and not in this machine's hub cache
    fs_meta = dataclasses.replace(fs, meta=dict(fs.meta, backbone=uncached.name))
    with pytest.raises(PTMError) as caught:
        cam.feature_cam(dataset, fs_meta, uncached, 0, probe=probe)
    assert "\n" not in str(caught.value)


def test_layer_is_the_one_the_features_pool(tiny):
    from ptm_core.models.weights import load_backbone

    model = load_backbone(BackboneConfig("tf_efficientnet_lite0", "random", 0)).model
    name, layer, grid = cam.target_layer(model, (3, SIZE, SIZE))
    assert name == "bn2" and layer is model.bn2 and grid == (2, 2)


def _chelsea_heat(model, column: int) -> np.ndarray:
    from skimage import data

    transform = cam.preprocess(model, 224)
    batch, _ = cam.model_input(transform, Image.fromarray(data.chelsea()))
    _, layer, _ = cam.target_layer(model, batch.shape[1:])
    return cam.run_cam(model, layer, batch, cam.class_target(column), "gradcam", seed=0), batch


@pytest.mark.slow
def test_sanity_check_randomised_weights_change_the_map():
    """Adebayo et al. (2018): a map that survives randomising the weights explains the image, not the model.
    Full randomisation: lite0 re-initialised (timm's init, seed 0); Grad-CAM for the trained model's top class."""
    from scipy.stats import spearmanr

    from ptm_core.models.weights import load_backbone

    trained = load_backbone(BackboneConfig("tf_efficientnet_lite0", "bundled")).model
    randomised = load_backbone(BackboneConfig("tf_efficientnet_lite0", "random", 0)).model
    trained_heat, batch = _chelsea_heat(trained, 282)
    with torch.no_grad():
        top = int(trained(batch).argmax())
    assert top in (281, 282, 285)  # tabby, tiger cat, Egyptian cat: lite0 sees a cat
    random_heat, _ = _chelsea_heat(randomised, top)
    assert trained_heat.shape == random_heat.shape == (224, 224)
    rho = spearmanr(trained_heat.ravel(), random_heat.ravel()).statistic
    assert rho < 0.5, f"rank correlation {rho:.3f}: the map barely changed with random weights"
    again, _ = _chelsea_heat(trained, 282)  # and the trained map itself is stable: the check can fail
    assert spearmanr(trained_heat.ravel(), again.ravel()).statistic > 0.99


def test_embedder_gives_the_extracted_features(explored):
    """The map differentiates the features the app shows: the embedder on the extraction's input is the row."""
    setup, dataset, fs, _ = explored
    model = cam.cam_backbone(setup.backbone()).model
    transform = cam.preprocess(model, SIZE)
    batch, _ = cam.model_input(transform, dataset.image(cam.dataset_row(dataset, fs, 7)))
    with torch.no_grad():
        row = cam.Embedder(model)(batch)[0].numpy()
    np.testing.assert_allclose(row, fs.features[7], rtol=1e-3, atol=1e-4)


def test_flow_draws_from_the_explorers_result_and_keeps_the_map(explored):
    from ptm_core.base.configs import Source
    from ptm_core.flows import ExploreRequest, ExploreResult, where_it_looks

    setup, dataset, fs, probe = explored
    request = ExploreRequest(Source(setup.data(), setup.backbone(), setup.extraction()),
                             ProbeConfig(solver="sklearn", Cs=(0.1, 1.0)))
    result = ExploreResult(request, fs, probe)
    first = where_it_looks(result, 2, dataset=dataset)
    assert first.target == "probe" and first.predicted == probe.all_predictions[2] and first.image_size == SIZE
    assert where_it_looks(result, 2, dataset=dataset) is first  # kept: no second map
    pair = where_it_looks(result, 2, "eigencam", other=4, dataset=dataset)
    assert pair.target == "similarity" and pair.other == 4 and pair.method == "EigenCAM"

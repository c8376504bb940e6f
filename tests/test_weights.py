"""Weight sources: bundled (real ImageNet weights), random, local checkpoint files and the hub."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from ptm_core.base.configs import BackboneConfig
from ptm_core.base.errors import PTMError
from ptm_core.models.weights import load_backbone


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --------------------------------------------------------------------------- bundled

@pytest.fixture(scope="module")
def bundled_classifier():
    loaded = load_backbone(BackboneConfig("tf_efficientnet_lite0", "bundled"))
    model = loaded.model
    config = timm.data.resolve_model_data_config(model)
    assert config["input_size"] == (3, 224, 224)
    transform = timm.data.create_transform(**config, is_training=False)

    def top_k(image: np.ndarray, k: int) -> list[int]:
        with torch.inference_mode():
            logits = model(transform(Image.fromarray(image).convert("RGB")).unsqueeze(0))
        return logits[0].topk(k).indices.tolist()

    return loaded, top_k


def test_bundled_weights_classify_coffee(bundled_classifier):
    import skimage.data

    loaded, top_k = bundled_classifier
    assert not loaded.model.training
    assert loaded.identity.startswith("bundled:")
    assert top_k(skimage.data.coffee(), 1) == [967]  # espresso


def test_bundled_weights_classify_chelsea_the_cat(bundled_classifier):
    import skimage.data

    _, top_k = bundled_classifier
    assert set(top_k(skimage.data.chelsea(), 3)) & set(range(281, 286))  # a domestic cat class


def test_bundled_for_another_architecture_is_a_ptm_error(tiny):
    with pytest.raises(PTMError, match=f"No bundled weights for '{tiny.model}'; they ship for tf_efficientnet_lite0"):
        load_backbone(BackboneConfig(tiny.model, "bundled"))
    with pytest.raises(PTMError):
        load_backbone(BackboneConfig("efficientnet_lite0", "bundled"))


# --------------------------------------------------------------------------- random

def test_random_weights_are_seeded(tiny):
    a = load_backbone(BackboneConfig(tiny.model, "random", 0))
    b = load_backbone(BackboneConfig(tiny.model, "random", 0))
    c = load_backbone(BackboneConfig(tiny.model, "random", 1))
    assert not a.model.training
    assert a.identity == b.identity != c.identity
    _assert_same_state(_state(a.model), _state(b.model))
    state_a, state_c = _state(a.model), _state(c.model)
    assert any(not torch.equal(state_a[k], state_c[k]) for k in state_a if state_a[k].is_floating_point())


def test_unknown_model_name_is_a_ptm_error():
    for weights in ("random", "hub", "bundled"):
        with pytest.raises(PTMError):
            load_backbone(BackboneConfig("no_such_model_xyz", weights))
    with pytest.raises(PTMError, match="Unknown model 'no_such_model_xyz'"):
        load_backbone(BackboneConfig("no_such_model_xyz", "random"))


# --------------------------------------------------------------------------- local files

@pytest.fixture
def tiny_state(tiny):
    torch.manual_seed(123)
    model = timm.create_model(tiny.model, pretrained=False)
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def test_local_safetensors_and_pth_load_the_same_tensors(tiny, tiny_state, tmp_path):
    from safetensors.torch import save_file

    st_path, pth_path = tmp_path / "tiny.safetensors", tmp_path / "tiny.pth"
    save_file(tiny_state, str(st_path))
    torch.save(tiny_state, pth_path)
    from_st = load_backbone(BackboneConfig(tiny.model, str(st_path)))
    from_pth = load_backbone(BackboneConfig(tiny.model, str(pth_path)))
    assert not from_st.model.training and not from_pth.model.training
    assert from_st.identity.startswith("file:") and from_pth.identity.startswith("file:")
    _assert_same_state(_state(from_st.model), _state(from_pth.model))
    _assert_same_state(_state(from_st.model), tiny_state)


def test_wrapped_and_dataparallel_checkpoints_load(tiny, tiny_state, tmp_path):
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in tiny_state.items()}, "epoch": 3}, path)
    _assert_same_state(_state(load_backbone(BackboneConfig(tiny.model, str(path))).model), tiny_state)


def test_checkpoint_with_renamed_key_names_it(tiny, tiny_state, tmp_path):
    key = next(k for k in tiny_state if k.endswith("weight"))
    renamed = dict(tiny_state)
    renamed["renamed." + key] = renamed.pop(key)
    path = tmp_path / "renamed.pth"
    torch.save(renamed, path)
    with pytest.raises(PTMError) as info:
        load_backbone(BackboneConfig(tiny.model, str(path)))
    message = str(info.value)
    assert key in message and "renamed." + key in message
    assert "missing" in message and "unexpected" in message
    assert "\n" not in message


def test_checkpoint_with_missing_key_names_it(tiny, tiny_state, tmp_path):
    from safetensors.torch import save_file

    key = list(tiny_state)[len(tiny_state) // 2]
    missing = {k: v for k, v in tiny_state.items() if k != key}
    path = tmp_path / "missing.safetensors"
    save_file(missing, str(path))
    with pytest.raises(PTMError, match="missing") as info:
        load_backbone(BackboneConfig(tiny.model, str(path)))
    assert key in str(info.value)


def test_checkpoint_with_wrong_shape_names_it(tiny, tiny_state, tmp_path):
    key = next(k for k, v in tiny_state.items() if v.ndim == 4)
    bad = dict(tiny_state, **{key: torch.zeros(1, 1, 1, 1)})
    path = tmp_path / "shape.pth"
    torch.save(bad, path)
    with pytest.raises(PTMError, match="wrong shape") as info:
        load_backbone(BackboneConfig(tiny.model, str(path)))
    assert key in str(info.value)


class _WritesMarker:
    """Unpickling this object creates a file: the stand-in for arbitrary code in a checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"echo pwned > '{self.marker}'",))


def test_pickled_code_in_a_checkpoint_is_refused(tiny, tiny_state, tmp_path):
    # First prove the payload is live: an unsafe load really does run it.
    proof_marker, proof_path = tmp_path / "proof", tmp_path / "proof.pth"
    torch.save({"payload": _WritesMarker(proof_marker)}, proof_path)
    torch.load(proof_path, weights_only=False)
    assert proof_marker.exists()

    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    torch.save(dict(tiny_state, payload=_WritesMarker(marker)), path)
    with pytest.raises(PTMError, match="Refused to load evil.pth"):
        load_backbone(BackboneConfig(tiny.model, str(path)))
    assert not marker.exists()


def test_missing_or_odd_weight_files_are_ptm_errors(tiny, tmp_path):
    with pytest.raises(PTMError, match="not allowed or not found"):
        load_backbone(BackboneConfig(tiny.model, str(tmp_path / "nope.safetensors")))
    odd = tmp_path / "weights.txt"
    odd.write_text("hello")
    with pytest.raises(PTMError, match="neither .* nor a checkpoint path"):
        load_backbone(BackboneConfig(tiny.model, str(odd)))
    not_a_dict = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), not_a_dict)
    with pytest.raises(PTMError, match="not a state dict"):
        load_backbone(BackboneConfig(tiny.model, str(not_a_dict)))


# --------------------------------------------------------------------------- hub

def test_hub_unreachable_fails_fast_with_offline_choices(monkeypatch):
    from ptm_core.models.weights import cached_hub_file, hub_reachable

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    if cached_hub_file("resnet18.a1_in1k") is not None:
        pytest.skip("resnet18.a1_in1k is already in the local hub cache")
    if hub_reachable(timeout=2.0):
        pytest.skip("the Hugging Face hub is reachable from here; this test is for offline machines")
    started = time.monotonic()
    with pytest.raises(PTMError) as info:
        load_backbone(BackboneConfig("resnet18.a1_in1k", "hub"))
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert "resnet18.a1_in1k" in message
    assert "bundled" in message and "random" in message
    assert "\n" not in message

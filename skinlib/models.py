"""Model builders: the multilayer perceptron and the CNN iterations of chapter 02.

Every builder returns an uncompiled ``keras.Model`` that takes raw pixels
(0-255, float) of shape ``input_shape`` and returns class probabilities; the
rescaling to 0-1 is the model's first layer, so a saved model needs no
preprocessing beyond resizing. One CNN builder covers all the iterations: each
iteration changes one argument.
"""

from __future__ import annotations

import functools


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

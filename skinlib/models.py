"""Model builders: the multilayer perceptron and the CNN iterations of chapter 02.

Every builder returns an uncompiled ``keras.Model`` that takes raw pixels
(0-255, float) of shape ``input_shape`` and returns class probabilities; the
rescaling to 0-1 is the model's first layer, so a saved model needs no
preprocessing beyond resizing. One CNN builder covers all the iterations: each
iteration changes one argument.
"""

from __future__ import annotations


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


def augmentation(*, seed=0, rotation=0.5, zoom=0.1, contrast=0.1, brightness=0.1):
    """Random flips, rotations, zoom, contrast and brightness for dermoscopic images.

    A lesion has no "up", so flips in both directions and rotations of any
    angle keep the diagnosis. Applied to training batches only (through
    :func:`skinlib.pipeline.training_dataset`), never to evaluation data.

    >>> layer = augmentation(seed=1)
    >>> [type(step).__name__ for step in layer.layers][:2]
    ['RandomFlip', 'RandomRotation']
    """
    keras = _keras()
    layers = keras.layers
    return keras.Sequential([
        layers.RandomFlip("horizontal_and_vertical", seed=seed),
        layers.RandomRotation(rotation, fill_mode="reflect", seed=seed + 1),
        layers.RandomZoom((-zoom, zoom), fill_mode="reflect", seed=seed + 2),
        layers.RandomContrast(contrast, seed=seed + 3),
        layers.RandomBrightness(brightness, value_range=(0, 255), seed=seed + 4),
    ], name="augmentation")

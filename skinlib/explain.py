"""What a CNN sees: hand-made convolutions, learned filters and feature maps.

Chapter 02 uses these to teach what a convolution does to one real lesion;
later chapters add Grad-CAM and LIME here.
"""

from __future__ import annotations

import numpy as np

EDGE_KERNELS = {
    "vertical edges": np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype="float32"),
    "horizontal edges": np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype="float32"),
    "blur": np.full((3, 3), 1 / 9, dtype="float32"),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype="float32"),
}
"""Classic 3x3 kernels, the kind of filter a CNN's first layer learns by itself."""


def convolve(gray, kernel):
    """Slide a 2-D kernel over a grayscale image ('same' size, zero padding), as Conv2D does.

    >>> float(convolve(np.ones((4, 4)), np.ones((3, 3)))[1, 1])
    9.0
    """
    gray = np.asarray(gray, dtype="float32")
    padded = np.pad(gray, 1)
    out = np.zeros_like(gray)
    for row in range(3):
        for column in range(3):
            out += kernel[row, column] * padded[row:row + gray.shape[0], column:column + gray.shape[1]]
    return out


def plot_convolutions(pixels, kernels=None):
    """Show one image and what each hand-made kernel makes of it."""
    import matplotlib.pyplot as plt

    kernels = kernels or EDGE_KERNELS
    gray = np.asarray(pixels, dtype="float32") @ np.array([0.299, 0.587, 0.114], dtype="float32")
    figure, axes = plt.subplots(1, len(kernels) + 1, figsize=(2.6 * (len(kernels) + 1), 2.4))
    axes[0].imshow(pixels)
    axes[0].set_title("lesion")
    for axis, (name, kernel) in zip(axes[1:], kernels.items()):
        axis.imshow(convolve(gray, kernel), cmap="gray")
        axis.set_title(name)
    for axis in axes:
        axis.axis("off")
    figure.tight_layout()
    return figure


def conv_layers(model):
    """The names of the model's convolution layers, in order."""
    return [layer.name for layer in model.layers if layer.__class__.__name__ == "Conv2D"]


def plot_filters(model, *, layer=None, columns=8):
    """Show the learned 3x3 kernels of the first convolution as small RGB patches."""
    import matplotlib.pyplot as plt

    name = layer or conv_layers(model)[0]
    kernels = model.get_layer(name).get_weights()[0]  # (3, 3, 3, filters)
    count = kernels.shape[-1]
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 0.9, rows * 0.9), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < count:
            kernel = kernels[..., index]
            spread = np.ptp(kernel) or 1.0
            axis.imshow((kernel - kernel.min()) / spread, interpolation="nearest")
    figure.suptitle(f"The {count} learned filters of {name}", fontsize=10)
    return figure


def feature_maps(model, pixels, layers):
    """The activations of the named layers for one image: a list of (height, width, channels) arrays."""
    import keras

    probe = keras.Model(model.inputs[0], [model.get_layer(name).output for name in layers])
    outputs = probe(np.asarray(pixels, dtype="float32")[None], training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [np.asarray(output)[0] for output in outputs]


def plot_feature_maps(model, pixels, layers, *, channels=6):
    """Show the first few channels of each named layer for one image: the image as the network sees it, deeper and deeper."""
    import matplotlib.pyplot as plt

    maps = feature_maps(model, pixels, layers)
    figure, axes = plt.subplots(len(layers), channels + 1, figsize=(1.6 * (channels + 1), 1.6 * len(layers)),
                                squeeze=False)
    for row, (name, activation) in enumerate(zip(layers, maps)):
        axes[row, 0].imshow(pixels)
        axes[row, 0].set_ylabel(f"{name}\n{activation.shape[0]}x{activation.shape[1]}x{activation.shape[2]}",
                                fontsize=7)
        strongest = np.argsort(activation.reshape(-1, activation.shape[-1]).mean(axis=0))[::-1][:channels]
        for column, channel in enumerate(strongest, 1):
            axes[row, column].imshow(activation[..., channel], cmap="magma")
        for axis in axes[row]:
            axis.set_xticks([])
            axis.set_yticks([])
    figure.suptitle("Feature maps: the most active channels of each layer", fontsize=10)
    figure.tight_layout()
    return figure

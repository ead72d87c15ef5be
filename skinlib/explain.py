"""What a CNN sees: hand-made convolutions, learned filters and feature maps; Grad-CAM and LIME.

Chapter 02 uses these to teach what a convolution does to one real lesion;
chapter 04 explains test predictions with Grad-CAM and LIME
(:mod:`skinlib.explanation_scores` scores them against the lesion masks).
"""

from __future__ import annotations

import numpy as np

from skinlib.data import CLASSES
from skinlib.infer import predict_proba

EDGE_KERNELS = {
    "vertical edges": np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype="float32"),
    "horizontal edges": np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype="float32"),
    "blur": np.full((3, 3), 1 / 9, dtype="float32"),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype="float32"),
}
"""Classic 3x3 kernels, the kind of filter a CNN's first layer learns by itself."""


def convolve(gray, kernel):
    """Slide a 2-D kernel over a grayscale image ('same' size, zero padding), as Conv2D does.

    Parameters
    ----------
    gray : array-like of shape (height, width)
    kernel : ndarray of shape (3, 3)

    Returns
    -------
    ndarray of shape (height, width), float32

    Examples
    --------
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


def border_effect(gray, kernel, *, width=1):
    """How much stronger a kernel's answer is on the image's border than inside, with zero padding.

    'Same' padding surrounds the image with zeros, so at the border a kernel sees a step from skin to black that
    is not in the image: edge kernels answer it as an edge.

    Parameters
    ----------
    gray : array-like of shape (height, width)
    kernel : ndarray of shape (3, 3)
    width : int, default=1
        Border width in pixels.

    Returns
    -------
    float
        Mean absolute output on the border divided by that inside (1: no border effect).

    Examples
    --------
    >>> flat = np.full((10, 10), 100.0)
    >>> border_effect(flat, EDGE_KERNELS["blur"]) < 1 < border_effect(flat, EDGE_KERNELS["vertical edges"])
    True
    """
    out = np.abs(convolve(gray, kernel))
    if not 1 <= width < min(out.shape) / 2:
        raise ValueError(f"width must be at least 1 and leave an inside in a {out.shape[0]}x{out.shape[1]} image. "
                         f"Got {width!r} instead.")
    ratio = _border_ratio(out, width)
    return float("inf") if np.isnan(ratio) else ratio


def _border_ratio(strength, width):
    """Mean of a 2-D map on its outer ``width`` pixels over its mean inside; NaN without a (nonzero) inside."""
    inside = strength[width:-width, width:-width]
    if inside.size == 0 or inside.mean() == 0:
        return float("nan")
    border = (strength.sum() - inside.sum()) / (strength.size - inside.size)
    return float(border / inside.mean())


def plot_convolutions(pixels, kernels=None):
    """Show one image, each hand-made kernel with its values, and what the kernel makes of the image.

    Top row: the image and the kernels (their nine weights written in). Bottom row: the grayscale image the
    kernels run on and each output, with its colour scale (red positive, blue negative, for the kernels whose
    weights sum to zero; gray for the others), set by the inside of the image (1st to 99th percentile), so that
    the artificial edges the zero padding makes at the border (:func:`border_effect`) show as a saturated frame.

    Parameters
    ----------
    pixels : ndarray of shape (height, width, 3)
        An RGB image (uint8), shown first; the kernels run on its grayscale version.
    kernels : dict, default=None
        ``{title: 3x3 kernel}``; None: :data:`EDGE_KERNELS`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_convolutions(np.zeros((8, 8, 3), "uint8"))
    >>> len(figure.axes)  # 2 x 5 panels and 4 colour bars
    14
    """
    import matplotlib.pyplot as plt

    kernels = kernels or EDGE_KERNELS
    gray = np.asarray(pixels, dtype="float32") @ np.array([0.299, 0.587, 0.114], dtype="float32")
    columns = len(kernels) + 1
    figure, axes = plt.subplots(2, columns, figsize=(2.7 * columns, 4.6), layout="constrained",
                                gridspec_kw={"height_ratios": [0.8, 1]})
    axes[0, 0].imshow(pixels)
    axes[0, 0].set_title("lesion", fontsize=9)
    axes[1, 0].imshow(gray, cmap="gray")
    axes[1, 0].set_title("grayscale input", fontsize=9)
    for column, (name, kernel) in enumerate(kernels.items(), 1):
        signed = abs(float(kernel.sum())) < 1e-6
        limit = float(np.abs(kernel).max())
        axes[0, column].imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
        for (row, col), value in np.ndenumerate(kernel):
            axes[0, column].text(col, row, f"{value:.2g}", ha="center", va="center", fontsize=9,
                                 color="white" if abs(value) > 0.6 * limit else "black")
        axes[0, column].set_title(f"kernel: {name}", fontsize=9)
        out = convolve(gray, kernel)
        inside = out[1:-1, 1:-1]  # The scale is set by the inside: the padded border saturates it.
        if signed:
            bound = float(np.percentile(np.abs(inside), 99)) or 1.0
            image = axes[1, column].imshow(out, cmap="RdBu_r", vmin=-bound, vmax=bound)
        else:
            low, high = np.percentile(inside, [1, 99])
            image = axes[1, column].imshow(out, cmap="gray", vmin=low, vmax=high)
        axes[1, column].set_title(f"output: {name}", fontsize=9)
        figure.colorbar(image, ax=axes[1, column], fraction=0.046, pad=0.02)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    return figure


def conv_layers(model):
    """The names of the model's convolution layers, in order.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    list of str

    Examples
    --------
    >>> conv_layers(models.cnn((64, 64, 3), stem=16, filters=(32,)))  # doctest: +SKIP
    ['stem_conv', 'block1_conv1', 'block1_conv2']
    """
    return [layer.name for layer in model.layers if layer.__class__.__name__ == "Conv2D"]


def plot_filters(model, *, layer=None, columns=8):
    """Show the learned 3x3 kernels of the first convolution as small RGB patches.

    Parameters
    ----------
    model : keras.Model
        A model whose first convolution takes RGB pixels (a chapter-02 CNN).
    layer : str, default=None
        The convolution to show; None: the first (:func:`conv_layers`).
    columns : int, default=8
        Patches per row.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_filters(experiment.model)  # doctest: +SKIP
    """
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
    """The activations of the named layers for one image: a list of (height, width, channels) arrays.

    Parameters
    ----------
    model : keras.Model
    pixels : ndarray of shape (height, width, 3)
        At the model's input size.
    layers : list of str
        Layer names (``model.summary()`` lists them).

    Returns
    -------
    list of ndarray

    Examples
    --------
    >>> [a.shape for a in feature_maps(model, lesion, ["stem_relu", "block1_pool"])]  # doctest: +SKIP
    [(32, 32, 16), (16, 16, 32)]
    """
    import keras

    probe = keras.Model(model.inputs[0], [model.get_layer(name).output for name in layers])
    outputs = probe(np.asarray(pixels, dtype="float32")[None], training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [np.asarray(output)[0] for output in outputs]


def plot_feature_maps(model, pixels, layers, *, channels=6):
    """Show the most active channels of each named layer for one image: the image as the network sees it, deeper and
    deeper.

    The channels of a row share one colour scale (its bar on the right), so their brightness can be compared.

    Parameters
    ----------
    model : keras.Model
    pixels : ndarray of shape (height, width, 3)
        At the model's input size.
    layers : list of str
        One row of the figure per layer (see :func:`feature_maps`).
    channels : int, default=6
        The most active channels shown per layer.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_feature_maps(model, lesion, ["stem_relu", "block1_pool"])  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    maps = feature_maps(model, pixels, layers)
    figure, axes = plt.subplots(len(layers), channels + 1, figsize=(1.7 * (channels + 1) + 0.6, 1.6 * len(layers)),
                                squeeze=False, layout="constrained")
    for row, (name, activation) in enumerate(zip(layers, maps)):
        axes[row, 0].imshow(pixels)
        axes[row, 0].set_ylabel(f"{name}\n{activation.shape[0]}x{activation.shape[1]}x{activation.shape[2]}",
                                fontsize=7)
        strongest = np.argsort(activation.reshape(-1, activation.shape[-1]).mean(axis=0))[::-1][:channels]
        top = float(activation[..., strongest].max()) or 1.0
        for column, channel in enumerate(strongest, 1):
            image = axes[row, column].imshow(activation[..., channel], cmap="magma", vmin=0, vmax=top)
        figure.colorbar(image, ax=axes[row, -1], fraction=0.08, pad=0.04)
        for axis in axes[row]:
            axis.set_xticks([])
            axis.set_yticks([])
    figure.suptitle("Feature maps: the most active channels of each layer (one colour scale per row)", fontsize=10)
    return figure


def border_activation(model, pixels, layers, *, width=1):
    """Per layer, the mean activation on the feature map's outer ``width`` pixels divided by that inside.

    Above 1: the layer answers the border (the zero padding) more strongly than the image's inside.

    Returns
    -------
    pandas.Series
        Indexed by layer name, NaN where the map is too small to have an inside.

    Examples
    --------
    >>> border_activation(model, lesion, ["stem_relu", "block1_pool"])  # doctest: +SKIP
    """
    import pandas as pd

    ratios = {}
    for name, activation in zip(layers, feature_maps(model, pixels, layers)):
        ratios[name] = _border_ratio(np.abs(activation).mean(axis=-1), width)
    return pd.Series(ratios, name="border / inside")


# ---------------------------------------------------------------------------------------------------------------
# Chapter 04: where does the model look?
# ---------------------------------------------------------------------------------------------------------------

def _cam_parts(model):
    """Split a model into (feature-map function, rest function) for Grad-CAM."""
    import keras

    from skinlib.models import base_of

    names = [layer.name for layer in model.layers]
    if "head" in names:  # A chapter-03 classifier: pixels -> base -> pool -> head.
        base = base_of(model)
        head = model.get_layer("head")

        def rest(feature_map, metadata):
            import tensorflow as tf

            pooled = tf.reduce_mean(feature_map, axis=(1, 2))
            return head([pooled, metadata] if metadata is not None else pooled, training=False)

        return (lambda pixels: base(pixels, training=False)), rest
    # A chapter-02 CNN: the last layer with a 4-D output is the feature map.
    last = [layer for layer in model.layers if len(layer.output.shape) == 4][-1]
    split_model = keras.Model(model.inputs, [last.output, model.outputs[0]])
    return None, split_model


def grad_cam(model, pixels, class_index=None, *, metadata=None):
    """Grad-CAM heat map of one image for one class, at the image's size, scaled to 0-1.

    The gradient of the class probability with respect to the last feature
    map says how much each channel matters for that class; their weighted sum,
    kept where positive, shows where the evidence lies (Selvaraju et al., 2017).

    An ensemble (:func:`skinlib.models.ensemble`) is explained by the mean of
    its members' heat maps (each scaled to 0-1) for the class the ensemble
    predicts: where the members look, on average.

    Parameters
    ----------
    model : keras.Model
        A chapter-02 CNN, a chapter-03 classifier (with its "head") or an ensemble of them.
    pixels : ndarray (height, width, 3)
        At the model's input size.
    class_index : int, default=None
        The class to explain; None: the predicted class.
    metadata : ndarray (n_metadata,), default=None
        For a two-input model.

    Returns
    -------
    heat : ndarray (height, width), float32 in 0-1
    class_index : int

    Examples
    --------
    >>> heat, explained = grad_cam(model, test_pixels[0])  # doctest: +SKIP
    >>> heat.shape == test_pixels[0].shape[:2]  # doctest: +SKIP
    True
    """
    import tensorflow as tf

    from skinlib.models import members

    x = tf.convert_to_tensor(np.asarray(pixels, "float32")[None])
    meta = None if metadata is None else tf.convert_to_tensor(np.asarray(metadata, "float32")[None])
    if parts := members(model):
        if class_index is None:
            class_index = int(np.argmax(model([x, meta] if meta is not None else x, training=False)[0]))
        return _scaled(np.mean([grad_cam(part, pixels, class_index, metadata=metadata)[0] for part in parts], 0)), \
            class_index
    features, rest = _cam_parts(model)
    with tf.GradientTape() as tape:
        if features is not None:
            feature_map = features(x)
            tape.watch(feature_map)
            probabilities = rest(feature_map, meta)
        else:
            feature_map, probabilities = rest(x, training=False)
        if class_index is None:
            class_index = int(tf.argmax(probabilities[0]))
        score = probabilities[:, class_index]
    gradients = tape.gradient(score, feature_map)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    heat = tf.nn.relu(tf.reduce_sum(weights * feature_map, axis=-1))[0]
    heat = tf.image.resize(heat[..., None], np.asarray(pixels).shape[:2], method="bilinear")[..., 0].numpy()
    return _scaled(heat), class_index


def _scaled(heat):
    """A heat map divided by its maximum (0-1, float32); an all-zero map stays zero."""
    top = heat.max()
    return (heat / top if top > 0 else heat).astype("float32")


def overlay_heat(pixels, heat, *, alpha=0.45):
    """The image with a heat map blended on top (jet colours), as uint8 RGB.

    Parameters
    ----------
    pixels : ndarray of shape (height, width, 3)
    heat : ndarray of shape (height, width)
        Values in 0-1 (:func:`grad_cam`).
    alpha : float, default=0.45
        Weight of the heat map's colours.

    Returns
    -------
    ndarray of shape (height, width, 3), uint8

    Examples
    --------
    >>> overlay_heat(np.zeros((2, 2, 3)), np.ones((2, 2))).shape
    (2, 2, 3)
    """
    import matplotlib

    colours = matplotlib.colormaps["jet"](np.clip(heat, 0, 1))[..., :3] * 255
    return np.clip((1 - alpha) * np.asarray(pixels, "float32") + alpha * colours, 0, 255).astype("uint8")


def lime_explanation(model, pixels, class_index, *, metadata=None, samples=300, features=5, seed=0):
    """LIME for one image: the superpixels that most support ``class_index``, as a boolean mask.

    LIME (Ribeiro et al., 2016) greys out random sets of superpixels, watches
    how the class probability moves, and fits a linear model to those
    answers: the superpixels with the largest positive weights are the
    explanation. ``samples`` perturbed images cost ``samples`` predictions.

    Parameters
    ----------
    model : keras.Model
    pixels : ndarray of shape (height, width, 3)
        At the model's input size.
    class_index : int
        The class to explain.
    metadata : ndarray of shape (n_metadata,), default=None
        For a two-input model (the same for every perturbed image).
    samples : int, default=300
    features : int, default=5
        Superpixels kept.
    seed : int, default=0

    Returns
    -------
    ndarray of bool, shape (height, width)

    Examples
    --------
    >>> mask = lime_explanation(model, test_pixels[0], 4, samples=100)  # doctest: +SKIP
    """
    from lime import lime_image

    def classify(batch):
        meta = None if metadata is None else np.repeat(np.asarray(metadata, "float32")[None], len(batch), axis=0)
        return predict_proba(model, np.asarray(batch, "float32"), metadata=meta, batch_size=64)

    explainer = lime_image.LimeImageExplainer(random_state=seed)
    progress, lime_image.tqdm = lime_image.tqdm, lambda rows, **_: rows  # One bar per image would flood a notebook.
    try:
        explanation = explainer.explain_instance(np.asarray(pixels, "float64"), classify, labels=(class_index,),
                                                 top_labels=None, hide_color=0, num_samples=samples, batch_size=64,
                                                 random_seed=seed)
    finally:
        lime_image.tqdm = progress
    _, mask = explanation.get_image_and_mask(class_index, positive_only=True, num_features=features,
                                             hide_rest=False)
    return mask.astype(bool)


def cam_grid(model):
    """The (height, width) of the feature map Grad-CAM weighs for ``model``: the resolution of its heat maps.

    Examples
    --------
    >>> cam_grid(model)  # doctest: +SKIP
    (4, 5)
    """
    from skinlib.models import base_of, members

    if parts := members(model):  # An ensemble: its members' grid (one architecture, so one grid).
        return cam_grid(parts[0])
    names = [layer.name for layer in model.layers]
    if "head" in names:
        base = base_of(model)
        shape = base.output.shape
    else:
        shape = [layer for layer in model.layers if len(layer.output.shape) == 4][-1].output.shape
    return int(shape[1]), int(shape[2])


def pick_examples(labels, predicted, confidence):
    """For each class, the test image of the most confident correct prediction and of the most confident mistake.

    Parameters
    ----------
    labels, predicted : array-like of shape (n,)
        True and predicted class indices.
    confidence : array-like of shape (n,)
        The probability of the predicted class.

    Returns
    -------
    list of tuple
        ``(class index, "correct" or "wrong", row or None)``, two per class.

    Examples
    --------
    >>> pick_examples(np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([0.9, 0.8, 0.7]))[:3]
    [(0, 'correct', 0), (0, 'wrong', 1), (1, 'correct', 2)]
    """
    labels, predicted, confidence = map(np.asarray, (labels, predicted, confidence))
    picked = []
    for k in range(len(CLASSES)):
        is_class = labels == k
        for kind, chosen in (("correct", is_class & (predicted == k)), ("wrong", is_class & (predicted != k))):
            rows = np.flatnonzero(chosen)
            picked.append((k, kind, int(rows[np.argmax(confidence[rows])]) if len(rows) else None))
    return picked


def _outline(mask):
    """The boundary pixels of a boolean mask."""
    inner = mask.copy()
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return mask & ~inner


def _with_outline(pixels, mask, colour=(0, 255, 0)):
    out = np.array(pixels, dtype="uint8", copy=True)
    if mask is not None and mask.any():
        out[_outline(mask)] = colour
    return out


def plot_explanations(model, pixels, masks, examples, labels, predicted, *, metadata=None, lime_samples=300, seed=0):
    """A grid: per class in ``examples``, the correct and the wrong example, each as image, Grad-CAM and LIME.

    Parameters
    ----------
    model : keras.Model
    pixels : ndarray of shape (n, height, width, 3)
        Test images at the model's input size.
    masks : list of ndarray of bool or None
        The lesion mask of each image at that size (:func:`skinlib.explanation_scores.read_mask_at`).
    examples : list of tuple
        From :func:`pick_examples`.
    labels, predicted : array-like of shape (n,)
    metadata : ndarray of shape (n, n_metadata), default=None
        For a two-input model.
    lime_samples : int, default=300
    seed : int, default=0

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_explanations(model, pixels, masks, pick_examples(labels, predicted, confidence), labels,
    ...                            predicted)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    shown = sorted({k for k, _, _ in examples})  # One row per class in ``examples``.
    figure, axes = plt.subplots(len(shown), 6, figsize=(12, 1.9 * len(shown)), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for k, kind, row in examples:
        column, line = (0 if kind == "correct" else 3), shown.index(k)
        if row is None:
            axes[line, column].set_title(f"{CLASSES[k]}: no {kind} case", fontsize=7, loc="left")
            continue
        meta = None if metadata is None else metadata[row]
        heat, _ = grad_cam(model, pixels[row], int(predicted[row]), metadata=meta)
        lime_mask = lime_explanation(model, pixels[row], int(predicted[row]), metadata=meta, samples=lime_samples,
                                     seed=seed)
        lime_view = np.where(lime_mask[..., None], pixels[row], (0.35 * pixels[row]).astype("uint8"))
        panels = [_with_outline(pixels[row], masks[row]), _with_outline(overlay_heat(pixels[row], heat), masks[row]),
                  _with_outline(lime_view, masks[row])]
        names = [f"{CLASSES[k]} {kind}: said {CLASSES[int(predicted[row])]}", "Grad-CAM", "LIME"]
        for offset, (panel, name) in enumerate(zip(panels, names)):
            axes[line, column + offset].imshow(panel)
            axes[line, column + offset].set_title(name, fontsize=7)
    figure.suptitle("Test images: most confident correct (left) and wrong (right) prediction per true class; "
                    "green: lesion mask", fontsize=9)
    figure.tight_layout()
    return figure


def plot_mistakes(model, pixels, masks, labels, probabilities, *, count=12, metadata=None, columns=6):
    """The ``count`` most confident wrong predictions, each with its Grad-CAM and the lesion outline.

    Parameters
    ----------
    model : keras.Model
    pixels : ndarray of shape (n, height, width, 3)
    masks : list of ndarray of bool or None
    labels : array-like of shape (n,)
    probabilities : array-like of shape (n, 7)
        The model's predictions for ``pixels``.
    count : int, default=12
    metadata : ndarray of shape (n, n_metadata), default=None
    columns : int, default=6
        Images per row.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_mistakes(model, pixels, masks, labels, probabilities, count=12)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    chosen = wrong[np.argsort(-confidence[wrong])][:count]
    rows = max(1, int(np.ceil(len(chosen) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(2.1 * columns, 2.5 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, row in zip(axes.flat, chosen):
        heat, _ = grad_cam(model, pixels[row], int(predicted[row]),
                           metadata=None if metadata is None else metadata[row])
        axis.imshow(_with_outline(overlay_heat(pixels[row], heat), masks[row]))
        axis.set_title(f"true {CLASSES[labels[row]]}, said {CLASSES[predicted[row]]}\n{confidence[row]:.0%} sure",
                       fontsize=7)
    figure.suptitle("Most confident mistakes on the test split (Grad-CAM of the wrong class; green: lesion;\n"
                    "confidence of one pass of the model, without TTA or temperature)", fontsize=9)
    figure.tight_layout()
    return figure

"""What a CNN sees: hand-made convolutions, learned filters and feature maps.

Chapter 02 uses these to teach what a convolution does to one real lesion;
chapter 04 explains test predictions with Grad-CAM and LIME and scores the
explanations against the lesion masks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def plot_convolutions(pixels, kernels=None):
    """Show one image and what each hand-made kernel makes of it.

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
    >>> len(plot_convolutions(np.zeros((8, 8, 3), "uint8")).axes)
    5
    """
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
    """Show the first few channels of each named layer for one image: the image as the network sees it, deeper and
    deeper.

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


# ---------------------------------------------------------------------------------------------------------------
# Chapter 04: where does the model look?
# ---------------------------------------------------------------------------------------------------------------

def _cam_parts(model):
    """Split a model into (feature-map function, rest function) for Grad-CAM."""
    import keras

    names = [layer.name for layer in model.layers]
    if "head" in names:  # A chapter-03 classifier: pixels -> base -> pool -> head.
        base = next(layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name != "head")
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

    Parameters
    ----------
    model : keras.Model
        A chapter-02 CNN or a chapter-03 classifier (with its "head").
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

    x = tf.convert_to_tensor(np.asarray(pixels, "float32")[None])
    meta = None if metadata is None else tf.convert_to_tensor(np.asarray(metadata, "float32")[None])
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
    top = heat.max()
    return (heat / top if top > 0 else heat).astype("float32"), class_index


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


def mask_scores(heat, mask):
    """How well a heat map agrees with the lesion mask.

    Parameters
    ----------
    heat : array-like of shape (height, width)
    mask : array-like of bool, same shape
        True on the lesion.

    Returns
    -------
    dict
        ``inside`` (the share of the heat map's mass inside the lesion; NaN
        for an empty map) and ``hit`` (the pointing game: is its hottest
        pixel on the lesion?).

    Examples
    --------
    >>> heat = np.zeros((4, 4)); heat[0, 0] = 1.0; heat[3, 3] = 3.0
    >>> mask = np.zeros((4, 4), bool); mask[3, 3] = True
    >>> mask_scores(heat, mask)
    {'inside': 0.75, 'hit': True}
    """
    heat, mask = np.asarray(heat, "float64"), np.asarray(mask, bool)
    if heat.shape != mask.shape:
        raise ValueError(f"heat map {heat.shape} and mask {mask.shape} differ in shape.")
    total = heat.sum()
    inside = float(heat[mask].sum() / total) if total > 0 else float("nan")
    return {"inside": inside, "hit": bool(mask.flat[int(np.argmax(heat))])}


def read_mask_at(path, size):
    """A lesion mask as a boolean array at ``size`` (height, width), resized with nearest neighbours.

    Parameters
    ----------
    path : str or Path
        A HAM10000 segmentation mask (white on the lesion).
    size : tuple (height, width)

    Returns
    -------
    ndarray of bool, shape ``size``

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mask.png"
    >>> Image.fromarray(np.eye(4, dtype="uint8") * 255).save(path)
    >>> read_mask_at(path, (2, 2)).tolist()
    [[True, False], [False, True]]
    """
    from PIL import Image

    with Image.open(path) as image:
        resized = image.convert("L").resize((size[1], size[0]), Image.NEAREST)
    return np.asarray(resized) > 127


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


def frame_share(heat, *, margin=0.1):
    """The share of a heat map's mass in the outer ``margin`` frame of the image (rulers, vignetting, corners).

    Parameters
    ----------
    heat : array-like of shape (height, width)
    margin : float, default=0.1
        Width of the frame, as a share of each side (at least one pixel).

    Returns
    -------
    float
        NaN for an empty map.

    Examples
    --------
    >>> heat = np.ones((10, 10))
    >>> round(frame_share(heat), 2)  # 1 - 0.8 * 0.8 of a uniform map
    0.36
    """
    heat = np.asarray(heat, "float64")
    rows, columns = heat.shape
    dr, dc = max(1, int(round(margin * rows))), max(1, int(round(margin * columns)))
    total = heat.sum()
    centre = heat[dr:rows - dr, dc:columns - dc].sum()
    return float((total - centre) / total) if total > 0 else float("nan")


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
    """A grid: per class, the correct and the wrong example, each as image, Grad-CAM and LIME (mask outlined).

    Parameters
    ----------
    model : keras.Model
    pixels : ndarray of shape (n, height, width, 3)
        Test images at the model's input size.
    masks : list of ndarray of bool or None
        The lesion mask of each image at that size (:func:`read_mask_at`).
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

    rows = len(CLASSES)
    figure, axes = plt.subplots(rows, 6, figsize=(12, 1.9 * rows))
    for axis in axes.flat:
        axis.axis("off")
    for k, kind, row in examples:
        column = 0 if kind == "correct" else 3
        if row is None:
            axes[k, column].set_title(f"{CLASSES[k]}: no {kind} case", fontsize=7, loc="left")
            continue
        meta = None if metadata is None else metadata[row]
        heat, _ = grad_cam(model, pixels[row], int(predicted[row]), metadata=meta)
        lime_mask = lime_explanation(model, pixels[row], int(predicted[row]), metadata=meta, samples=lime_samples,
                                     seed=seed)
        shown = np.where(lime_mask[..., None], pixels[row], (0.35 * pixels[row]).astype("uint8"))
        panels = [_with_outline(pixels[row], masks[row]), _with_outline(overlay_heat(pixels[row], heat), masks[row]),
                  _with_outline(shown, masks[row])]
        names = [f"{CLASSES[k]} {kind}: said {CLASSES[int(predicted[row])]}", "Grad-CAM", "LIME"]
        for offset, (panel, name) in enumerate(zip(panels, names)):
            axes[k, column + offset].imshow(panel)
            axes[k, column + offset].set_title(name, fontsize=7)
    figure.suptitle("Test images: most confident correct (left) and wrong (right) prediction per true class; "
                    "green: lesion mask", fontsize=9)
    figure.tight_layout()
    return figure


def score_cams(model, pixels, masks, labels, predicted, *, per_class=25, metadata=None, seed=0):
    """Grad-CAM of the predicted class for up to ``per_class`` test images per true class, scored against masks.

    Parameters
    ----------
    model : keras.Model
    pixels : ndarray of shape (n, height, width, 3)
    masks : list of ndarray of bool or None
        Images without a mask (or with an empty one) are skipped.
    labels, predicted : array-like of shape (n,)
    per_class : int, default=25
        Images drawn at random (``seed``) per true class.
    metadata : ndarray of shape (n, n_metadata), default=None
    seed : int, default=0

    Returns
    -------
    DataFrame
        One row per image: class, correct, inside (heat share on the lesion), hit (pointing game), frame (heat
        share in the outer frame), and the same numbers of a uniform map (``inside_uniform``, ``frame_uniform``).

    Examples
    --------
    >>> scores = score_cams(model, pixels, masks, labels, predicted, per_class=25)  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    rows = []
    for k in range(len(CLASSES)):
        candidates = np.flatnonzero(labels == k)
        chosen = rng.choice(candidates, size=min(per_class, len(candidates)), replace=False) if len(candidates) else []
        for row in sorted(int(r) for r in chosen):
            mask = masks[row]
            if mask is None or not mask.any():
                continue
            heat, _ = grad_cam(model, pixels[row], int(predicted[row]),
                               metadata=None if metadata is None else metadata[row])
            uniform = np.ones_like(heat)
            rows.append({"row": row, "class": CLASSES[k], "correct": bool(predicted[row] == k),
                         **mask_scores(heat, mask), "frame": frame_share(heat),
                         "inside_uniform": mask_scores(uniform, mask)["inside"], "frame_uniform": frame_share(uniform)})
    return pd.DataFrame(rows)


def summarise_scores(scores):
    """Mean Grad-CAM scores per class and for all images, split into correct and wrong predictions.

    ``inside_uniform`` (the lesion's share of the image) is also the chance that a random pixel hits the
    lesion: the baseline of both ``inside`` and ``pointing_game``; ``frame_uniform`` is that of ``frame``.

    Parameters
    ----------
    scores : DataFrame
        From :func:`score_cams`.

    Returns
    -------
    DataFrame
        Indexed by (class, predictions): each class with "all", then "all" with "correct", "wrong" and "all";
        columns ``images``, ``inside``, ``inside_uniform``, ``pointing_game``, ``frame``, ``frame_uniform``.

    Examples
    --------
    >>> scores = pd.DataFrame({"class": ["mel", "nv"], "correct": [True, False], "inside": [0.8, 0.4],
    ...                        "hit": [True, False], "frame": [0.1, 0.3], "inside_uniform": [0.5, 0.5],
    ...                        "frame_uniform": [0.36, 0.36]})
    >>> summarise_scores(scores).loc[("all", "all"), ["images", "inside"]].tolist()
    [2.0, 0.6000000000000001]
    """
    def summary(frame):
        return pd.Series({"images": len(frame), "inside": frame["inside"].mean(), "inside_uniform":
                          frame["inside_uniform"].mean(), "pointing_game": frame["hit"].mean(),
                          "frame": frame["frame"].mean(), "frame_uniform": frame["frame_uniform"].mean()})

    per_class = {(dx, "all"): summary(group) for dx, group in scores.groupby("class", sort=False)}
    overall = {("all", kind): summary(scores[scores["correct"] == flag]) for kind, flag in (("correct", True),
                                                                                            ("wrong", False))}
    overall[("all", "all")] = summary(scores)
    return pd.DataFrame({**per_class, **overall}).T.rename_axis(["class", "predictions"])


def describe_scores(summary, *, tolerance=0.02):
    """Say in words how the Grad-CAM scores of correct and wrong predictions compare, from :func:`summarise_scores`.

    Parameters
    ----------
    summary : DataFrame
        From :func:`summarise_scores`; needs the rows ("all", "correct") and ("all", "wrong").
    tolerance : float, default=0.02
        Differences of shares smaller than this are called "about as much".

    Returns
    -------
    str
        Three lines: correct predictions, wrong ones, and how they differ.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = {("all", "correct"): dict(images=10, inside=0.65, inside_uniform=0.33, pointing_game=0.8, frame=0.035,
    ...                                  frame_uniform=0.36),
    ...         ("all", "wrong"): dict(images=5, inside=0.50, inside_uniform=0.30, pointing_game=0.6, frame=0.10,
    ...                                frame_uniform=0.36)}
    >>> print(describe_scores(pd.DataFrame(rows).T).splitlines()[-1])  # doctest: +NORMALIZE_WHITESPACE
    Compared with correct predictions, the wrong ones put more heat in the image frame (10% against 4%), and
    their heat beats the uniform map on the lesion by less (20 points against 32). Hair and skin texture inside
    the lesion cannot be told apart by these scores; the galleries show them.
    """
    lines = []
    for kind in ("correct", "wrong"):
        row = summary.loc[("all", kind)]
        lines.append(f"{kind} predictions ({int(row['images'])} images): {row['inside']:.0%} of the heat on the lesion "
                     f"(uniform map {row['inside_uniform']:.0%}), hottest pixel on the lesion in "
                     f"{row['pointing_game']:.0%} (chance {row['inside_uniform']:.0%}), {row['frame']:.0%} in the "
                     f"outer frame (uniform map {row['frame_uniform']:.0%}).")
    right, wrong = summary.loc[("all", "correct")], summary.loc[("all", "wrong")]
    if not (right["images"] and wrong["images"]):
        return "\n".join(lines + ["No wrong (or no correct) predictions among the scored images: nothing to compare."])

    def compared(a, b, more, less):
        return "about as much" if abs(a - b) < tolerance else (more if a > b else less)

    lift_right = right["inside"] - right["inside_uniform"]
    lift_wrong = wrong["inside"] - wrong["inside_uniform"]
    lines.append(f"Compared with correct predictions, the wrong ones put "
                 f"{compared(wrong['frame'], right['frame'], 'more', 'less')} heat in the image frame "
                 f"({wrong['frame']:.0%} against {right['frame']:.0%}), and their heat beats the uniform map on the "
                 f"lesion by {compared(lift_wrong, lift_right, 'more', 'less')} ({lift_wrong * 100:.0f} points "
                 f"against {lift_right * 100:.0f}). Hair and skin texture inside the lesion cannot be told apart by "
                 "these scores; the galleries show them.")
    return "\n".join(lines)


def plot_scores(scores):
    """Heat share inside the lesion per class, correct against wrong, with the uniform-map baseline.

    Parameters
    ----------
    scores : DataFrame
        From :func:`score_cams`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_scores(score_cams(model, pixels, masks, labels, predicted))  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    table = scores.groupby(["class", "correct"])["inside"].mean().unstack()
    table = table.reindex([dx for dx in CLASSES if dx in table.index])
    table.columns = ["wrong" if not flag else "correct" for flag in table.columns]
    baseline = scores.groupby("class")["inside_uniform"].mean().reindex(table.index)
    figure, axis = plt.subplots(figsize=(8, 3.4))
    table.plot.bar(ax=axis, rot=0, width=0.75)
    axis.plot(range(len(baseline)), baseline.to_numpy(), "k_", markersize=22, label="uniform map (lesion's area)")
    axis.set(ylim=(0, 1), ylabel="share of Grad-CAM on the lesion", xlabel="",
             title="Does the model look at the lesion? (test images)")
    axis.legend(fontsize=7)
    axis.grid(axis="y", alpha=0.3)
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
    figure, axes = plt.subplots(rows, columns, figsize=(2.1 * columns, 2.0 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, row in zip(axes.flat, chosen):
        heat, _ = grad_cam(model, pixels[row], int(predicted[row]),
                           metadata=None if metadata is None else metadata[row])
        axis.imshow(_with_outline(overlay_heat(pixels[row], heat), masks[row]))
        axis.set_title(f"true {CLASSES[labels[row]]}, said {CLASSES[predicted[row]]}\n{confidence[row]:.0%} sure",
                       fontsize=7)
    figure.suptitle("Most confident mistakes on the test split (Grad-CAM of the wrong class; green: lesion)",
                    fontsize=9)
    figure.tight_layout()
    return figure

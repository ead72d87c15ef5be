"""Method diagrams: a network or a training pipeline as boxes joined by arrows.

Drawn with matplotlib from the numbers the chapters compute (a layer table, the shapes of a cut backbone), so a
diagram cannot drift from the code it describes. Chapter 02 draws its CNN, chapter 03 the two-stage transfer;
the slides reuse both.
"""

from __future__ import annotations

import os

import numpy as np

KIND_COLOURS = {"data": "#e8eef5", "fixed": "#f3e6c8", "frozen": "#d5d8dc", "trained": "#cfe8d0"}
"""Box colours: data (inputs, stored maps, outputs), fixed operations, frozen pretrained parts, trained parts."""

KIND_NAMES = {"data": "data", "fixed": "fixed operation", "frozen": "frozen (ImageNet)", "trained": "trained here"}


def plot_flow(steps, *, title="", heights=None, note="", width=None, fontsize=7.5):
    """Boxes left to right, joined by arrows.

    Parameters
    ----------
    steps : list of (str, str)
        ``(text, kind)`` per box; ``kind`` is one of :data:`KIND_COLOURS` (it picks the colour and the legend).
    title : str, default=""
    heights : list of float, default=None
        Relative box heights (0-1], e.g. to show a map shrinking; the labels then go under the boxes.
        None: all boxes full height, labels inside.
    note : str, default=""
        A line of text under the boxes.
    width : float, default=None
        Figure width in inches; None: 1.6 per box (scaled with ``fontsize``).
    fontsize : float, default=7.5
        Size of the box labels; larger for slides, where the figure is shrunk to fit.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_flow([("image", "data"), ("network", "trained"), ("7 probabilities", "data")])
    >>> len(figure.axes[0].patches)
    3
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch, Patch

    unknown = {kind for _, kind in steps} - set(KIND_COLOURS)
    if unknown:
        raise ValueError(f"unknown box kind {sorted(unknown)}; use one of {list(KIND_COLOURS)}.")
    shrink = heights is not None  # Box heights carry a size: labels go under the boxes, where they always fit.
    heights = list(heights) if shrink else [1.0] * len(steps)
    count = len(steps)
    scale = fontsize / 7.5
    figure, axis = plt.subplots(figsize=(width or (1.6 * count + 0.4) * scale,
                                         ((3.0 if shrink else 2.8) + (0.3 if note else 0)) * scale))
    gap, box = 0.35, 1.0
    middle = 0.5
    for index, ((text, kind), height) in enumerate(zip(steps, heights)):
        left, half = index * (box + gap), 0.5 * min(1.0, max(0.04 if shrink else 0.25, height))
        axis.add_patch(FancyBboxPatch((left, middle - half), box, 2 * half,
                                      boxstyle="round,pad=0.02,rounding_size=0.03" if shrink else
                                      "round,pad=0.02,rounding_size=0.06",
                                      facecolor=KIND_COLOURS[kind], edgecolor="#555555", linewidth=0.8))
        if shrink:
            axis.text(left + box / 2, -0.08, text, ha="center", va="top", fontsize=fontsize)
        else:
            axis.text(left + box / 2, middle, text, ha="center", va="center", fontsize=fontsize, wrap=True)
        if index:
            axis.annotate("", xy=(left, middle), xytext=(left - gap, middle),
                          arrowprops=dict(arrowstyle="-|>", color="#333333", lw=1))
    total = count * box + (count - 1) * gap
    bottom = (-0.75 if shrink else -0.05) - (0.15 if note else 0)
    axis.set(xlim=(-0.05, total + 0.05), ylim=(bottom, 1.12))
    axis.axis("off")
    if note:
        axis.text(total / 2, bottom + 0.1, note, ha="center", va="center", fontsize=fontsize + 0.5, style="italic")
    used = [kind for kind in KIND_COLOURS if kind in {k for _, k in steps}]
    axis.legend(handles=[Patch(facecolor=KIND_COLOURS[k], edgecolor="#555555", label=KIND_NAMES[k]) for k in used],
                loc="upper center", bbox_to_anchor=(0.5, 1.12), ncol=len(used), fontsize=fontsize - 0.5, frameon=False)
    if title:
        figure.suptitle(title, fontsize=fontsize + 2.5)
    figure.tight_layout()
    return figure


def cnn_steps(table, input_shape):
    """Boxes for :func:`plot_flow` from a layer table (:func:`skinlib.models.layer_table`) of a small CNN.

    Returns ``(steps, heights)``: one box for the input and one per row of the table (layer); heights
    are the side of each feature map over the input's (the map halves, the box halves); a flat vector (flatten,
    dense) gets a thin bar, 0.05.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"layer": ["conv", "dense"], "kind": ["Conv2D", "Dense"],
    ...                       "output shape": ["32 x 32 x 16", "7"], "parameters": [448, 16394]})
    >>> steps, heights = cnn_steps(table, (64, 64, 3))
    >>> [kind for _, kind in steps], [round(h, 2) for h in heights]
    (['data', 'trained', 'trained'], [1.0, 0.5, 0.05])
    """
    return _cnn_boxes(table, input_shape, merge=False)


SHORT_KINDS = {"Conv2D": "conv", "MaxPooling2D": "max pool", "Flatten": "flatten", "Dense": "dense"}
"""Layer kinds as :func:`cnn_blocks` writes them."""


def cnn_blocks(table, input_shape):
    """Like :func:`cnn_steps`, but one box per block: each convolution with the pooling after it, and the flatten
    with the dense layer after it. Half as many boxes, for slides.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"layer": ["block1_conv", "block1_pool", "flat", "dense"],
    ...                       "kind": ["Conv2D", "MaxPooling2D", "Flatten", "Dense"],
    ...                       "output shape": ["64 x 64 x 16", "32 x 32 x 16", "16384", "7"],
    ...                       "parameters": [448, 0, 0, 114695]})
    >>> steps, heights = cnn_blocks(table, (64, 64, 3))
    >>> [text.splitlines()[0] for text, _ in steps], heights
    (['input', 'block1', 'dense'], [1.0, 0.5, 0.05])
    """
    return _cnn_boxes(table, input_shape, merge=True)


def _cnn_boxes(table, input_shape, *, merge):
    """The boxes of :func:`cnn_steps` (one per layer) or, with ``merge``, of :func:`cnn_blocks` (one per block)."""
    side = input_shape[0]
    steps = [(f"input\n{' x '.join(str(s) for s in input_shape)}", "data")]
    heights = [1.0]
    rows = [row for _, row in table.iterrows()]
    index = 0
    while index < len(rows):
        group = rows[index:index + 2]
        if not (merge and len(group) == 2
                and (group[0]["kind"], group[1]["kind"]) in (("Conv2D", "MaxPooling2D"), ("Flatten", "Dense"))):
            group = group[:1]
        index += len(group)
        names = [row["layer"] for row in group]
        shape, parameters = str(group[-1]["output shape"]), sum(int(row["parameters"]) for row in group)
        if merge:
            shared = os.path.commonprefix(names).rstrip("_")  # block1_conv1 + block1_pool: "block1"
            label = (f"{shared if len(shared) >= 3 else names[-1]}\n"
                     + " + ".join(SHORT_KINDS.get(row["kind"], row["kind"]) for row in group))
        else:
            label = f"{names[0]}\n{group[0]['kind']}"
        steps.append((f"{label}\n{shape}" + (f"\n{parameters:,} weights" if parameters else ""),
                      "trained" if parameters else "fixed"))
        first = shape.split(" x ")[0]
        heights.append(int(first) / side if " x " in shape and first.isdigit() else 0.05)
    return steps, [float(np.clip(h, 0.05, 1.0)) for h in heights]


def transfer_steps(size, backbone, lower_shape, lower_parameters, upper_parameters, *, views=4,
                   colour_constancy=True):
    """Boxes for :func:`plot_flow` of chapter 03's transfer learning on cached views.

    Parameters
    ----------
    size : tuple (height, width)
        The input size.
    backbone : str
        Its name, e.g. ``"efficientnet_lite0"``.
    lower_shape : tuple
        The stored map's shape (height, width, channels).
    lower_parameters, upper_parameters : int
        Weights of the frozen lower part and of the trained upper part (without the head).
    views : int, default=4
        Stored views per training image.
    colour_constancy : bool or str, default=True
        Whether Shades of Gray is the model's first layer (``"shades_of_gray+intensity"``: followed by
        intensity standardization; :data:`skinlib.acquisition.CONSTANCY`).

    Examples
    --------
    >>> steps = transfer_steps((120, 160), "efficientnet_lite0", (8, 10, 112), 1000, 2000)
    >>> [kind for _, kind in steps]
    ['data', 'fixed', 'frozen', 'data', 'trained', 'data']
    """
    steps = [(f"image\n{size[0]} x {size[1]} x 3", "data")]
    if colour_constancy:
        steps.append(("Shades of Gray\ncolour constancy\n(first layer)", "fixed"))
    if colour_constancy == "shades_of_gray+intensity":
        steps.append(("brightness and\ncontrast set\n(second layer)", "fixed"))
    steps += [(f"{backbone}\nlower blocks\n{lower_parameters:,} weights\nrun once per view", "frozen"),
              (f"stored maps\n{' x '.join(str(s) for s in lower_shape)}\nfloat16\n{views} views per image", "data"),
              (f"upper blocks\n{upper_parameters:,} weights\n+ pooling\n+ new head", "trained"),
              ("7 probabilities\n(TTA: mean\nover 4 flips)", "data")]
    return steps

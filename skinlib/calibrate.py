"""Calibration: do the model's probabilities mean what they say?

A model is calibrated when, of all the lesions it gives 70% confidence, about
70% are right. :func:`expected_calibration_error` measures the gap,
:func:`plot_reliability` draws it, and :func:`fit_temperature` fits one
number on the validation split that softens (T > 1) or sharpens (T < 1) every
prediction without changing which class wins (Guo et al., 2017).
"""

from __future__ import annotations

import numpy as np


def _confidence_bins(labels, probabilities, bins):
    """Top probability, whether it was right, and its equal-width bin (0 to ``bins - 1``), per prediction."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    return confidence, probabilities.argmax(axis=1) == labels, np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)


def expected_calibration_error(labels, probabilities, *, bins=10):
    """The mean gap between confidence and accuracy over equal-width confidence bins, weighted by their size.

    >>> expected_calibration_error(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    0.0
    """
    confidence, correct, which = _confidence_bins(labels, probabilities, bins)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def apply_temperature(probabilities, temperature):
    """Rescale probabilities as softmax(log p / T); T = 1 changes nothing.

    >>> apply_temperature(np.array([[0.5, 0.5]]), 3.0).tolist()
    [[0.5, 0.5]]
    """
    logits = np.log(np.clip(np.asarray(probabilities, dtype="float64"), 1e-12, 1)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def fit_temperature(labels, probabilities):
    """The temperature that minimises the negative log-likelihood on (validation) predictions.

    >>> labels = np.array([0, 0, 0, 1])
    >>> overconfident = np.array([[0.99, 0.01]] * 3 + [[0.99, 0.01]])
    >>> fit_temperature(labels, overconfident) > 1
    True
    """
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels)

    def loss(log_t):
        scaled = apply_temperature(probabilities, np.exp(log_t))
        return -np.log(np.clip(scaled[np.arange(len(labels)), labels], 1e-12, 1)).mean()

    return float(np.exp(minimize_scalar(loss, bounds=(-3, 3), method="bounded").x))


def plot_reliability(labels, versions, *, bins=10, title=""):
    """Reliability diagram: accuracy against confidence per bin, for one or more sets of probabilities.

    ``versions`` maps a label (e.g. "raw", "temperature-scaled") to probabilities. Below the
    diagram, the number of images in each confidence bin: a point over few images says little.

    >>> probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    >>> len(plot_reliability(np.array([0, 1, 1]), {"raw": probabilities}).axes)
    2
    """
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    figure, (axis, counts) = plt.subplots(2, 1, figsize=(4.6, 5.4), sharex=True,
                                          gridspec_kw={"height_ratios": [3, 1]})
    axis.plot([0, 1], [0, 1], ":", color="gray", label="perfect calibration")
    edges = np.linspace(0, 1, bins + 1)
    width = 0.8 / bins / max(1, len(versions))
    for number, (name, probabilities) in enumerate(versions.items()):
        confidence, correct, which = _confidence_bins(labels, probabilities, bins)
        used = [b for b in range(bins) if (which == b).any()]
        line, = axis.plot([confidence[which == b].mean() for b in used], [correct[which == b].mean() for b in used],
                          "o-", label=f"{name} (ECE {expected_calibration_error(labels, probabilities, bins=bins):.3f})")
        counts.bar(edges[:-1] + 0.1 / bins + (number + 0.5) * width, np.bincount(which, minlength=bins), width=width,
                   color=line.get_color())
    axis.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title=title or "reliability")
    axis.legend(fontsize=7, loc="upper left")
    axis.grid(alpha=0.3)
    counts.set(xlabel="confidence (top probability)", ylabel="images")
    counts.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure

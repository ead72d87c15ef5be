"""Metrics and plots: accuracy is never reported alone.

A model that calls every lesion a nevus is right two times in three on
HAM10000, so every evaluation here reports balanced accuracy (mean per-class
recall), per-class recall and AUC beside accuracy, plus the binary
malignant-vs-benign view: P(malignant) = P(mel) + P(bcc) + P(akiec).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skinlib.data import CLASSES, MALIGNANT

MALIGNANT_INDEX = [CLASSES.index(dx) for dx in MALIGNANT]


def predict_proba(model, images, *, metadata=None, batch_size=256):
    """Class probabilities of shape (n, 7), through :func:`skinlib.pipeline.evaluation_dataset`.

    ``images`` are uint8 or float pixels (or feature vectors for a head);
    ``metadata`` is the second input of a two-input model.
    """
    from skinlib import pipeline

    batches = pipeline.evaluation_dataset(images, batch_size=batch_size, metadata=metadata)
    return model.predict(batches, verbose=0)


TTA_VIEWS = ("identity", "flip_left_right", "flip_up_down", "rotate_180")
"""The test-time views: the image and its three flips (each keeps the image's shape)."""


def view(images, name):
    """One test-time view of a batch of images (n, height, width, 3).

    >>> view(np.arange(4).reshape(1, 2, 2, 1), "rotate_180")[0, :, :, 0].tolist()
    [[3, 2], [1, 0]]
    """
    images = np.asarray(images)
    steps = {"identity": (slice(None), slice(None)), "flip_left_right": (slice(None), slice(None, None, -1)),
             "flip_up_down": (slice(None, None, -1), slice(None)),
             "rotate_180": (slice(None, None, -1), slice(None, None, -1))}
    if name not in steps:
        raise ValueError(f"view must be one of {list(steps)}. Got {name!r} instead.")
    return images[(slice(None), *steps[name])]


def predict_tta(model, images, *, metadata=None, views=TTA_VIEWS, batch_size=256):
    """Test-time augmentation: the mean of the class probabilities over flipped copies of each image.

    A lesion has no up or left, so the model should say the same of every
    flip; averaging its answers smooths out what it learned by chance about
    orientation. Costs one prediction pass per view.
    """
    total = 0
    for name in views:
        total = total + predict_proba(model, view(images, name), metadata=metadata, batch_size=batch_size)
    return total / len(views)


def malignant_probability(probabilities):
    """P(malignant): the summed probability of mel, bcc and akiec.

    >>> malignant_probability(np.array([[0.1, 0.2, 0.0, 0.0, 0.3, 0.4, 0.0]])).round(2).tolist()
    [0.6]
    """
    return np.asarray(probabilities)[:, MALIGNANT_INDEX].sum(axis=1)


def youden_threshold(is_malignant, p_malignant):
    """The threshold on P(malignant) that maximises sensitivity + specificity - 1 (Youden's J).

    >>> youden_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.8
    """
    from sklearn.metrics import roc_curve

    false_positive, true_positive, thresholds = roc_curve(is_malignant, p_malignant)
    best = int(np.argmax(true_positive - false_positive))
    return float(min(thresholds[best], 1.0))


def classification_metrics(labels, probabilities, *, threshold=None):
    """Accuracy, balanced accuracy, macro AUC, per-class recall and the malignant view.

    Parameters
    ----------
    labels : array-like of shape (n,)
        True class indices (0-6, in the order of ``CLASSES``).
    probabilities : array-like of shape (n, 7)
    threshold : float, default=None
        Threshold on P(malignant) for the binary recall and specificity;
        None chooses it on these data by Youden's J (only do that on validation).

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``macro_auc``, ``malignant_auc``,
        ``malignant_threshold``, ``malignant_recall``, ``malignant_specificity``,
        and ``recall_<class>`` for each class.

    Examples
    --------
    >>> labels = np.array([5, 5, 4, 0])
    >>> probabilities = np.eye(7)[[5, 5, 5, 0]] * 0.9 + 0.1 / 7
    >>> metrics = classification_metrics(labels, probabilities)
    >>> metrics["accuracy"], round(metrics["balanced_accuracy"], 3)
    (0.75, 0.667)
    """
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    present = np.unique(labels)
    result = {
        "accuracy": float((predicted == labels).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "macro_auc": float(np.mean([roc_auc_score(labels == k, probabilities[:, k]) for k in present]))
        if len(present) > 1 else float("nan"),
    }
    is_malignant = np.isin(labels, MALIGNANT_INDEX)
    p_malignant = malignant_probability(probabilities)
    if 0 < is_malignant.sum() < len(labels):
        threshold = youden_threshold(is_malignant, p_malignant) if threshold is None else threshold
        flagged = p_malignant >= threshold
        result.update(
            malignant_auc=float(roc_auc_score(is_malignant, p_malignant)),
            malignant_threshold=float(threshold),
            malignant_recall=float(flagged[is_malignant].mean()),
            malignant_specificity=float((~flagged[~is_malignant]).mean()),
        )
    for index, dx in enumerate(CLASSES):
        members = labels == index
        result[f"recall_{dx}"] = float((predicted[members] == index).mean()) if members.any() else float("nan")
    return result


def metrics_table(metrics):
    """The headline metrics of a run as a one-column table for display."""
    keys = ["accuracy", "balanced_accuracy", "macro_auc", "malignant_auc", "malignant_recall",
            "malignant_specificity"] + [f"recall_{dx}" for dx in CLASSES]
    return pd.Series({key: metrics[key] for key in keys if key in metrics}, name="validation").round(3).to_frame()


def plot_history(history, *, title=""):
    """Learning curves: loss and (balanced) accuracy per epoch, training against validation."""
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    epochs = history.index
    left.plot(epochs, history["loss"], "o-", label="training")
    left.plot(epochs, history["val_loss"], "o-", label="validation")
    left.set_title("loss")
    right.plot(epochs, history["accuracy"], "o-", label="training accuracy")
    right.plot(epochs, history["val_accuracy"], "o-", label="validation accuracy")
    right.plot(epochs, history["val_balanced_accuracy"], "s--", label="validation balanced accuracy")
    right.set_title("accuracy")
    best = history["val_balanced_accuracy"].idxmax()
    for axis in (left, right):
        axis.axvline(best, color="gray", linestyle=":", linewidth=1)
        axis.set_xlabel("epoch")
        axis.legend(fontsize=7)
    figure.suptitle(f"{title} (dotted line: best epoch, kept)".strip(), fontsize=10)
    figure.tight_layout()
    return figure


def confusion(labels, predicted):
    """Confusion matrix as a DataFrame (rows: true class, columns: predicted)."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(labels, predicted, labels=list(range(len(CLASSES))))
    return pd.DataFrame(matrix, index=pd.Index(CLASSES, name="true"), columns=pd.Index(CLASSES, name="predicted"))


def plot_confusion(labels, probabilities, *, title=""):
    """Confusion matrices side by side: counts, and each row as a share of its class (recall on the diagonal)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    counts = confusion(labels, np.asarray(probabilities).argmax(axis=1))
    shares = counts.div(counts.sum(axis=1).replace(0, 1), axis=0)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", cbar=False, ax=left, annot_kws={"fontsize": 8})
    sns.heatmap(shares, annot=True, fmt=".2f", cmap="Blues", cbar=False, ax=right, vmin=0, vmax=1,
                annot_kws={"fontsize": 8})
    left.set_title("counts")
    right.set_title("share of each true class (diagonal: recall)")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def plot_comparison(results, *, metrics=("accuracy", "balanced_accuracy", "macro_auc"), title=""):
    """Grouped bars of the headline metrics for several runs (rows of the results table)."""
    import matplotlib.pyplot as plt

    table = results.set_index("name")[list(metrics)]
    figure, axis = plt.subplots(figsize=(max(6, 1.1 * len(table)), 3.6))
    table.plot.bar(ax=axis, rot=30, width=0.8)
    axis.set_ylim(0, 1)
    axis.set_ylabel("validation score")
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    axis.set_title(title)
    axis.set_xlabel("")
    figure.tight_layout()
    return figure


def report(experiment, *, show=True):
    """Show an experiment's validation metrics, learning curves and confusion matrices in a notebook.

    Returns the two figures (learning curves, confusion) after displaying them.
    """
    import matplotlib.pyplot as plt
    from IPython.display import display

    run = experiment.run
    summary = metrics_table(experiment.metrics).T
    summary.insert(0, "parameters", run.model.count_params())
    summary.insert(1, "best epoch", f"{run.best_epoch} of {len(run.history)}")
    summary.insert(2, "train time", f"{run.seconds:.0f} s")
    figures = (plot_history(run.history, title=run.name),
               plot_confusion(experiment.labels, experiment.probabilities, title=f"{run.name}, validation"))
    if show:
        display(summary)
        for figure in figures:
            display(figure)
            plt.close(figure)
    return figures


HEADLINE = ("accuracy", "balanced_accuracy", "macro_auc", "malignant_recall")


def change(before, after, *, metrics=HEADLINE):
    """Table of headline validation metrics before and after one change, with the difference.

    >>> change({"name": "a", "accuracy": 0.5}, {"name": "b", "accuracy": 0.6}, metrics=("accuracy",))
              a    b  change
    accuracy  0.5  0.6     0.1
    """
    names = [before.get("name", "before"), after.get("name", "after")]
    table = pd.DataFrame({names[0]: [before[m] for m in metrics], names[1]: [after[m] for m in metrics]},
                         index=list(metrics))
    table["change"] = table[names[1]] - table[names[0]]
    return table.round(3)


def describe_change(before, after, *, metric="balanced_accuracy"):
    """One sentence saying how a metric moved between two runs.

    >>> describe_change({"name": "a", "balanced_accuracy": 0.40}, {"name": "b", "balanced_accuracy": 0.45})
    'b against a: balanced accuracy rose by 0.050 (0.400 to 0.450).'
    """
    old, new = before[metric], after[metric]
    verb = "rose" if new > old else "fell" if new < old else "did not change"
    amount = f" by {abs(new - old):.3f}" if new != old else ""
    return (f"{after.get('name', 'after')} against {before.get('name', 'before')}: {metric.replace('_', ' ')} "
            f"{verb}{amount} ({old:.3f} to {new:.3f}).")

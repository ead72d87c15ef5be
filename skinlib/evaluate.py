"""Metrics and plots: accuracy is never reported alone.

A model that calls every lesion a nevus is right two times in three on
HAM10000, so every evaluation here reports balanced accuracy (mean per-class
recall), per-class recall and AUC beside accuracy, plus the binary
malignant-vs-benign view: P(malignant) = P(mel) + P(bcc) + P(akiec).
"""

from __future__ import annotations

import warnings

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


def predict_tta_heads(model, heads, images, *, identity_features=None, views=TTA_VIEWS):
    """:func:`predict_tta` for several heads that share one base: the base runs once per view, not once per head.

    Parameters
    ----------
    model : keras.Model
        A :func:`skinlib.models.classifier`; its pooled features feed the heads.
    heads : dict
        ``{name: (head, metadata)}``: a :func:`skinlib.models.head` on those
        features, with the metadata array of a two-input head (else None).
    images : ndarray of shape (n, height, width, 3)
    identity_features : ndarray, default=None
        The pooled features of the unflipped images, when already computed.

    Returns
    -------
    dict of ndarray of shape (n, 7), by head name
    """
    from skinlib.train import extract_features

    totals = dict.fromkeys(heads, 0)
    for name in views:
        if name == "identity" and identity_features is not None:
            features = identity_features
        else:
            features = extract_features(model, view(images, name), description=f"{name} features")
        for head_name, (head, metadata) in heads.items():
            totals[head_name] = totals[head_name] + predict_proba(head, features, metadata=metadata)
    return {name: total / len(views) for name, total in totals.items()}


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
    from sklearn.metrics import roc_auc_score

    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    result = headline(labels, probabilities)
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


# ---------------------------------------------------------------------------------------------------------------
# Chapter 04: the test evaluation, with uncertainty
# ---------------------------------------------------------------------------------------------------------------

def headline(labels, probabilities):
    """Accuracy, balanced accuracy and macro AUC (one-vs-rest) of one set of predictions.

    >>> headline(np.array([0, 1, 1]), np.eye(7)[[0, 1, 0]])["accuracy"]
    0.6666666666666666
    """
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    present = np.unique(labels)
    with warnings.catch_warnings():  # A class predicted but absent (small groups, resamples): recall is over present.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = float(balanced_accuracy_score(labels, predicted))
    scores = {"accuracy": float((predicted == labels).mean()), "balanced_accuracy": balanced}
    if len(present) > 1:
        aucs = [roc_auc_score(labels == k, probabilities[:, k]) for k in present]
        scores["macro_auc"] = float(np.mean(aucs))
    else:
        scores["macro_auc"] = float("nan")
    return scores


def bootstrap(labels, probabilities, *, groups=None, statistic=headline, n_resamples=1000, seed=0, level=0.95):
    """Bootstrap confidence intervals of the metrics in ``statistic(labels, probabilities)``.

    Resamples **lesions** (``groups``), not images, when given: images of one
    lesion are not independent, and resampling them one by one would make the
    intervals too narrow.

    Returns a DataFrame with ``estimate``, ``low`` and ``high`` per metric
    (percentile intervals).

    >>> labels = np.tile(np.arange(7), 20)
    >>> table = bootstrap(labels, np.eye(7)[labels], n_resamples=50)
    >>> table.loc["accuracy"].tolist()
    [1.0, 1.0, 1.0]
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    unique, index = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(index == g) for g in range(len(unique))]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(unique), len(unique))])
        draws.append(statistic(labels[rows], probabilities[rows]))
    draws = pd.DataFrame(draws)
    alpha = (1 - level) / 2
    return pd.DataFrame({"estimate": pd.Series(statistic(labels, probabilities)),
                         "low": draws.quantile(alpha), "high": draws.quantile(1 - alpha)})


def per_class_report(labels, probabilities):
    """Precision, recall, F1, AUC and support of each class (one row per class).

    >>> float(per_class_report(np.array([0, 0, 1]), np.eye(7)[[0, 1, 1]]).loc["akiec", "recall"])
    0.5
    """
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    every = list(range(len(CLASSES)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, probabilities.argmax(axis=1),
                                                                     labels=every, zero_division=0)
    auc = [roc_auc_score(labels == k, probabilities[:, k]) if 0 < (labels == k).sum() < len(labels) else np.nan
           for k in every]
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "auc": auc, "support": support},
                        index=pd.Index(CLASSES, name="class"))


def plot_per_class(report_table, *, title=""):
    """Grouped bars of precision, recall and F1 per class, with the class sizes in the labels."""
    import matplotlib.pyplot as plt

    table = report_table[["precision", "recall", "f1"]]
    figure, axis = plt.subplots(figsize=(9, 3.4))
    table.plot.bar(ax=axis, rot=0, width=0.8)
    axis.set_xticklabels([f"{dx}\n(n={n})" for dx, n in report_table["support"].items()])
    axis.set_ylim(0, 1)
    axis.grid(axis="y", alpha=0.3)
    axis.set_title(title)
    axis.set_xlabel("")
    figure.tight_layout()
    return figure


def plot_roc_pr(labels, probabilities, *, title=""):
    """One-vs-rest ROC curves (with AUC) and precision-recall curves (with average precision), per class."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    from skinlib.explore import class_colours

    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    colours = class_colours()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for k, dx in enumerate(CLASSES):
        truth = labels == k
        if not 0 < truth.sum() < len(truth):
            continue
        fpr, tpr, _ = roc_curve(truth, probabilities[:, k])
        left.plot(fpr, tpr, color=colours[dx], label=f"{dx} (AUC {roc_auc_score(truth, probabilities[:, k]):.2f})")
        precision, recall, _ = precision_recall_curve(truth, probabilities[:, k])
        right.plot(recall, precision, color=colours[dx],
                   label=f"{dx} (AP {average_precision_score(truth, probabilities[:, k]):.2f}; base {truth.mean():.2f})")
    left.plot([0, 1], [0, 1], ":", color="gray")
    left.set(xlabel="false positive rate (1 - specificity)", ylabel="true positive rate (recall)", title="ROC")
    right.set(xlabel="recall", ylabel="precision", title="precision-recall")
    for axis in (left, right):
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def threshold_for_sensitivity(is_malignant, p_malignant, sensitivity=0.90):
    """The highest threshold on P(malignant) whose sensitivity is at least ``sensitivity`` (set it on validation).

    >>> threshold_for_sensitivity(np.array([0, 1, 1, 1]), np.array([0.2, 0.3, 0.6, 0.9]), 0.6)
    0.6
    """
    from sklearn.metrics import roc_curve

    _, tpr, thresholds = roc_curve(is_malignant, p_malignant, drop_intermediate=False)
    return float(min(thresholds[np.flatnonzero(tpr >= sensitivity)[0]], 1.0))


def screening(labels, probabilities, threshold):
    """Sensitivity, specificity, PPV and NPV of "malignant" at a fixed threshold on P(malignant)."""
    truth = np.isin(np.asarray(labels), MALIGNANT_INDEX)
    flagged = malignant_probability(probabilities) >= threshold
    tp, fn = int((flagged & truth).sum()), int((~flagged & truth).sum())
    tn, fp = int((~flagged & ~truth).sum()), int((flagged & ~truth).sum())
    share = lambda a, b: a / (a + b) if a + b else float("nan")  # noqa: E731
    return {"threshold": threshold, "sensitivity": share(tp, fn), "specificity": share(tn, fp),
            "ppv": share(tp, fp), "npv": share(tn, fn), "flagged": int(flagged.sum()), "malignant": int(truth.sum())}


def plot_screening(labels, probabilities, threshold, *, title=""):
    """ROC of malignant against benign, with the operating point of ``threshold`` marked."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    truth = np.isin(np.asarray(labels), MALIGNANT_INDEX)
    p = malignant_probability(probabilities)
    fpr, tpr, _ = roc_curve(truth, p)
    point = screening(labels, probabilities, threshold)
    figure, axis = plt.subplots(figsize=(4.6, 4.2))
    axis.plot(fpr, tpr, label=f"AUC {roc_auc_score(truth, p):.3f}")
    axis.plot(1 - point["specificity"], point["sensitivity"], "o", color="crimson",
              label=f"threshold {threshold:.3f}: sensitivity {point['sensitivity']:.2f}, "
                    f"specificity {point['specificity']:.2f}")
    axis.plot([0, 1], [0, 1], ":", color="gray")
    axis.set(xlabel="1 - specificity", ylabel="sensitivity", title=title or "malignant vs benign")
    axis.legend(fontsize=7, loc="lower right")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def subgroups(table, labels, probabilities, column, *, minimum=20):
    """Accuracy and balanced accuracy within each value of a metadata ``column`` (groups under ``minimum`` pooled).

    ``table`` holds the metadata rows of the predictions, in the same order.
    """
    values = pd.Series(table[column].fillna("unknown").astype(str).to_numpy(dtype=object))
    counts = values.value_counts()
    small = set(counts[counts < minimum].index)
    values = values.map(lambda value: f"other (<{minimum} each)" if value in small else value)
    rows = {}
    for value in values.unique():
        mask = (values == value).to_numpy()
        scores = headline(np.asarray(labels)[mask], np.asarray(probabilities)[mask])
        rows[value] = {"images": int(mask.sum()), "accuracy": scores["accuracy"],
                       "balanced_accuracy": scores["balanced_accuracy"],
                       "malignant_share": float(np.isin(np.asarray(labels)[mask], MALIGNANT_INDEX).mean())}
    return pd.DataFrame(rows).T.sort_values("images", ascending=False).rename_axis(column)


def age_band(ages):
    """Age bands of 20 years for subgroup tables ("unknown" for missing ages).

    >>> age_band(pd.Series([5.0, 45.0, None])).tolist()
    ['0-19', '40-59', 'unknown']
    """
    bands = pd.cut(ages, [0, 20, 40, 60, 80, 200], right=False, labels=["0-19", "20-39", "40-59", "60-79", "80+"])
    return bands.astype(str).where(ages.notna(), "unknown")

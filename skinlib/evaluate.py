"""Plots and notebook reports of an evaluation (the numbers themselves are in :mod:`skinlib.metrics`).

Learning curves, confusion matrices, comparisons of runs, per-class bars,
ROC and precision-recall curves and the screening operating point. Every
function returns a matplotlib Figure (:func:`report` also displays them).
"""

from __future__ import annotations

import numpy as np

from skinlib.data import CLASSES
from skinlib.metrics import (MALIGNANT_INDEX, confusion, malignant_probability, metrics_table, own_decisions,
                             screening)


def plot_history(history, *, title=""):
    """Learning curves: loss and (balanced) accuracy per epoch, training against validation.

    Parameters
    ----------
    history : DataFrame
        One row per epoch (index from 1) with ``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy`` and ``val_balanced_accuracy``
        (:attr:`skinlib.train.Run.history`).
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure
        Loss on the left, accuracies on the right; a dotted line marks the best epoch.

    Examples
    --------
    >>> import pandas as pd
    >>> history = pd.DataFrame({"loss": [1.0, 0.8], "accuracy": [0.6, 0.7], "val_loss": [1.1, 0.9],
    ...                         "val_accuracy": [0.6, 0.65], "val_balanced_accuracy": [0.3, 0.4]}, index=[1, 2])
    >>> len(plot_history(history, title="toy").axes)
    2
    """
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


def plot_confusion(labels, probabilities, *, title=""):
    """Confusion matrices side by side: counts, and each row as a share of its class (recall on the diagonal).

    Parameters
    ----------
    labels : array-like of shape (n,)
        True class indices.
    probabilities : array-like of shape (n, 7)
        The predicted class is the most probable one.
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_confusion(np.array([0, 1, 1]), np.eye(7)[[0, 1, 0]], title="toy")
    >>> [axis.get_title() for axis in figure.axes]
    ['counts', 'share of each true class (diagonal: recall)']
    """
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


def plot_comparison(results, *, metrics=("accuracy", "balanced_accuracy", "macro_auc"), title="", errors=None):
    """Grouped bars of the headline metrics for several runs (rows of the results table).

    Parameters
    ----------
    results : DataFrame
        One row per run, with a ``name`` column and one column per metric
        (:func:`skinlib.artefacts.read_results`).
    metrics : sequence of str, default=("accuracy", "balanced_accuracy", "macro_auc")
    title : str, default=""
    errors : DataFrame, default=None
        Error bars: indexed by run name, one column per metric (e.g. the standard deviation over seeds from
        :func:`skinlib.metrics.seed_spread`); runs or metrics missing from it get none (no zero-length caps).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"name": ["a", "b"], "accuracy": [0.7, 0.8], "balanced_accuracy": [0.4, 0.5],
    ...                      "macro_auc": [0.8, 0.9]})
    >>> [label.get_text() for label in plot_comparison(runs).axes[0].get_xticklabels()]
    ['a', 'b']
    """
    import matplotlib.pyplot as plt

    table = results.set_index("name")[list(metrics)]
    figure, axis = plt.subplots(figsize=(max(6, 1.1 * len(table)), 3.6))
    yerr = None if errors is None else errors.reindex(index=table.index, columns=table.columns)
    table.plot.bar(ax=axis, rot=30, width=0.8, yerr=yerr, capsize=2, error_kw={"elinewidth": 0.8})
    plt.setp(axis.get_xticklabels(), ha="right", rotation_mode="anchor")  # Long names end under their bars.
    axis.set_ylim(0, 1)
    axis.set_ylabel("validation score")
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # Beside the bars, never over them.
    axis.set_title(title)
    axis.set_xlabel("")
    figure.tight_layout()
    return figure


def generalisation_gap(experiments):
    """Training against validation accuracy at each run's kept (best) epoch.

    Training accuracy is Keras's running mean over the epoch's batches, as
    trained: with dropout and augmentation on where the run used them (not
    weighted by class weights). Losses are left out: the training loss
    includes the L2 penalty and the class weights, the validation loss not.

    Parameters
    ----------
    experiments : sequence of skinlib.train.Experiment

    Returns
    -------
    DataFrame
        One row per run: ``best epoch``, ``training accuracy``,
        ``validation accuracy`` and ``accuracy gap`` (training minus
        validation).
    """
    import pandas as pd

    rows = {}
    for experiment in experiments:
        epoch = experiment.run.history.loc[experiment.run.best_epoch]
        rows[experiment.name] = {"best epoch": experiment.run.best_epoch, "training accuracy": epoch["accuracy"],
                                 "validation accuracy": epoch["val_accuracy"],
                                 "accuracy gap": epoch["accuracy"] - epoch["val_accuracy"]}
    table = pd.DataFrame(rows).T.astype(float).round(3).rename_axis("run")
    return table.astype({"best epoch": int})


def plot_generalisation_gap(gap, *, title=""):
    """Bars of training and validation accuracy per run with the gap between them (:func:`generalisation_gap`).

    Examples
    --------
    >>> import pandas as pd
    >>> gap = pd.DataFrame({"training accuracy": [0.9, 0.75], "validation accuracy": [0.7, 0.74]}, index=["a", "b"])
    >>> gap["accuracy gap"] = gap["training accuracy"] - gap["validation accuracy"]
    >>> len(plot_generalisation_gap(gap).axes)
    2
    """
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    gap[["training accuracy", "validation accuracy"]].plot.bar(ax=left, rot=30, width=0.8)
    left.set_ylim(0, 1.15)  # Room above the bars for the legend.
    left.set_xticks(range(len(gap)), gap.index, rotation=30, ha="right")
    left.set_xlabel("")
    left.set_title("accuracy at the kept epoch")
    left.legend(fontsize=8, loc="upper center", ncols=2)
    left.grid(axis="y", alpha=0.3)
    colours = ["tab:red" if value > 0 else "tab:green" for value in gap["accuracy gap"]]
    right.bar(range(len(gap)), gap["accuracy gap"], color=colours)
    right.axhline(0, color="black", linewidth=0.8)
    right.set_xticks(range(len(gap)), gap.index, rotation=30, ha="right")
    right.set_title("gap: training minus validation accuracy")
    right.grid(axis="y", alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def plot_learning_rates(schedules, total_steps, *, title="Learning rate during training"):
    """The learning rate at every step for several schedules (numbers or Keras schedules).

    Parameters
    ----------
    schedules : dict
        Label to what :func:`skinlib.train.learning_rate_schedule` returns.
    total_steps : int

    Examples
    --------
    >>> len(plot_learning_rates({"constant": 0.001}, 100).axes)
    1
    """
    import matplotlib.pyplot as plt

    steps = np.arange(total_steps + 1)
    figure, axis = plt.subplots(figsize=(6.5, 3.0))
    for label, schedule in schedules.items():
        values = [float(schedule(step)) for step in steps] if callable(schedule) else [float(schedule)] * len(steps)
        axis.plot(steps, values, label=label)
    axis.set_xlabel("training step")
    axis.set_ylabel("learning rate")
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def report(experiment, *, show=True):
    """Show an experiment's validation metrics, learning curves and confusion matrices in a notebook.

    Parameters
    ----------
    experiment : skinlib.train.Experiment
        From :func:`skinlib.train.experiment`.
    show : bool, default=True
        Display the metrics table and both figures (and close the figures).

    Returns
    -------
    tuple of matplotlib.figure.Figure
        The learning curves (:func:`plot_history`) and the confusion matrices (:func:`plot_confusion`).

    Examples
    --------
    >>> figures = report(train.experiment("02_cnn", build, splits, folder=folder, notebook="02"))  # doctest: +SKIP
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


def plot_per_class(report_table, *, title=""):
    """Grouped bars of precision, recall and F1 per class, with the class sizes in the labels.

    Parameters
    ----------
    report_table : DataFrame
        From :func:`skinlib.metrics.per_class_report`.
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from skinlib.metrics import per_class_report
    >>> figure = plot_per_class(per_class_report(np.array([0, 0, 1]), np.eye(7)[[0, 1, 1]]))
    >>> figure.axes[0].get_xticklabels()[0].get_text()
    'akiec\\n(n=2)'
    """
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
    """One-vs-rest ROC curves (with AUC) and precision-recall curves (with average precision), per class.

    A class absent from ``labels`` (or making up all of them) is left out.

    Parameters
    ----------
    labels : array-like of shape (n,)
    probabilities : array-like of shape (n, 7)
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure
        ROC on the left, precision-recall on the right (with each class's base rate).

    Examples
    --------
    >>> labels = np.array([0, 0, 1, 1])
    >>> figure = plot_roc_pr(labels, np.eye(7)[[0, 1, 1, 1]])
    >>> [line.get_label() for line in figure.axes[0].get_lines()][:2]
    ['akiec (AUC 0.75)', 'bcc (AUC 0.75)']
    """
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
        average = average_precision_score(truth, probabilities[:, k])
        right.plot(recall, precision, color=colours[dx], label=f"{dx} (AP {average:.2f}; base {truth.mean():.2f})")
    left.plot([0, 1], [0, 1], ":", color="gray")
    left.set(xlabel="false positive rate (1 - specificity)", ylabel="true positive rate (recall)", title="ROC")
    right.set(xlabel="recall", ylabel="precision", title="precision-recall")
    for axis in (left, right):
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def plot_screening(labels, probabilities, threshold, *, title=""):
    """ROC of malignant against benign, with the operating point of ``threshold`` marked.

    Parameters
    ----------
    labels : array-like of shape (n,)
    probabilities : array-like of shape (n, 7)
    threshold : float
        On P(malignant) (:func:`skinlib.metrics.malignant_probability`), chosen on validation.
    title : str, default=""
        Default "malignant vs benign".

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_screening(np.array([0, 5, 4, 5]), np.eye(7)[[0, 5, 5, 4]], 0.5)
    >>> figure.axes[0].get_lines()[1].get_label()
    'threshold 0.500: sensitivity 0.50, specificity 0.50'
    """
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



def plot_shifts(table, *, metrics=("accuracy", "balanced_accuracy", "malignant_auc"), title=""):
    """Change of each metric under each acquisition shift, against the unshifted images (the first row).

    A score near 0.7 that moves by a few hundredths is invisible on a 0-1 axis, so the bars show the change (red:
    a loss, green: a gain), and each panel's title gives the unshifted score.

    Parameters
    ----------
    table : DataFrame
        One row per shift (index: its name, the first row the unshifted
        images), with a column per metric, as chapter 04 builds it from
        :func:`skinlib.metrics.classification_metrics` of each shifted test split.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"accuracy": [0.8, 0.7], "balanced_accuracy": [0.6, 0.5], "malignant_auc": [0.9, 0.8]},
    ...                      index=["none", "blur"])
    >>> [axis.get_title() for axis in plot_shifts(table).axes]
    ['accuracy (unshifted 0.800)', 'balanced accuracy (unshifted 0.600)', 'malignant auc (unshifted 0.900)']
    """
    import matplotlib.pyplot as plt

    shifted = table.iloc[1:]
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 0.45 * len(shifted) + 1.4), sharey=True)
    for axis, metric in zip(np.atleast_1d(axes), metrics):
        values = table[metric].astype(float)
        change = (values - values.iloc[0]).iloc[1:]
        reach = max(0.02, float(change.abs().max())) * 1.5
        axis.barh(range(len(change)), change, color=["#c44e52" if value < 0 else "#55a868" for value in change])
        axis.axvline(0, color="black", linewidth=0.8)
        for row, value in enumerate(change):  # Beyond the bar's end, on the side it points to.
            axis.text(value + (0.04 if value >= 0 else -0.04) * reach, row, f"{value:+.3f}", va="center",
                      ha="left" if value >= 0 else "right", fontsize=8)
        axis.set_yticks(range(len(change)), shifted.index)
        axis.invert_yaxis()
        axis.set_xlim(-reach, reach)
        axis.set_xlabel("change from the unshifted images")
        axis.grid(axis="x", alpha=0.3)
        axis.set_title(f"{metric.replace('_', ' ')} (unshifted {values.iloc[0]:.3f})")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_decision_tradeoff(table, *, goals=None, title=""):
    """Accuracy against balanced accuracy as the decisions are re-weighted by the class shares, with the goals.

    Each point is one power of :func:`skinlib.metrics.decision_tradeoff` (labelled; positive powers favour the
    frequent classes, negative ones the rare; the ringed point is power 0, the model's own decisions); the shaded
    corner is where both goals are met.

    Parameters
    ----------
    table : DataFrame
        From :func:`skinlib.metrics.decision_tradeoff`.
    goals : dict, default=None
        ``{"accuracy": ..., "balanced_accuracy": ...}``: shades the region that meets both.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"accuracy": [0.7, 0.8], "balanced_accuracy": [0.7, 0.6]},
    ...                      index=pd.Index([0.0, 1.0], name="power"))
    >>> plot_decision_tradeoff(table, goals={"accuracy": 0.85, "balanced_accuracy": 0.75}).axes[0].get_xlabel()
    'balanced accuracy'
    """
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.8))
    x, y = table["balanced_accuracy"].to_numpy(), table["accuracy"].to_numpy()
    axis.plot(x, y, "o-", color="#4c72b0", markersize=4)
    for power, (a, b) in zip(table.index, zip(x, y)):
        axis.annotate(f"{power:g}", (a, b), textcoords="offset points", xytext=(5, 3), fontsize=7, color="#4c72b0")
    own = own_decisions(table)
    axis.plot(own["balanced_accuracy"], own["accuracy"], "o", markersize=11, markerfacecolor="none",
              markeredgecolor="black", label="the model's own decisions (power 0)")
    if goals:
        axis.fill_between([goals["balanced_accuracy"], 1], goals["accuracy"], 1, color="#55a868", alpha=0.2,
                          label="both goals met")
        axis.set_xlim(min(x.min(), goals["balanced_accuracy"]) - 0.05, max(x.max(), goals["balanced_accuracy"]) + 0.05)
        axis.set_ylim(min(y.min(), goals["accuracy"]) - 0.05, max(y.max(), goals["accuracy"]) + 0.05)
    axis.set_xlabel("balanced accuracy")
    axis.set_ylabel("accuracy")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left", fontsize=8)
    axis.set_title(title)
    figure.tight_layout()
    return figure


def plot_data_curve(table, goals, *, title=""):
    """Validation scores against training images (log scale): single runs, their mean, the goal and a line.

    One panel per metric of ``goals`` (balanced accuracy, malignant AUC, ...) and one colour per ``recipe``: dots
    are single runs (one pass, no TTA), the solid line their mean per share (over seeds, and over draws of the
    lesions where a share was drawn more than once, at their mean number of images), the dashed line the
    least-squares line of :func:`skinlib.metrics.scaling_fit` from the recipe's fewest images to twice the most,
    the dotted green line the goal. Each share's tick gives the range of its training images.

    Parameters
    ----------
    table : DataFrame
        From :func:`skinlib.reproduce.recorded_data_curve`.
    goals : dict of str to float

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"recipe": "10 epochs", "train_images": [1000, 2000], "seed": 0,
    ...                       "procedure": "plain", "balanced_accuracy": [0.6, 0.65]})
    >>> plot_data_curve(table, {"balanced_accuracy": 0.75}).axes[0].get_xscale()
    'log'
    """
    import matplotlib.pyplot as plt

    from skinlib.metrics import scaling_fit

    shown = [metric for metric in goals if metric in table]
    if not shown:
        raise ValueError("plot_data_curve needs recorded runs (skinlib.reproduce.recorded_data_curve) with a column "
                         f"for one of the goals {list(goals)}; the table has none (no data_share_*.json recorded?).")
    figure, axes = plt.subplots(1, len(shown), figsize=(5.4 * len(shown), 4.4), squeeze=False)
    plain = table[table["procedure"] == "plain"]
    share = plain["share"] if "share" in plain else plain["train_images"]  # Draws of a share differ a little.
    plain = plain.assign(point=share.to_numpy())
    sizes = plain.groupby("point")["train_images"].agg(["mean", "min", "max"]).sort_values("mean")
    most = plain["train_images"].max()
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fits = scaling_fit(plain, {metric: goals[metric] for metric in shown})
    for axis, metric in zip(axes[0], shown):
        for number, (recipe, runs) in enumerate(plain.groupby("recipe", sort=False)):
            colour = colours[number % len(colours)]
            axis.plot(runs["train_images"], runs[metric], "o", color=colour, alpha=0.35, markersize=4)
            means = runs.groupby("point")[["train_images", metric]].mean().sort_values("train_images")
            axis.plot(means["train_images"], means[metric], "o-", color=colour, label=f"{recipe}: mean over runs")
            if (recipe, metric) not in fits.index:
                continue  # One size of training set: no line.
            fit = fits.loc[(recipe, metric)]
            reach = np.array([runs["train_images"].min(), 2 * most], dtype=float)  # From this recipe's runs.
            line = fit["line at the most images"] + fit["per doubling"] * np.log2(reach / runs["train_images"].max())
            axis.plot(reach, line, "--", color=colour, alpha=0.7,
                      label=f"{recipe}: {fit['per doubling']:+.3f} per doubling")
        axis.axhline(goals[metric], color="#55a868", linestyle=":", label=f"goal {goals[metric]:g}")
        axis.set_xscale("log")
        labels = [f"{low:,}" if low == high else f"{low:,}-\n{high:,}" for low, high in zip(sizes["min"], sizes["max"])]
        axis.set_xticks([*sizes["mean"], 2 * most], labels + [f"{int(2 * most):,}\n(twice)"])
        axis.minorticks_off()
        axis.set_xlabel("training images (log scale)")
        axis.set_ylabel(f"validation {metric.replace('_', ' ').replace('auc', 'AUC')}, one pass")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    figure.suptitle(title)
    figure.tight_layout()
    return figure

"""The numbers of an evaluation: accuracy is never reported alone.

A model that calls every lesion a nevus is right two times in three on
HAM10000, so every evaluation here reports balanced accuracy (mean per-class
recall), per-class recall and AUC beside accuracy, plus the binary
malignant-vs-benign view: P(malignant) = P(mel) + P(bcc) + P(akiec).

Numbers and tables only (NumPy, pandas, scikit-learn); their plots are in
:mod:`skinlib.evaluate`. For the test split (chapter 04) also bootstrap
confidence intervals over lesions, a screening threshold and subgroups.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skinlib.data import CLASSES, MALIGNANT

MALIGNANT_INDEX = [CLASSES.index(dx) for dx in MALIGNANT]
"""The class indices of the malignant diagnoses (mel, bcc, akiec)."""

GOALS = {"balanced_accuracy": 0.75, "accuracy": 0.85, "malignant_auc": 0.95}
"""The project's goals for the final model (issue 14): all three at once, with melanoma recall reported on its own."""

GOAL_NAMES = {"balanced_accuracy": "balanced accuracy", "accuracy": "accuracy", "malignant_auc": "malignant AUC"}
"""The goals' metrics in words, for sentences and slides."""


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
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    result = headline(labels, probabilities)
    is_malignant = np.isin(labels, MALIGNANT_INDEX)
    p_malignant = malignant_probability(probabilities)
    if 0 < is_malignant.sum() < len(labels):
        threshold = youden_threshold(is_malignant, p_malignant) if threshold is None else threshold
        flagged = p_malignant >= threshold
        result.update(
            malignant_threshold=float(threshold),
            malignant_recall=float(flagged[is_malignant].mean()),
            malignant_specificity=float((~flagged[~is_malignant]).mean()),
        )
    for index, dx in enumerate(CLASSES):
        members = labels == index
        result[f"recall_{dx}"] = float((predicted[members] == index).mean()) if members.any() else float("nan")
    return result


def auc(truth, scores):
    """Area under the ROC curve of binary ``truth`` ranked by ``scores``; NaN when only one side is present.

    The chance that a random positive scores above a random negative, ties
    counting half (the Mann-Whitney U statistic): the number
    ``sklearn.metrics.roc_auc_score`` gives (the tests compare them), from one
    rank sort and without its input checks, which cost ten times as much. It
    runs eight times in each of chapter 04's 1,000 bootstrap resamples.

    >>> auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    from scipy.stats import rankdata

    truth, scores = np.asarray(truth), np.asarray(scores, dtype=float)
    if truth.ndim != 1 or truth.shape != scores.shape:
        raise ValueError(f"truth and scores must be 1-D and of one length; got shapes {truth.shape} and "
                         f"{scores.shape}.")
    if truth.dtype != bool:
        if not np.isin(truth, (0, 1)).all():
            raise ValueError(f"truth must be boolean or 0/1; got the values {np.unique(truth)[:5].tolist()}.")
        truth = truth.astype(bool)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN.")
    positives = int(truth.sum())
    negatives = truth.size - positives
    if not positives or not negatives:
        return float("nan")
    ranks = rankdata(scores)  # Ties get their mean rank.
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def headline(labels, probabilities):
    """Accuracy, balanced accuracy, macro AUC (one-vs-rest) and malignant AUC of one set of predictions.

    Balanced accuracy is the mean recall of the classes present in ``labels``
    (as ``sklearn.metrics.balanced_accuracy_score``). The malignant AUC ranks
    P(malignant) (:func:`malignant_probability`) of malignant against benign
    lesions; NaN when only one of the two is present.

    >>> headline(np.array([0, 1, 1]), np.eye(7)[[0, 1, 0]])["accuracy"]
    0.6666666666666666
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    scores = _accuracies(labels, probabilities)
    scores["macro_auc"] = _macro_auc(labels, probabilities)
    scores["malignant_auc"] = auc(np.isin(labels, MALIGNANT_INDEX), malignant_probability(probabilities))
    return scores


def answer_metrics(labels, answers):
    """Accuracy, balanced accuracy, per-class recall and the malignant view of the lesion checker's answers.

    An outside set of images is scored on what the checker's CSV (``python -m skinlib predict ... --csv``) holds:
    each image's top diagnosis, P(malignant), its screening flag and, in answers written since they were added, all
    seven probabilities (then also the macro AUC, as :func:`headline` defines it: over the classes present).

    Parameters
    ----------
    labels : array-like of shape (n,)
        True class indices (0-6, in the order of ``CLASSES``).
    answers : array-like of shape (n, 3) or (n, 10)
        Per image: the top diagnosis (a class index), P(malignant), and whether the image was flagged at the
        screening threshold (1 or 0; NaN in every row when there was no threshold); then, optionally, the seven
        class probabilities, for the macro AUC.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy`` (the mean recall of the classes present), ``malignant_auc``,
        ``sensitivity`` and ``specificity`` at the threshold (when flagged is given), ``macro_auc`` (one-vs-rest,
        over the classes present, when the seven probabilities are given), and ``recall_<class>`` for each class
        present.

    Examples
    --------
    >>> answers = np.array([[5, 0.1, 0], [5, 0.2, 0], [5, 0.4, 1], [0, 0.9, 1]])
    >>> scores = answer_metrics(np.array([5, 5, 4, 0]), answers)
    >>> scores["accuracy"], round(scores["balanced_accuracy"], 3), scores["malignant_auc"], scores["sensitivity"]
    (0.75, 0.667, 1.0, 1.0)
    """
    labels, answers = np.asarray(labels), np.asarray(answers, dtype=float)
    called = answers[:, 0].astype(int)
    truth = np.isin(labels, MALIGNANT_INDEX)
    scores = {**_called_accuracies(labels, called), "malignant_auc": auc(truth, answers[:, 1])}
    if answers.shape[1] >= 3 + len(CLASSES):
        scores["macro_auc"] = _macro_auc(labels, answers[:, 3:3 + len(CLASSES)])
    flagged = answers[:, 2]
    if not np.isnan(flagged).any():
        scores["sensitivity"] = float(flagged[truth].mean()) if truth.any() else float("nan")
        scores["specificity"] = float(1 - flagged[~truth].mean()) if (~truth).any() else float("nan")
    return {**scores, **{f"recall_{CLASSES[k]}": recall for k, recall in _recalls(labels, called).items()}}


def metrics_table(metrics):
    """The headline metrics of a run as a one-column table for display."""
    keys = ["accuracy", "balanced_accuracy", "macro_auc", "malignant_auc", "malignant_recall",
            "malignant_specificity"] + [f"recall_{dx}" for dx in CLASSES]
    return pd.Series({key: metrics[key] for key in keys if key in metrics}, name="validation").round(3).to_frame()


def confusion(labels, predicted):
    """Confusion matrix as a DataFrame (rows: true class, columns: predicted)."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(labels, predicted, labels=list(range(len(CLASSES))))
    return pd.DataFrame(matrix, index=pd.Index(CLASSES, name="true"), columns=pd.Index(CLASSES, name="predicted"))


HEADLINE = ("accuracy", "balanced_accuracy", "macro_auc", "malignant_recall")
"""The metrics :func:`change` compares by default."""


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


def goal_table(goals, reached, *, label="reached", **others):
    """Each goal beside the score reached, other columns (a baseline, an interval) and whether it is met.

    Parameters
    ----------
    goals : dict of str to float
        The least score wanted, by metric.
    reached : dict of str to float
        The scores, by metric; ``met`` compares them at full precision, the table shows three decimals.
    label : str, default="reached"
        The name of the scores' column.
    **others : dict of str to float
        Further columns, by name, shown between the scores and ``met``.

    Examples
    --------
    >>> goal_table({"accuracy": 0.85}, {"accuracy": 0.84999}, label="model", baseline={"accuracy": 0.67})
              goal  model  baseline    met
    accuracy  0.85   0.85      0.67  False
    """
    names = [label, *others]
    if len(set(names)) < len(names) or {"goal", "met"} & set(names):
        raise ValueError(f"the columns' names must differ from each other and from 'goal' and 'met'. Got "
                         f"{names} instead.")
    columns = {"goal": goals, label: reached, **others}
    table = pd.DataFrame({name: {key: round(float(values[key]), 3) for key in goals}
                          for name, values in columns.items()})
    table["met"] = [bool(reached[key] >= goal) for key, goal in goals.items()]
    return table


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


def bootstrap(labels, probabilities, *, groups=None, statistic=headline, n_resamples=1000, seed=0, level=0.95,
              strata=None):
    """Bootstrap confidence intervals of the metrics in ``statistic(labels, probabilities)``.

    Resamples **lesions** (``groups``), not images, when given: images of one
    lesion are not independent, and resampling them one by one would make the
    intervals too narrow. With ``strata`` (one value per image, constant within
    a group: the diagnosis), each stratum's groups are resampled on their own,
    so every resample keeps every stratum and its size (a class of few images
    then never drops out of a balanced accuracy).

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
    if strata is None:
        layers = [np.arange(len(unique))]
    else:
        strata = np.asarray(strata)
        first = strata[[rows[0] for rows in members]]  # Each group's stratum.
        layers = [np.flatnonzero(first == value) for value in np.unique(first)]
    draws = []
    for _ in range(n_resamples):
        chosen = np.concatenate([layer[rng.integers(0, len(layer), len(layer))] for layer in layers])
        rows = np.concatenate([members[g] for g in chosen])
        draws.append(statistic(labels[rows], probabilities[rows]))
    draws = pd.DataFrame(draws)
    alpha = (1 - level) / 2
    return pd.DataFrame({"estimate": pd.Series(statistic(labels, probabilities)),
                         "low": draws.quantile(alpha), "high": draws.quantile(1 - alpha)})


def paired_change(labels, before, after, *, groups=None, n_resamples=1000, seed=0, level=0.95):
    """How much ``after`` changes accuracy and balanced accuracy against ``before``, with a paired bootstrap interval.

    Both sets of predictions are scored on the same resample of lesions (``groups``) each time, so the interval is
    that of the change itself, usually narrower than the two metrics' own intervals would suggest.

    Returns a DataFrame with ``estimate``, ``low`` and ``high`` for ``accuracy`` and ``balanced_accuracy``
    (``after`` minus ``before``).

    >>> labels = np.tile(np.arange(7), 20)
    >>> table = paired_change(labels, np.eye(7)[labels], np.eye(7)[np.roll(labels, 1)], n_resamples=20)
    >>> table.loc["accuracy"].tolist()
    [-1.0, -1.0, -1.0]
    """
    width = np.asarray(before).shape[1]

    def difference(labels, both):
        earlier, later = _accuracies(labels, both[:, :width]), _accuracies(labels, both[:, width:])
        return {key: later[key] - earlier[key] for key in earlier}

    return bootstrap(labels, np.concatenate([before, after], axis=1), groups=groups, statistic=difference,
                     n_resamples=n_resamples, seed=seed, level=level)


def per_class_report(labels, probabilities):
    """Precision, recall, F1, AUC and support of each class (one row per class).

    >>> float(per_class_report(np.array([0, 0, 1]), np.eye(7)[[0, 1, 1]]).loc["akiec", "recall"])
    0.5
    """
    from sklearn.metrics import precision_recall_fscore_support

    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    every = list(range(len(CLASSES)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, probabilities.argmax(axis=1),
                                                                     labels=every, zero_division=0)
    aucs = [auc(labels == k, probabilities[:, k]) for k in every]
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "auc": aucs, "support": support},
                        index=pd.Index(CLASSES, name="class"))


def threshold_for_sensitivity(is_malignant, p_malignant, sensitivity=0.90):
    """The highest threshold on P(malignant) whose sensitivity is at least ``sensitivity`` (set it on validation).

    >>> threshold_for_sensitivity(np.array([0, 1, 1, 1]), np.array([0.2, 0.3, 0.6, 0.9]), 0.6)
    0.6
    """
    from sklearn.metrics import roc_curve

    _, tpr, thresholds = roc_curve(is_malignant, p_malignant, drop_intermediate=False)
    return float(min(thresholds[np.flatnonzero(tpr >= sensitivity)[0]], 1.0))


def screening(labels, probabilities, threshold):
    """Sensitivity, specificity, PPV and NPV of "malignant" at a fixed threshold on P(malignant).

    Also the sensitivity for each malignant class on its own (``sensitivity_mel``, ``sensitivity_bcc``,
    ``sensitivity_akiec``: the share of that class flagged); specificity is always that of the benign lesions.

    >>> point = screening(np.array([4, 4, 1, 5]), np.eye(7)[[4, 5, 1, 5]], 0.5)
    >>> point["sensitivity"], point["sensitivity_mel"], point["specificity"]
    (0.6666666666666666, 0.5, 1.0)
    """
    labels = np.asarray(labels)
    truth = np.isin(labels, MALIGNANT_INDEX)
    flagged = malignant_probability(probabilities) >= threshold
    tp, fn = int((flagged & truth).sum()), int((~flagged & truth).sum())
    tn, fp = int((~flagged & ~truth).sum()), int((flagged & ~truth).sum())
    share = lambda a, b: a / (a + b) if a + b else float("nan")  # noqa: E731
    per_class = {f"sensitivity_{CLASSES[k]}": share(int((flagged & (labels == k)).sum()),
                                                    int((~flagged & (labels == k)).sum())) for k in MALIGNANT_INDEX}
    return {"threshold": threshold, "sensitivity": share(tp, fn), "specificity": share(tn, fp),
            "ppv": share(tp, fp), "npv": share(tn, fn), **per_class, "flagged": int(flagged.sum()),
            "malignant": int(truth.sum())}


def seed_spread(repeats, *, metrics=("accuracy", "balanced_accuracy", "macro_auc")):
    """Mean, standard deviation and count of validation metrics over the seeds of each recipe.

    Parameters
    ----------
    repeats : dict of str to list of dict
        By recipe name, the metrics (:func:`classification_metrics`) of each seed's run.
    metrics : sequence of str

    Returns
    -------
    DataFrame
        One row per recipe; columns (metric, "mean" / "std" / "seeds").

    Examples
    --------
    >>> table = seed_spread({"a": [{"balanced_accuracy": 0.5}, {"balanced_accuracy": 0.7}]},
    ...                     metrics=("balanced_accuracy",))
    >>> table.loc["a"].round(3).tolist()
    [0.6, 0.141, 2.0]
    """
    rows = {}
    for name, runs in repeats.items():
        values = pd.DataFrame([{metric: run[metric] for metric in metrics} for run in runs])
        rows[name] = {(metric, stat): value for metric in metrics
                      for stat, value in (("mean", values[metric].mean()), ("std", values[metric].std()),
                                          ("seeds", float(len(values))))}
    return pd.DataFrame(rows).T


def describe_seed_difference(table, first, second, *, metric="balanced_accuracy"):
    """Say whether two recipes' mean scores differ by more than their spread over seeds.

    Examples
    --------
    >>> table = seed_spread({"a": [{"balanced_accuracy": v} for v in (0.50, 0.52, 0.54)],
    ...                      "b": [{"balanced_accuracy": v} for v in (0.54, 0.55, 0.56)]}, metrics=("balanced_accuracy",))
    >>> print(describe_seed_difference(table, "a", "b"))  # doctest: +NORMALIZE_WHITESPACE
    b against a, balanced accuracy over 3 seeds each: mean 0.550 against 0.520 (+0.030); standard deviations
    0.010 and 0.020. The difference is larger than either spread, but with 3 seeds that is a hint, not proof.
    """
    a, b = table.loc[first], table.loc[second]
    if min(a[(metric, "seeds")], b[(metric, "seeds")]) < 2:
        return (f"{second} against {first}, {metric.replace('_', ' ')}: one seed of at least one recipe, so no "
                "spread to compare the difference with.")
    difference = b[(metric, "mean")] - a[(metric, "mean")]
    spread = max(a[(metric, "std")], b[(metric, "std")])
    verdict = ("The difference is larger than either spread, but with {n} seeds that is a hint, not proof."
               if abs(difference) > spread else
               "The difference is within the spread over seeds: these runs cannot tell the two recipes apart.")
    return (f"{second} against {first}, {metric.replace('_', ' ')} over {int(a[(metric, 'seeds')])} seeds each: "
            f"mean {b[(metric, 'mean')]:.3f} against {a[(metric, 'mean')]:.3f} ({difference:+.3f}); standard "
            f"deviations {b[(metric, 'std')]:.3f} and {a[(metric, 'std')]:.3f}. "
            + verdict.format(n=int(min(a[(metric, "seeds")], b[(metric, "seeds")]))))


def prior_shift(probabilities, priors, power):
    """Probabilities times the class shares to ``power``, renormalised: a decision rule that favours some classes.

    A model trained to treat the classes alike (class weights, balanced
    sampling) decides as if every class were about equally common.
    Multiplying its probabilities by the class shares of the training split
    to a power moves its decisions toward the frequent classes (power > 0) or
    the rare ones (power < 0); power 0 changes nothing. For a calibrated model
    trained with weights inverse to the class counts and no label smoothing,
    power 1 would in theory undo the weighting (the idea behind "logit
    adjustment", Menon et al. 2021); for a real model it is a reference point.

    >>> prior_shift(np.array([[0.5, 0.5]]), np.array([0.8, 0.2]), 1.0).round(2).tolist()
    [[0.8, 0.2]]
    """
    priors = np.asarray(priors, dtype="float64")
    if not (np.isfinite(priors).all() and (priors > 0).all()):
        raise ValueError(f"every class share must be a positive number. Got {priors.round(4).tolist()} instead "
                         "(a class missing from the training split?).")
    shifted = np.asarray(probabilities, dtype="float64") * priors ** power
    return shifted / shifted.sum(axis=1, keepdims=True)


POWERS = tuple(np.round(np.arange(-0.5, 1.51, 0.125), 3))
"""The powers :func:`decision_tradeoff` tries by default: from favouring the rare classes to beyond the training prior."""


def decision_tradeoff(labels, probabilities, priors, *, powers=POWERS):
    """Accuracy and balanced accuracy of the decisions of :func:`prior_shift` over a range of powers.

    Shows what one metric costs in the other when the decision rule, not the
    model, changes: with 67% nevi, calling more lesions a nevus raises
    accuracy (up to a point) and lowers balanced accuracy. Balanced accuracy
    averages the recalls of the classes present in ``labels``.

    Parameters
    ----------
    labels : array-like of shape (n,)
    probabilities : array-like of shape (n, classes)
    priors : array-like of shape (classes,)
        The class shares of the training split, all positive.
    powers : sequence of float
        Must include 0, the model's own decisions.

    Returns
    -------
    DataFrame
        Index ``power`` (ascending); columns ``accuracy`` and ``balanced_accuracy``.

    Examples
    --------
    >>> labels = np.array([0, 0, 0, 1])
    >>> probabilities = np.array([[0.4, 0.6], [0.6, 0.4], [0.6, 0.4], [0.3, 0.7]])
    >>> decision_tradeoff(labels, probabilities, [0.75, 0.25], powers=(0.0, 1.0)).round(3).values.tolist()
    [[0.75, 0.833], [0.75, 0.5]]
    """
    if 0 not in [float(power) for power in powers]:
        raise ValueError(f"powers must include 0 (the model's own decisions). Got {list(powers)} instead.")
    labels = np.asarray(labels)
    rows = {float(power): _accuracies(labels, prior_shift(probabilities, priors, power)) for power in powers}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("power").sort_index()


def tradeoff_table(records):
    """The table of :func:`decision_tradeoff` back from its JSON form (``{"<power>": {metric: value}}``).

    >>> tradeoff_table({"0.5": {"accuracy": 0.8}, "0": {"accuracy": 0.7}}).index.tolist()
    [0.0, 0.5]
    """
    table = pd.DataFrame(records).T.rename_axis("power")
    table.index = table.index.astype(float)
    return table.sort_index()


def own_decisions(table):
    """The row of power 0 of a :func:`decision_tradeoff` table: the model's own decisions.

    >>> own_decisions(pd.DataFrame({"accuracy": [0.7, 0.8]}, index=pd.Index([0.0, 1.0], name="power"))).to_dict()
    {'accuracy': 0.7}
    """
    if 0.0 not in table.index:
        raise ValueError(f"the table has no row for power 0 (the model's own decisions). Got powers "
                         f"{list(table.index)} instead.")
    return table.loc[0.0]


def describe_tradeoff(table, goals):
    """Say in words what :func:`decision_tradeoff` found: the model's own decisions, the extremes, and the goals.

    >>> table = pd.DataFrame({"accuracy": [0.7, 0.8], "balanced_accuracy": [0.7, 0.6]},
    ...                      index=pd.Index([0.0, 1.0], name="power"))
    >>> print(describe_tradeoff(table, {"accuracy": 0.85, "balanced_accuracy": 0.75}))  # doctest: +NORMALIZE_WHITESPACE
    The model's own decisions (power 0): accuracy 0.700, balanced accuracy 0.700. The highest accuracy, 0.800 at
    power 1, comes with balanced accuracy 0.600; the highest balanced accuracy, 0.700 at power 0, with accuracy
    0.700. No power meets both goals (accuracy 0.85, balanced accuracy 0.75): re-weighting the decisions by the
    class shares does not close the gap.
    """
    own = own_decisions(table)
    best_accuracy, best_balanced = table["accuracy"].idxmax(), table["balanced_accuracy"].idxmax()
    met = table[(table["accuracy"] >= goals["accuracy"]) & (table["balanced_accuracy"] >= goals["balanced_accuracy"])]
    text = (f"The model's own decisions (power 0): accuracy {own['accuracy']:.3f}, balanced accuracy "
            f"{own['balanced_accuracy']:.3f}. The highest accuracy, {table.loc[best_accuracy, 'accuracy']:.3f} at "
            f"power {best_accuracy:g}, comes with balanced accuracy {table.loc[best_accuracy, 'balanced_accuracy']:.3f};"
            f" the highest balanced accuracy, {table.loc[best_balanced, 'balanced_accuracy']:.3f} at power "
            f"{best_balanced:g}, with accuracy {table.loc[best_balanced, 'accuracy']:.3f}. ")
    goal_words = f"accuracy {goals['accuracy']:g}, balanced accuracy {goals['balanced_accuracy']:g}"
    if met.empty:
        return text + (f"No power meets both goals ({goal_words}): re-weighting the decisions by the class shares "
                       "does not close the gap.")
    powers = ", ".join(f"{power:g}" for power in met.index)
    return text + (f"{len(met)} of the {len(table)} powers tried meet{'s' if len(met) == 1 else ''} both goals "
                   f"({goal_words}): {powers}.")


def per_class_intervals(labels, probabilities, *, groups=None, n_resamples=1000, seed=0, level=0.95):
    """Recall and precision of each class with bootstrap intervals (resampling ``groups``, the lesions).

    Returns
    -------
    DataFrame
        One row per class: ``recall``, ``recall_low``, ``recall_high``, the same for ``precision``, and
        ``support`` (images of the class).

    Examples
    --------
    >>> labels = np.tile(np.arange(7), 10)
    >>> table = per_class_intervals(labels, np.eye(7)[labels], n_resamples=20)
    >>> table.loc["mel", ["recall", "recall_low", "precision_high", "support"]].tolist()
    [1.0, 1.0, 1.0, 10.0]
    """
    def statistic(y, p):
        called = p.argmax(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return {**{("recall", dx): np.mean(called[y == k] == k) if (y == k).any() else np.nan
                       for k, dx in enumerate(CLASSES)},
                    **{("precision", dx): np.mean(y[called == k] == k) if (called == k).any() else np.nan
                       for k, dx in enumerate(CLASSES)}}

    labels = np.asarray(labels)
    table = bootstrap(labels, probabilities, groups=groups, statistic=statistic, n_resamples=n_resamples, seed=seed,
                      level=level)
    rows = {}
    for dx in CLASSES:
        rows[dx] = {}
        for metric in ("recall", "precision"):
            row = table.loc[[(metric, dx)]].iloc[0]
            rows[dx].update({metric: row["estimate"], f"{metric}_low": row["low"], f"{metric}_high": row["high"]})
        rows[dx]["support"] = float((labels == CLASSES.index(dx)).sum())
    return pd.DataFrame(rows).T.rename_axis("class")


def _recalls(labels, called):
    """The recall of each class present in ``labels``, by class index, of the class indices ``called``."""
    labels, called = np.asarray(labels), np.asarray(called)
    return {int(k): float(np.mean(called[labels == k] == k)) for k in np.unique(labels)}


def _accuracies(labels, probabilities):
    """Accuracy and balanced accuracy (the mean recall of the classes in ``labels``) only."""
    return _called_accuracies(labels, np.asarray(probabilities).argmax(axis=1))


def _called_accuracies(labels, called):
    """Accuracy and balanced accuracy of the class indices ``called``."""
    labels, called = np.asarray(labels), np.asarray(called)
    return {"accuracy": float(np.mean(called == labels)),
            "balanced_accuracy": float(np.mean(list(_recalls(labels, called).values())))}


def _macro_auc(labels, probabilities):
    """The mean one-vs-rest AUC over the classes present in ``labels``; NaN with fewer than two of them."""
    present = np.unique(labels)
    return (float(np.mean([auc(labels == k, probabilities[:, k]) for k in present])) if len(present) > 1
            else float("nan"))


POOLED = "other (<{minimum} each)"
"""The row name :func:`subgroups` gives to the values it pools (too small on their own)."""


def subgroups(table, labels, probabilities, column, *, minimum=20, groups=None, n_resamples=0, seed=0):
    """Accuracy and balanced accuracy within each value of a metadata ``column`` (groups under ``minimum`` pooled).

    Parameters
    ----------
    table : DataFrame
        The metadata rows of the predictions, in the same order.
    labels : array-like of shape (n,)
    probabilities : array-like of shape (n, 7)
    column : str
    minimum : int, default=20
        Values with fewer images are pooled as "other".
    groups : array-like of shape (n,), default=None
        Lesion ids for the bootstrap (images of a lesion drawn together).
    n_resamples : int, default=0
        With more than 0, a 95% bootstrap interval of balanced accuracy within each group
        (``balanced_accuracy_low``, ``balanced_accuracy_high``).
    seed : int, default=0

    Returns
    -------
    DataFrame
        One row per group, largest first: ``images``, ``accuracy``, ``balanced_accuracy`` (with its interval)
        and ``malignant_share``.

    Examples
    --------
    >>> table = pd.DataFrame({"sex": ["male"] * 30 + ["female"] * 30})
    >>> labels = np.tile([4, 5], 30)
    >>> subgroups(table, labels, np.eye(7)[labels], "sex", n_resamples=10)["balanced_accuracy_low"].tolist()
    [1.0, 1.0]
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    values = pd.Series(table[column].fillna("unknown").astype(str).to_numpy(dtype=object))
    counts = values.value_counts()
    small = set(counts[counts < minimum].index)
    values = values.map(lambda value: POOLED.format(minimum=minimum) if value in small else value)
    rows = {}
    for value in values.unique():
        mask = (values == value).to_numpy()
        scores = _accuracies(labels[mask], probabilities[mask])
        rows[value] = {"images": int(mask.sum()), "accuracy": scores["accuracy"],
                       "balanced_accuracy": scores["balanced_accuracy"]}
        if n_resamples:
            interval = bootstrap(labels[mask], probabilities[mask], statistic=_accuracies, n_resamples=n_resamples,
                                 seed=seed, groups=None if groups is None else np.asarray(groups)[mask])
            rows[value].update(balanced_accuracy_low=interval.loc["balanced_accuracy", "low"],
                               balanced_accuracy_high=interval.loc["balanced_accuracy", "high"])
        rows[value]["malignant_share"] = float(np.isin(labels[mask], MALIGNANT_INDEX).mean())
    return pd.DataFrame(rows).T.sort_values("images", ascending=False).rename_axis(column)


def describe_subgroups(tables, overall, *, minimum=20):
    """Say which groups' balanced-accuracy intervals lie wholly above or below the overall estimate.

    A pooled row (:data:`POOLED`, the values too small on their own) that itself holds fewer than ``minimum``
    images is left out: an interval from a handful of images means nothing. The sentence says how many were left
    out; a pooled row of ``minimum`` images or more is judged like any group.

    Parameters
    ----------
    tables : dict of str to DataFrame
        From :func:`subgroups` with ``n_resamples`` > 0, keyed by column.
    overall : float
        The balanced accuracy of all test images.
    minimum : int, default=20
        The smallest pooled row that is judged (:func:`subgroups`' ``minimum``).

    Returns
    -------
    str

    Examples
    --------
    >>> table = pd.DataFrame({"images": [50, 40], "balanced_accuracy": [0.8, 0.5],
    ...                       "balanced_accuracy_low": [0.7, 0.3], "balanced_accuracy_high": [0.9, 0.7]},
    ...                      index=pd.Index(["male", "female"], name="sex"))
    >>> print(describe_subgroups({"sex": table}, 0.65))  # doctest: +NORMALIZE_WHITESPACE
    Of 2 groups, 1 has a 95% interval of balanced accuracy wholly above the overall 0.650 (sex male: 0.800,
    0.700-0.900) and none wholly below; the other one cannot be told apart from the overall score.
    >>> print(describe_subgroups({"sex": table.iloc[:1]}, 0.65))  # doctest: +NORMALIZE_WHITESPACE
    Of 1 group, 1 has a 95% interval of balanced accuracy wholly above the overall 0.650 (sex male: 0.800,
    0.700-0.900) and none wholly below.
    >>> pooled = pd.concat([table, table.iloc[:1].rename(index={"male": "other (<20 each)"}).assign(images=6)])
    >>> print(describe_subgroups({"sex": pooled}, 0.65))  # doctest: +NORMALIZE_WHITESPACE
    Of 2 groups (1 pooled row of fewer than 20 images left out), 1 has a 95% interval of balanced accuracy wholly above
    the overall 0.650 (sex male: 0.800, 0.700-0.900) and none wholly below; the other one cannot be told apart from
    the overall score.
    """
    above, below, total, left_out = [], [], 0, 0
    pooled = POOLED.format(minimum=minimum)
    for column, table in tables.items():
        for value, row in table.iterrows():
            if value == pooled and row["images"] < minimum:
                left_out += 1
                continue
            total += 1
            text = (f"{column} {value}: {row['balanced_accuracy']:.3f}, {row['balanced_accuracy_low']:.3f}-"
                    f"{row['balanced_accuracy_high']:.3f}")
            if row["balanced_accuracy_low"] > overall:
                above.append(text)
            elif row["balanced_accuracy_high"] < overall:
                below.append(text)

    groups = f"Of {total} group{'s' if total != 1 else ''}"
    if left_out:
        groups += f" ({left_out} pooled row{'s' if left_out != 1 else ''} of fewer than {minimum} images left out)"
    if not (above or below):
        return (f"{groups}, none has a 95% interval of balanced accuracy wholly above or below the overall "
                f"{overall:.3f}: none can be told apart from the overall score.")

    def listed(items, where):
        if not items:
            return f"none wholly {where}"
        verb = "has" if len(items) == 1 else "have"
        return (f"{len(items)} {verb} a 95% interval of balanced accuracy wholly {where} the overall {overall:.3f} "
                f"({'; '.join(items)})")

    first, second = (listed(above, "above"), listed(below, "below")) if above else (listed(below, "below"),
                                                                                     listed(above, "above"))
    rest = total - len(above) - len(below)
    others = f"; the other {'one' if rest == 1 else rest} cannot be told apart from the overall score" if rest else ""
    return f"{groups}, {first} and {second}{others}."


def age_band(ages):
    """Age bands of 20 years for subgroup tables ("unknown" for missing ages).

    >>> age_band(pd.Series([5.0, 45.0, None])).tolist()
    ['0-19', '40-59', 'unknown']
    """
    bands = pd.cut(ages, [0, 20, 40, 60, 80, 200], right=False, labels=["0-19", "20-39", "40-59", "60-79", "80+"])
    return bands.astype(str).where(ages.notna(), "unknown")


CONFIRMATION = "dx_type"
"""HAM10000's column saying how each diagnosis was confirmed: ``histo`` (histopathology of the excised lesion),
``follow_up`` (a nevus photographed again over time, unchanged), ``consensus`` (experts) or ``confocal`` (in-vivo
confocal microscopy)."""
EXCISED = "histo"


def recall_by_confirmation(table, labels, probabilities):
    """Each diagnosis's recall within each way it was confirmed (:data:`CONFIRMATION`), with its images.

    Returns a DataFrame indexed by (diagnosis, confirmation), with ``images`` and ``recall``; only the pairs
    that have images appear.

    >>> rows = pd.DataFrame({"dx_type": ["histo", "histo", "follow_up", "follow_up"]})
    >>> labels = np.array([5, 5, 5, 5])
    >>> recall_by_confirmation(rows, labels, np.eye(7)[[4, 5, 5, 5]])["recall"].tolist()
    [1.0, 0.5]
    """
    labels = np.asarray(labels)
    frame = pd.DataFrame({"diagnosis": np.asarray(CLASSES)[labels],
                          "confirmation": table[CONFIRMATION].fillna("unknown").to_numpy(),
                          "correct": np.asarray(probabilities).argmax(axis=1) == labels})
    grouped = frame.groupby(["diagnosis", "confirmation"])["correct"]
    return pd.DataFrame({"images": grouped.size(), "recall": grouped.mean()})


def and_list(names):
    """Names as a sentence lists them.

    >>> and_list(["a"]), and_list(["a", "b"]), and_list(["a", "b", "c"])
    ('a', 'a and b', 'a, b and c')
    """
    names = list(names)
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


CONFIRMED_BY = {"histo": "histopathology", "follow_up": "follow-up", "consensus": "consensus",
                "confocal": "confocal microscopy"}
"""The ways of :data:`CONFIRMATION`, in words, in the order tables show them."""


def confirmation_table(recalls):
    """:func:`recall_by_confirmation` as one narrow table to read: a row per diagnosis, a column per way of
    confirmation, each cell "recall (images)", empty where the pair has no images.

    >>> rows = pd.DataFrame({"dx_type": ["histo", "histo", "follow_up", "histo"]})
    >>> confirmation_table(recall_by_confirmation(rows, np.array([5, 5, 5, 4]), np.eye(7)[[4, 5, 5, 4]]))
    recall (images) histopathology   follow-up
    diagnosis
    mel                 1.000 (1)
    nv                  0.500 (2)   1.000 (1)
    """
    cells = recalls.apply(lambda row: f"{row['recall']:.3f} ({row['images']:.0f})", axis=1)
    table = cells.unstack(fill_value="")
    order = [way for way in CONFIRMED_BY if way in table.columns] + sorted(set(table.columns) - set(CONFIRMED_BY))
    return table[order].rename(columns=CONFIRMED_BY).rename_axis(columns="recall (images)")


def describe_confirmation(recalls, excised, overall, *, what="images"):
    """One paragraph: the scores on the images confirmed by histopathology against all, and nevi by confirmation.

    Parameters
    ----------
    recalls : DataFrame
        From :func:`recall_by_confirmation`.
    excised : DataFrame
        :func:`bootstrap` of the images confirmed by histopathology (``estimate``, ``low``, ``high``).
    overall : DataFrame
        :func:`bootstrap` of all the images.
    what : str, default="images"
        What the images are, for the sentence ("test images").

    >>> recalls = pd.DataFrame({"images": [10, 30, 60], "recall": [0.6, 0.4, 0.95]}, index=pd.MultiIndex.from_tuples(
    ...     [("mel", "histo"), ("nv", "histo"), ("nv", "follow_up")], names=["diagnosis", "confirmation"]))
    >>> score = pd.DataFrame({"estimate": [0.6, 0.8], "low": [0.5, 0.7], "high": [0.7, 0.9]},
    ...                      index=["balanced_accuracy", "malignant_auc"])
    >>> print(describe_confirmation(recalls, score, score + 0.1))  # doctest: +NORMALIZE_WHITESPACE
    On the 40 images confirmed by histopathology (all 10 images of mel, and 30 of the 90 nv), balanced accuracy 0.600
    (0.500-0.700) against 0.700 on all images, malignant AUC 0.800 (0.700-0.900) against 0.900. Recall of nv: 0.40
    confirmed by histopathology (30 images), 0.95 by follow-up (60).
    """
    images = recalls["images"].unstack(fill_value=0)
    count = images.get(EXCISED, pd.Series(0, index=images.index))
    if not count.sum():
        return f"None of the {what} was confirmed by histopathology."
    whole = [name for name in images.index if count[name] == images.loc[name].sum() and count[name]]
    part = [f"{count[name]:.0f} of the {images.loc[name].sum():.0f} {name}" for name in images.index
            if 0 < count[name] < images.loc[name].sum()]
    kinds = and_list(whole)
    which = ", and ".join(filter(None, [f"all {count[whole].sum():.0f} images of {kinds}" if whole else "",
                                        ", ".join(part)]))
    parts = [f"On the {count.sum():.0f} {what} confirmed by histopathology ({which})"]
    for key, label in (("balanced_accuracy", "balanced accuracy"), ("malignant_auc", "malignant AUC")):
        if key in excised.index:
            row = excised.loc[key]
            where = f" on all {what}" if key == "balanced_accuracy" else ""
            parts.append(f"{label} {row['estimate']:.3f} ({row['low']:.3f}-{row['high']:.3f}) against "
                         f"{overall.loc[key, 'estimate']:.3f}{where}")
    text = ", ".join(parts) + "."
    if "nv" in recalls.index.get_level_values("diagnosis"):
        names = {**{way: f"by {words}" for way, words in CONFIRMED_BY.items()},
                 EXCISED: f"confirmed by {CONFIRMED_BY[EXCISED]}"}
        nevi = recalls.loc["nv"].sort_values("images", ascending=False).sort_index(
            key=lambda index: index != EXCISED, kind="stable")
        listed = [f"{row['recall']:.2f} {names.get(way, way)} ({row['images']:.0f}{' images' if not i else ''})"
                  for i, (way, row) in enumerate(nevi.iterrows())]
        text += " Recall of nv: " + ", ".join(listed) + "."
    return text


def confirmation_record(confirmation):
    """``final_metrics.json``'s ``confirmation`` entry as the tables it was written from: the
    :func:`recall_by_confirmation` table and the :func:`bootstrap` of the images confirmed by histopathology.

    >>> recalls, excised = confirmation_record({"recall": {"nv/histo": {"images": 3, "recall": 0.5}},
    ...     "histopathology": {"balanced_accuracy": {"estimate": 0.5, "low": 0.4, "high": 0.6}}})
    >>> int(recalls.loc[("nv", "histo"), "images"]), float(excised.loc["balanced_accuracy", "high"])
    (3, 0.6)
    """
    recalls = pd.DataFrame.from_dict(confirmation["recall"], orient="index")
    recalls.index = pd.MultiIndex.from_tuples([tuple(key.split("/")) for key in recalls.index],
                                              names=["diagnosis", "confirmation"])
    return recalls, pd.DataFrame(confirmation["histopathology"]).T


def describe_confirmation_record(confirmation, overall):
    """:func:`describe_confirmation` of the test images, from ``final_metrics.json``: its ``confirmation`` entry,
    and the final's scores (metric to ``estimate``, ``low``, ``high``) as ``overall``."""
    return describe_confirmation(*confirmation_record(confirmation), pd.DataFrame(overall).T, what="test images")


def shift_changes(labels, by_shift, *, groups=None, n_resamples=1000, seed=0, level=0.95):
    """Each shift's change in balanced accuracy against the first entry (the unshifted images), with a paired interval.

    :func:`paired_change` for each shift: lesions (``groups``) resampled, the unshifted and the shifted predictions
    scored on each resample, so the interval is that of the change itself.

    Parameters
    ----------
    labels : ndarray of shape (n,)
    by_shift : dict of str to ndarray of shape (n, 7)
        Probabilities under each shift, the unshifted images first.

    Returns
    -------
    DataFrame
        Indexed by shift (the first left out), with ``change``, ``low`` and ``high``.

    >>> labels = np.tile(np.arange(7), 10)
    >>> table = shift_changes(labels, {"none": np.eye(7)[labels], "all wrong": np.eye(7)[(labels + 1) % 7]},
    ...                       n_resamples=20)
    >>> table.loc["all wrong"].tolist()
    [-1.0, -1.0, -1.0]
    """
    (_, unshifted), *shifted = by_shift.items()
    if not shifted:
        return pd.DataFrame(columns=["change", "low", "high"], dtype=float)
    rows = {name: paired_change(labels, unshifted, probabilities, groups=groups, n_resamples=n_resamples, seed=seed,
                                level=level).loc["balanced_accuracy"] for name, probabilities in shifted}
    return pd.DataFrame(rows).T.rename(columns={"estimate": "change"})


def describe_shift_changes(changes, recall_mel, melanomas):
    """Under which shifts balanced accuracy fell with a 95% interval wholly below 0; where melanoma recall fell most.

    Parameters
    ----------
    changes : DataFrame
        From :func:`shift_changes`.
    recall_mel : Series
        Melanoma recall by shift, the unshifted images first.
    melanomas : int
        The melanoma images.

    >>> changes = pd.DataFrame({"change": [-0.04, -0.01], "low": [-0.06, -0.03], "high": [-0.02, 0.01]},
    ...                        index=["blur", "darker"])
    >>> print(describe_shift_changes(changes, pd.Series([0.6, 0.3, 0.5], index=["none", "blur", "darker"]), 160))
    Balanced accuracy fell with a 95% interval wholly below 0 under 1 of the 2 shifts; the change, with its interval:
    blur -0.040 (-0.060 to -0.020). Under the other the interval includes 0 or lies above it. Melanoma recall, 0.600
    on the unshifted images (160 melanoma images), fell most under blur, to 0.300, then under darker, to 0.500.
    """
    if changes.empty:
        return "No shift to describe."
    below = changes[changes["high"] < 0].sort_values("change")
    count, others = len(changes), len(changes) - len(below)
    where = "the one shift" if count == 1 else f"{len(below)} of the {count} shifts"
    if below.empty:
        text = ("Balanced accuracy did not fall with a 95% interval wholly below 0 under "
                + ("the one shift." if count == 1 else f"any of the {count} shifts."))
    else:
        listed = "; ".join(f"{name} {row['change']:.3f} ({row['low']:.3f} to {row['high']:.3f})"
                           for name, row in below.iterrows())
        each = "the change, with its interval" if len(below) == 1 else "the changes, with their intervals"
        text = f"Balanced accuracy fell with a 95% interval wholly below 0 under {where}; {each}: {listed}."
        if others:
            text += (f" Under the {'other' if others == 1 else f'other {others}'} the interval includes 0 or lies "
                     f"above it.")
    unshifted, shifted = recall_mel.iloc[0], recall_mel.iloc[1:]
    lowest = shifted[shifted < unshifted].sort_values().iloc[:2]
    text += f" Melanoma recall, {unshifted:.3f} on the unshifted images ({melanomas} melanoma images), "
    if lowest.empty:
        return text + "fell under none of the shifts."
    return text + "fell most under " + ", then under ".join(f"{name}, to {value:.3f}"
                                                             for name, value in lowest.items()) + "."


FAR = 1000
"""Beyond this many times the most images, :func:`scaling_fit` says the line does not reach a goal (``inf``)."""


def scaling_fit(table, goals, *, procedure="plain"):
    """What more training data would buy, if the gain per doubling held: a line of each score against log2(images).

    Least squares over every seed's run of a recipe (equal seeds per share weigh the shares equally). A curve of this
    kind usually flattens as data grows, so the images a goal needs by the line are a lower bound, not a forecast.

    Parameters
    ----------
    table : DataFrame
        One row per run, with ``train_images``, ``procedure``, a column per metric of ``goals`` and, optionally,
        ``recipe`` (one line per recipe; :func:`skinlib.reproduce.recorded_data_curve`).
    goals : dict of str to float
        Metric to goal; metrics missing from ``table`` are skipped.
    procedure : str, default="plain"

    Returns
    -------
    DataFrame
        One row per recipe and metric: ``per doubling`` (the slope), ``line at the most images`` (the line's value
        there), ``goal``, ``images for the goal`` and ``times the most`` (both infinite when the line does not rise,
        or needs more than :data:`FAR` times the most images); empty, with the same columns, for an empty table.
        A recipe with one size of training set has no line and no row.

    Examples
    --------
    >>> table = pd.DataFrame({"train_images": [1000, 2000, 4000], "procedure": "plain",
    ...                       "balanced_accuracy": [0.6, 0.65, 0.7]})
    >>> fit = scaling_fit(table, {"balanced_accuracy": 0.75}).loc[("all", "balanced_accuracy")]
    >>> fit[["per doubling", "images for the goal", "times the most"]].round(3).tolist()
    [0.05, 8000.0, 2.0]
    """
    columns = ["per doubling", "line at the most images", "goal", "images for the goal", "times the most"]
    if table.empty:
        return pd.DataFrame(columns=columns, index=pd.MultiIndex.from_tuples([], names=["recipe", "metric"]))
    runs = table[table["procedure"] == procedure]
    recipes = runs["recipe"] if "recipe" in runs else pd.Series("all", index=runs.index)
    rows = {}
    for recipe, group in runs.groupby(recipes, sort=False):
        if group["train_images"].nunique() < 2:
            continue  # No line through one point.
        x = np.log2(group["train_images"].to_numpy(float))
        for metric, goal in goals.items():
            if metric not in group:
                continue
            slope, intercept = np.polyfit(x, group[metric].to_numpy(float), 1)
            doublings = (goal - intercept) / slope - x.max() if slope > 0 else np.inf
            times = 2.0 ** doublings if doublings <= np.log2(FAR) else np.inf
            rows[(recipe, metric)] = [slope, intercept + slope * x.max(), goal, times * 2 ** x.max(), times]
    index = pd.MultiIndex.from_tuples(list(rows), names=["recipe", "metric"])
    return pd.DataFrame(list(rows.values()), index=index, columns=columns)


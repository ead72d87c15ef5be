"""The final model: chosen on validation by a rule written before the test split is read, then scored once on it.

The rule (:func:`choose`): among the models saved by chapters 02 and 03, the
one with the highest **validation** balanced accuracy, with test-time
augmentation (TTA) when TTA raised that model's validation balanced accuracy.
A saved ensemble of a recipe's seeds (chapter 03's ``full`` profile) stands
for them: its members are not weighed one by one, since the best of a few
seeds on validation is partly the luckiest. Nothing about the test split
enters the choice. With ``choose(..., refit=True)``, where the chosen run's
recipe was also refitted on the training and validation images together
(:func:`skinlib.artefacts.save_refit`), the refit predicts every split but
validation, and everything fitted on validation (TTA or not, the
temperature, the screening threshold) is fitted on the chosen run, which has
validation scores; the refit has none. Those choices are then applied to
another network, so its calibration and the sensitivity it reaches at the
threshold are for the test split to show.

Chapter 04 scores the final on the test split and writes
``Saved_Models/final_metrics.json`` (:func:`skinlib.artefacts.final_metrics`
and :func:`skinlib.artefacts.write_final_metrics`), the only source of the
test numbers quoted by the README, the main notebook and the slides; the
lesion checker reads the final model's name from it.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib.infer import TTA_VIEWS, predict_proba, predict_tta
from skinlib.metrics import headline, paired_change
from skinlib.models import load_model

RULE = ("highest validation balanced accuracy among saved models, a saved ensemble of seeds standing for its members "
        "(TTA if it raised validation balanced accuracy); where chapter 03 saved a refit of the chosen model (its "
        "recipe trained again on the training and validation images), the refit reads the test split and ships in "
        "its place, and everything fitted on validation is fitted with the chosen model")
"""The rule of :func:`choose`, in words, as ``final_metrics.json`` records it."""


@dataclasses.dataclass
class Final:
    """A final prediction procedure: one model (with or without TTA) or an ensemble of saved models.

    ``members`` are the file stems of the saved models whose probabilities
    are averaged; ``tta``: each is applied with test-time augmentation.
    ``refit``: the same recipe refitted on the training and validation
    images (:func:`skinlib.artefacts.refit_of`), in place of ``members`` on
    every split but validation, or None.
    """

    name: str
    members: list
    tta: bool
    validation_balanced_accuracy: float
    refit: list = None

    @property
    def model(self):
        """The saved model that predicts the test split (the refit where there is one): the one to explain and ship."""
        return (self.refit or self.members)[0]

    def members_for(self, part):
        """The saved models that predict split ``part``: never the refit on validation, which it learnt from."""
        return self.refit if self.refit and part != "val" else self.members


def candidates(results, folder):
    """The validation results of every saved model, with its TTA score where chapter 03 measured one.

    The members of a saved ensemble (the models its rows name in ``members``)
    are left out: the ensemble stands for them.

    Parameters
    ----------
    results : DataFrame
        The results table (:func:`skinlib.artefacts.read_results`).
    folder : str or Path
        Where the ``.keras`` files are; rows without one are left out.

    Returns
    -------
    DataFrame
        ``name``, ``notebook``, ``balanced_accuracy``, ``accuracy`` and
        ``balanced_accuracy_tta`` (NaN where not measured), best first.

    Examples
    --------
    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> for name in ("a", "s0", "s1", "e"): _ = (folder / f"{name}.keras").write_bytes(b"")
    >>> results = pd.DataFrame({"name": ["a", "a_tta", "b", "s0", "s1", "e", "e_tta"], "notebook": ["02"] * 7,
    ...                         "balanced_accuracy": [0.6, 0.62, 0.7, 0.71, 0.69, 0.68, 0.69], "accuracy": [0.7] * 7,
    ...                         "members": [None] * 5 + ["s0 + s1"] * 2})
    >>> candidates(results, folder)[["name", "balanced_accuracy_tta"]].values.tolist()
    [['e', 0.69], ['a', 0.62]]
    """
    folder = Path(folder)
    table = results.set_index("name")
    saved = {name for name in table.index if (folder / f"{name}.keras").is_file()}
    represented = set()
    if "members" in table:
        for name, listed in table["members"].dropna().items():
            if name.removesuffix("_tta") in saved:  # Only a saved ensemble stands for its members.
                represented.update(member.strip().removesuffix("_tta") for member in str(listed).split("+"))
    rows = []
    for name, row in table.iterrows():
        if name not in saved or name in represented:
            continue
        tta = table["balanced_accuracy"].get(f"{name}_tta", np.nan)
        rows.append({"name": name, "notebook": row["notebook"], "balanced_accuracy": row["balanced_accuracy"],
                     "accuracy": row["accuracy"], "balanced_accuracy_tta": tta})
    columns = ["name", "notebook", "balanced_accuracy", "accuracy", "balanced_accuracy_tta"]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows, columns=columns).sort_values("balanced_accuracy", ascending=False).reset_index(drop=True)


def choose(results, folder, *, refit=False):
    """Apply the rule (:data:`RULE`); return the final procedure, as a list of one :class:`Final`.

    Chapter 04 scores every final in the list side by side; the rule names one.
    With ``refit``, the chosen run's refit (:func:`skinlib.artefacts.refit_of`),
    where one is saved, becomes the final's ``refit``; without it a saved refit
    is ignored.

    Parameters
    ----------
    results : DataFrame
        The results table (validation); an ensemble's rows name its members.
    folder : str or Path
        Where the ``.keras`` files are.

    Returns
    -------
    list of Final

    Raises
    ------
    FileNotFoundError
        When no model of the table is saved in ``folder``.

    Examples
    --------
    >>> results = pd.DataFrame({"name": ["a", "a_tta", "b", "e", "e_tta"], "notebook": ["x"] * 5,
    ...                         "balanced_accuracy": [0.6, 0.62, 0.5, 0.58, 0.61], "accuracy": [0.7] * 5})
    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> for name in ("a", "b", "e"): _ = (folder / f"{name}.keras").write_bytes(b"")
    >>> [(f.name, f.members, f.tta) for f in choose(results, folder)]
    [('a_tta', ['a'], True)]
    >>> results["members"] = [None, None, None, "a + b", "a + b"]  # e averages a and b: it stands for them
    >>> [(f.name, f.members, f.tta) for f in choose(results, folder)]
    [('e_tta', ['e'], True)]
    >>> import keras; from skinlib import artefacts
    >>> _ = (folder / "e_metrics.json").write_text("{}")  # e's recipe refitted on train and validation:
    >>> _ = artefacts.save_refit(keras.Sequential([keras.Input((2,)), keras.layers.Dense(7)]), "e", folder=folder,
    ...                          details={"train_images": 8512})
    >>> [(f.name, f.members, f.tta, f.refit, f.model) for f in choose(results, folder, refit=True)]
    [('e_refit_tta', ['e'], True, ['e_refit'], 'e_refit')]
    >>> choose(results, folder)[0].refit is None  # Not asked for: ignored.
    True
    """
    from skinlib import artefacts

    table = candidates(results, folder)
    if table.empty:
        raise FileNotFoundError(f"no saved model of the results table is in {folder}; run chapters 02 and 03 first.")
    best = table.iloc[0]
    use_tta = bool(best["balanced_accuracy_tta"] > best["balanced_accuracy"])
    score = best["balanced_accuracy_tta"] if use_tta else best["balanced_accuracy"]
    refit = artefacts.refit_of(best["name"], folder) if refit else None
    stem = refit or best["name"]
    return [Final(f"{stem}_tta" if use_tta else stem, [best["name"]], use_tta, float(score),
                  [refit] if refit else None)]


def predict(procedure, splits_at, *, folder, part, metadata=None, memo=None):
    """Probabilities of a final procedure on one split: the mean over its member models.

    Each member model is fed at its own input size, with the metadata when it
    takes two inputs, and with TTA when the procedure uses it.

    Parameters
    ----------
    procedure : Final
        From :func:`choose`.
    splits_at : callable
        ``splits_at((height, width))`` returns the splits at that input size,
        a dict like that of :func:`skinlib.split.load_split_images`.
    folder : str or Path
        Where the member ``.keras`` files are.
    part : str
        The split to predict ("val" or "test").
    metadata : ndarray, default=None
        The split's metadata features (:func:`skinlib.models.metadata_features`), for two-input members.
    memo : dict, default=None
        Each member's probabilities by (member, TTA, part), filled and reused:
        a member shared by several procedures is predicted once.

    Returns
    -------
    ndarray of shape (n, 7)

    Examples
    --------
    >>> def splits_at(size):  # doctest: +SKIP
    ...     return split.load_split_images(size, splits=("val", "test"))
    >>> probabilities = predict(choose(results, folder)[0], splits_at, folder=folder, part="test")  # doctest: +SKIP
    """
    memo = {} if memo is None else memo
    outputs = []
    for member in procedure.members_for(part):
        key = (member, procedure.tta, part)
        if key not in memo:
            path = Path(folder) / f"{member}.keras"
            model = _load_model(path, path.stat().st_mtime_ns)
            size = tuple(int(side) for side in model.inputs[0].shape[1:3])
            meta = metadata if len(model.inputs) == 2 else None
            function = predict_tta if procedure.tta else predict_proba
            memo[key] = function(model, splits_at(size)[part].images, metadata=meta)
        outputs.append(memo[key])
    return np.mean(outputs, axis=0)


def predict_finals(finals, splits_at, *, folder, metadata, parts=("val", "test")):
    """:func:`predict` for every final on every split, each member's predictions computed once.

    ``metadata`` maps each split to its metadata features (used by two-input
    members only). Returns a dict keyed by (final name, split).

    Examples
    --------
    >>> probabilities = predict_finals(choose(results, folder), splits_at, folder=folder,
    ...                                metadata=metadata)  # doctest: +SKIP
    >>> probabilities[("03_efficientnet_lite0_ensemble_tta", "test")].shape  # doctest: +SKIP
    (1503, 7)
    """
    memo = {}
    return {(f.name, part): predict(f, splits_at, folder=folder, part=part, metadata=metadata[part], memo=memo)
            for f in finals for part in parts}


@functools.lru_cache(maxsize=4)
def _load_model(path, modified):
    """Load a saved model once per file version: chapter 04 predicts validation and test with the same models."""
    return load_model(path)


def compare_tta(first, candidates_table, labels, one_pass, procedure, *, groups=None, n_resamples=1000, seed=0):
    """What TTA did for the final procedure: on validation (where the rule decided) and on the test split.

    Parameters
    ----------
    first : Final
        The final procedure (one saved model, an ensemble being one, with or without TTA).
    candidates_table : DataFrame
        :func:`candidates` (validation balanced accuracy of each model, one pass and with TTA).
    labels : array-like of shape (n,)
        The test labels.
    one_pass, procedure : ndarray of shape (n, 7)
        Test probabilities of one pass of the model and of the final procedure.
    groups : array-like of shape (n,), default=None
        The lesion of each image, for the paired bootstrap of the change (:func:`skinlib.metrics.paired_change`).
    n_resamples, seed : int

    Raises
    ------
    ValueError
        When ``first`` uses TTA but the table has no TTA score of its model.

    Returns
    -------
    dict
        ``tta``; ``validation``: ``one_pass`` and ``tta`` balanced accuracy (``tta`` None when not measured);
        ``test``: ``one_pass`` and ``procedure`` (accuracy and balanced accuracy each) and ``change`` (of balanced
        accuracy only, procedure minus one pass: ``estimate``, ``low``, ``high``, and ``resampled``: "lesions",
        or "images" without ``groups``). JSON-ready, for ``final_metrics.json`` and :func:`describe_tta`.

    Examples
    --------
    >>> table = pd.DataFrame({"name": ["a"], "balanced_accuracy": [0.70], "balanced_accuracy_tta": [0.71]})
    >>> labels = np.tile(np.arange(7), 10)
    >>> comparison = compare_tta(Final("a_tta", ["a"], True, 0.71), table, labels, np.eye(7)[labels],
    ...                          np.eye(7)[labels], n_resamples=20)
    >>> comparison["validation"], comparison["test"]["change"]
    ({'one_pass': 0.7, 'tta': 0.71}, {'estimate': 0.0, 'low': 0.0, 'high': 0.0, 'resampled': 'images'})
    """
    row = candidates_table.set_index("name").loc[first.members[0]]
    with_tta = row.get("balanced_accuracy_tta", np.nan)
    if first.tta and pd.isna(with_tta):
        raise ValueError(f"{first.name} uses TTA, but the candidates table has no validation score of "
                         f"{first.members[0]} with TTA")
    change = paired_change(labels, one_pass, procedure, groups=groups, n_resamples=n_resamples, seed=seed)
    scores = {name: {key: value for key, value in headline(labels, probabilities).items()
                     if key in ("accuracy", "balanced_accuracy")}
              for name, probabilities in (("one_pass", one_pass), ("procedure", procedure))}
    interval = {key: float(value) for key, value in change.loc["balanced_accuracy"].items()}
    return {"tta": bool(first.tta),
            "validation": {"one_pass": float(row["balanced_accuracy"]),
                           "tta": None if pd.isna(with_tta) else float(with_tta)},
            "test": {**scores, "change": {**interval, "resampled": "images" if groups is None else "lesions"}}}


def describe_tta(comparison):
    """:func:`compare_tta` in words, for chapter 04, the main notebook and the README.

    Each pair of scores is printed to three decimals, or to four where three would make the two look equal (the rule
    compares them to four); a change on the test split is the difference of the printed scores.

    Parameters
    ----------
    comparison : dict
        From :func:`compare_tta` (as ``final_metrics.json`` keeps it).

    Returns
    -------
    str

    Examples
    --------
    >>> print(describe_tta({"tta": True, "validation": {"one_pass": 0.708, "tta": 0.716},
    ...                     "test": {"one_pass": {"accuracy": 0.743, "balanced_accuracy": 0.728},
    ...                              "procedure": {"accuracy": 0.740, "balanced_accuracy": 0.704},
    ...                              "change": {"estimate": -0.024, "low": -0.041, "high": -0.006,
    ...                                         "resampled": "lesions"}}}))
    On the test images, one pass of the model scores a balanced accuracy of 0.728 (accuracy 0.743); the final
    procedure, TTA (the mean of 4 passes), scores 0.704 (0.740): TTA lowered balanced accuracy by 0.024 (95%
    interval of the change, resampling lesions with both procedures on each resample: -0.041 to -0.006). On
    validation, where the rule chose it, TTA scored 0.716 against 0.708 for one pass.
    >>> print(describe_tta({"tta": False, "validation": {"one_pass": 0.7203, "tta": 0.7198},
    ...                     "test": {"one_pass": {"accuracy": 0.75, "balanced_accuracy": 0.71},
    ...                              "procedure": {"accuracy": 0.75, "balanced_accuracy": 0.71}}}))
    The final procedure is one pass of the model: on the test images it scores a balanced accuracy of 0.710
    (accuracy 0.750). The rule left TTA out because on validation it did not raise balanced accuracy (0.7198
    against 0.7203).
    """
    validation, test = comparison["validation"], comparison["test"]
    one_pass, procedure = test["one_pass"], test["procedure"]
    if not comparison["tta"]:
        if validation["tta"] is None:
            reason = "no TTA score was measured on validation"
        else:
            with_tta, without = _pair(validation["tta"], validation["one_pass"])
            reason = f"on validation it did not raise balanced accuracy ({with_tta} against {without})"
        return (f"The final procedure is one pass of the model: on the test images it scores a balanced accuracy of "
                f"{procedure['balanced_accuracy']:.3f} (accuracy {procedure['accuracy']:.3f}). The rule left TTA out "
                f"because {reason}.")
    single, four = _pair(one_pass["balanced_accuracy"], procedure["balanced_accuracy"])
    change = float(four) - float(single)
    effect = ("TTA left balanced accuracy unchanged" if change == 0 else
              f"TTA {'raised' if change > 0 else 'lowered'} balanced accuracy by {abs(change):.{len(four) - 2}f}")
    interval = test["change"]
    covers = ", which includes no change" if interval["low"] <= 0 <= interval["high"] and change else ""
    effect += (f" (95% interval of the change, resampling {interval['resampled']} with both procedures on each "
               f"resample: {interval['low']:+.3f} to {interval['high']:+.3f}{covers})")
    with_tta, without = _pair(validation["tta"], validation["one_pass"])
    return (f"On the test images, one pass of the model scores a balanced accuracy of {single} (accuracy "
            f"{one_pass['accuracy']:.3f}); the final procedure, TTA (the mean of {len(TTA_VIEWS)} passes), scores "
            f"{four} ({procedure['accuracy']:.3f}): {effect}. On validation, where the rule chose it, TTA scored "
            f"{with_tta} against {without} for one pass.")


def _pair(first, second):
    """Two scores as text, to three decimals, or to four where three would show them equal and four would not.

    >>> _pair(0.7084, 0.7081), _pair(0.716, 0.708), _pair(0.71, 0.71)
    (('0.7084', '0.7081'), ('0.716', '0.708'), ('0.710', '0.710'))
    """
    digits = 4 if f"{first:.3f}" == f"{second:.3f}" and f"{first:.4f}" != f"{second:.4f}" else 3
    return f"{first:.{digits}f}", f"{second:.{digits}f}"

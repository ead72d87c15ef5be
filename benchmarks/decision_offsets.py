"""Scout: would per-class decision offsets, tuned on validation, raise the shipped model's balanced accuracy?

The shipped model decides by the largest probability. Balanced accuracy weighs every class equally, so an offset
per class added to the log-probabilities before the argmax (a learned prior correction) could trade a little
accuracy on nevi for recall on the rare classes. Tuning seven numbers on the validation split and scoring them on
the same split would flatter them, so this scout cross-fits: validation is cut in two halves (grouped by lesion,
stratified by diagnosis), the offsets are tuned on one half (coordinate ascent of balanced accuracy, each offset on
a grid from -2 to 2, three sweeps) and scored on the other, both ways, over ``--repeats`` random cuts. The gain is
the scored half's balanced accuracy with the offsets minus without them, so it says what tuning on one half of
the validation split buys on images the tuning did not see. Test split untouched.

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/decision_offsets.py \\
        --repeats 5 --out benchmarks/results/decision_offsets.json

About 3 minutes on 2 cores (the shipped ensemble's TTA over the 1,503 validation images is most of it).
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib import artefacts, infer, metrics, models, split
from skinlib.reproduce import cpu_has_avx512, cpu_name

GRID = np.linspace(-2.0, 2.0, 41)
SWEEPS = 3
MODEL = "03_efficientnet_lite0_ensemble.keras"


def shifted(probabilities, offsets):
    """Probabilities with ``offsets`` added to their logarithms, renormalised (:func:`skinlib.metrics.prior_shift`)."""
    return metrics.prior_shift(probabilities, np.exp(offsets), 1.0)


def balanced_accuracy(labels, probabilities, offsets):
    """Balanced accuracy of the argmax of ``log p + offsets`` (the recalls of the classes in ``labels``, averaged).

    >>> balanced_accuracy(np.array([0, 1]), np.array([[0.6, 0.4], [0.6, 0.4]]), np.zeros(2))
    0.5
    >>> balanced_accuracy(np.array([0, 1]), np.array([[0.7, 0.3], [0.6, 0.4]]), np.array([0.0, 0.6]))
    1.0
    """
    decided = shifted(probabilities, offsets).argmax(axis=1)
    return float(np.mean([(decided[labels == k] == k).mean() for k in np.unique(labels)]))


def fit_offsets(labels, probabilities):
    """Per-class offsets that maximise balanced accuracy on ``labels`` (coordinate ascent; ties: nearer to 0)."""
    offsets = np.zeros(probabilities.shape[1])
    for _ in range(SWEEPS):
        for k in range(len(offsets)):
            scores = []
            for value in GRID:
                trial = offsets.copy()
                trial[k] = value
                scores.append((balanced_accuracy(labels, probabilities, trial), -abs(value), value))
            offsets[k] = max(scores)[2]
    return offsets


def cross_fit(labels, probabilities, lesions, *, repeats=5):
    """Tune offsets on one half of the images and score them on the other, both ways, over ``repeats`` random cuts.

    Each cut is two halves grouped by ``lesions`` (no lesion in both) and stratified by ``labels``
    (scikit-learn's ``StratifiedGroupKFold``, shuffled with the cut's number as its seed). Returns one row per
    scored half: the offsets, balanced accuracy and accuracy of the scored half before and after them, the tuned
    half's balanced accuracy before and after (what the tuning found on the images it saw), the images of each
    class in the tuned half, and whether an offset sits at the grid's edge.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    records = []
    for repeat in range(repeats):
        halves = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=repeat).split(
            probabilities, labels, lesions)
        for fold, (tune, score) in enumerate(halves):
            offsets = fit_offsets(labels[tune], probabilities[tune])
            before = metrics.classification_metrics(labels[score], probabilities[score])
            after = metrics.classification_metrics(labels[score], shifted(probabilities[score], offsets))
            records.append({"repeat": repeat, "fold": fold, "tuned_on": len(tune), "scored_on": len(score),
                            "offsets": offsets.round(2).tolist(),
                            "offset_at_grid_edge": bool(np.isclose(np.abs(offsets), GRID[-1]).any()),
                            "tuned_half_counts": np.bincount(labels[tune], minlength=len(offsets)).tolist(),
                            "shared_lesions": len(set(lesions[tune]) & set(lesions[score])),
                            "tuned_half_balanced_accuracy_before": balanced_accuracy(
                                labels[tune], probabilities[tune], np.zeros(probabilities.shape[1])),
                            "tuned_half_balanced_accuracy": balanced_accuracy(labels[tune], probabilities[tune],
                                                                              offsets),
                            **{f"{key}_before": before[key] for key in ("balanced_accuracy", "accuracy")},
                            **{f"{key}_after": after[key] for key in ("balanced_accuracy", "accuracy")}})
    return pd.DataFrame(records)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="random two-way cuts of the validation split")
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args()
    begin = time.perf_counter()
    rows = split.load_split_images((150, 200), splits=("val",), progress=False)["val"]
    labels, lesions = np.asarray(rows.labels), rows.table["lesion_id"].to_numpy()
    model = models.load_model(artefacts.models_dir() / MODEL)
    probabilities = infer.predict_tta(model, rows.images)
    whole = metrics.classification_metrics(labels, probabilities)
    table = cross_fit(labels, probabilities, lesions, repeats=args.repeats)
    table["gain"] = table["balanced_accuracy_after"] - table["balanced_accuracy_before"]
    table["accuracy_change"] = table["accuracy_after"] - table["accuracy_before"]
    per_repeat = table.groupby("repeat")[["gain", "accuracy_change"]].mean()
    print(table.drop(columns=["offsets", "tuned_half_counts"]).round(4).to_string())
    print(per_repeat.round(4).to_string())
    result = {
        "benchmark": "decision_offsets",
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "model": MODEL,
        "procedure": "TTA over the four flips",
        "validation_whole": {key: round(float(whole[key]), 4) for key in ("balanced_accuracy", "accuracy")},
        "halves": table.round(4).to_dict(orient="records"),
        "gain_per_repeat": per_repeat["gain"].round(4).tolist(),
        "accuracy_change_per_repeat": per_repeat["accuracy_change"].round(4).tolist(),
        "mean_gain": round(float(per_repeat["gain"].mean()), 4),
        "mean_accuracy_change": round(float(per_repeat["accuracy_change"].mean()), 5),
        "halves_lowered": int((table["gain"] < 0).sum()),
        "mean_tuned_half_gain": round(float((table["tuned_half_balanced_accuracy"]
                                              - table["tuned_half_balanced_accuracy_before"]).mean()), 4),
        "seconds": round(time.perf_counter() - begin, 1),
        "machine": {"cpu_count": os.cpu_count(), "processor": cpu_name(), "avx512": cpu_has_avx512()},
        "command": f"python benchmarks/decision_offsets.py --repeats {args.repeats} --out {args.out}",
    }
    artefacts.write_json_atomic(Path(args.out), result, end="\n")


if __name__ == "__main__":
    main()

"""Scout: would a second, different backbone in the ensemble raise balanced accuracy?

Chapter 03's ensemble averages three seeds of one network (EfficientNet-Lite0): seeds share the architecture, the
pretrained weights and the cut, so they tend to err on the same images. A network of another design errs elsewhere,
and averaging the two may gain where more seeds of one do not. This scout asks whether that is worth training in
chapter 03. The second ensemble is chapter 03 itself, run with another backbone in a kept scratch copy::

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/chapter03_variant.py --set backbone=mobilenet_025 \\
        --set cut=conv_pw_5_relu --set profile=full --set refit=False --keep \\
        --out benchmarks/results/backbone_mobilenet_025.json

(MobileNet alpha 0.25, the other backbone whose ImageNet weights work offline here, cut like Lite0 at the end of
its stride-8 stage, three seeds, no refit), then::

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/backbone_ensemble.py \\
        --other WORKTREE/Saved_Models/03_mobilenet_025_ensemble.keras --out benchmarks/results/backbone_ensemble.json

where WORKTREE is the scratch copy the first command printed. Both ensembles were trained on the training split
only; they are scored on validation, one pass each (no TTA, like chapter 04's final procedure of the validated
ensemble), plain and under chapter 04's seven named acquisition shifts. The mixed ensemble averages the two
ensembles' probabilities with weight ``w`` on the other (0.5: every one of the six members counts the same).
Test split untouched.

Rule, written before the run (in the commit that adds this file): chapter 03 should train the second backbone
for the ensemble (a change for a session on the machine of its committed run) if, with ``w = 0.5``, (1) the plain
validation balanced accuracy is at least 0.01 above the Lite0 ensemble's, with the lower end of the 95% paired
bootstrap interval (lesion-grouped, 1,000 resamples) above 0, (2) the malignant AUC is no more than 0.005 lower,
and (3) the mean balanced accuracy over the seven shifts is not lower. ``w = 0.25`` and the other ensemble alone are
reported, not chosen from.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shifts_on_validation import head_commit, shown  # noqa: E402 (a script beside this one)
from skinlib import acquisition, artefacts, data, infer, metrics, models, split  # noqa: E402
from skinlib.reproduce import cpu_has_avx512, cpu_name  # noqa: E402

LITE0 = "03_efficientnet_lite0_ensemble.keras"
WEIGHTS = (0.5, 0.25)
"""Weights of the other ensemble in the mix: the first is the rule's, the others are reported beside it."""
KEYS = ("balanced_accuracy", "accuracy", "malignant_auc", "macro_auc", "recall_mel")


def mix(first, other, weight):
    """``(1 - weight) * first + weight * other``: two ensembles' probabilities averaged.

    >>> mix(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), 0.25).tolist()
    [[0.75, 0.25]]
    """
    return (1 - weight) * np.asarray(first) + weight * np.asarray(other)


def rule_met(change, malignant_auc_change, shifted_change):
    """The rule, on unrounded numbers: a plain gain of at least 0.01 whose interval's lower end is above 0, a
    malignant AUC lower by no more than 0.005, and a mean over the shifts that is not lower.

    >>> import pandas as pd
    >>> change = pd.DataFrame({"estimate": [0.01], "low": [0.001]}, index=["balanced_accuracy"])
    >>> rule_met(change, -0.005, 0.0), rule_met(change, -0.00501, 0.0), rule_met(change, 0.0, -0.0001)
    (True, False, False)
    >>> rule_met(change.assign(low=0.0), 0.0, 0.0), rule_met(change.assign(estimate=0.0099), 0.0, 0.0)
    (False, False)
    """
    gain = change.loc["balanced_accuracy"]
    return bool(gain["estimate"] >= 0.01 and gain["low"] > 0 and malignant_auc_change >= -0.005
                and shifted_change >= 0)


def rounded(found):
    """The metrics of :data:`KEYS` from ``metrics.classification_metrics``, to four decimals."""
    return {key: round(float(found[key]), 4) for key in KEYS}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="the other backbone's saved ensemble (.keras)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args()
    begin = time.perf_counter()
    lite0, other = models.load_model(artefacts.models_dir() / LITE0), models.load_model(args.other)
    sizes = {tuple(int(side) for side in model.inputs[0].shape[1:3]) for model in (lite0, other)}
    if len(sizes) != 1:
        raise SystemExit(f"{args.other}: input size {sorted(sizes)} differs from {LITE0}'s; both must read the same")
    rows = split.load_split_images(sizes.pop(), splits=("val",), progress=False)["val"]
    labels, lesions = np.asarray(rows.labels), rows.table["lesion_id"].to_numpy()
    by_model = {key: infer.predict_shifts(model, rows.images) for key, model in (("lite0", lite0), ("other", other))}
    probabilities = {shift: {key: by_model[key][shift] for key in by_model} for shift in acquisition.SHIFTS}
    print(f"scored under {len(acquisition.SHIFTS)} conditions", flush=True)
    # Each arm as the weight of the other ensemble in the mix: 0 is Lite0 alone, 1 the other alone.
    arms = {"lite0": 0.0, "other": 1.0, **{f"mixed, w={weight:g}": weight for weight in WEIGHTS}}
    found = {arm: {shift: metrics.classification_metrics(labels, mix(both["lite0"], both["other"], weight))
                   for shift, both in probabilities.items()} for arm, weight in arms.items()}
    shifts = [shift for shift in acquisition.SHIFTS if shift != "none"]
    shifted = {arm: float(np.mean([found[arm][shift]["balanced_accuracy"] for shift in shifts])) for arm in arms}
    ruled = f"mixed, w={WEIGHTS[0]:g}"
    plain = probabilities["none"]
    change = metrics.paired_change(labels, plain["lite0"], mix(plain["lite0"], plain["other"], arms[ruled]),
                                   groups=lesions, n_resamples=args.resamples)
    auc_change = found[ruled]["none"]["malignant_auc"] - found["lite0"]["none"]["malignant_auc"]
    shifted_change = shifted[ruled] - shifted["lite0"]
    met = rule_met(change, auc_change, shifted_change)
    for arm in arms:
        print(f"{arm}: plain {rounded(found[arm]['none'])}, mean over the shifts {shifted[arm]:.4f}")
    print(f"{ruled} against lite0: balanced accuracy {change.loc['balanced_accuracy'].round(4).to_dict()}, "
          f"malignant AUC {auc_change:+.4f}, shifts {shifted_change:+.4f}; rule met: {met}")
    result = {
        "benchmark": "backbone_ensemble",
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "models": {"lite0": LITE0, "other": shown(args.other)},
        "procedure": "one pass",
        "scores": {arm: {shift: rounded(scores) for shift, scores in found[arm].items()} for arm in arms},
        "mean_balanced_accuracy_over_shifts": {arm: round(value, 4) for arm, value in shifted.items()},
        "recalls_plain": {arm: {name: round(float(found[arm]["none"][f"recall_{name}"]), 3) for name in data.CLASSES}
                          for arm in arms},
        "change": {key: {column: round(float(change.loc[key, column]), 4) for column in ("estimate", "low", "high")}
                   for key in change.index},
        "malignant_auc_change": round(auc_change, 4),
        "shifted_change": round(shifted_change, 4),
        "rule_met": met,
        "validation_rows": len(labels),
        "resamples": args.resamples,
        "seconds": round(time.perf_counter() - begin, 1),
        "machine": {"cpu_count": os.cpu_count(), "processor": cpu_name(), "avx512": cpu_has_avx512()},
        "commit": head_commit(),
        "command": f"python benchmarks/backbone_ensemble.py --other {shown(args.other)}"
                   + (f" --resamples {args.resamples}" if args.resamples != 1000 else "") + f" --out {args.out}",
    }
    artefacts.write_json_atomic(Path(args.out), result, end="\n")


if __name__ == "__main__":
    main()

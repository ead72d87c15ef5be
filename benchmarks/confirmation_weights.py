"""Scout: would weighting the nevi confirmed by follow-up down, within the nevus class, raise balanced accuracy?

HAM10000 says how each diagnosis was confirmed (``dx_type``). Over half of the training nevi (2,595 of 4,694) were
confirmed by follow-up: photographed again under digital monitoring and found unchanged. Chapter 04 found the
shipped model recalls such nevi almost always (0.98 on the test split) and excised nevi far less often (0.45).
With class weights, a class's weight is spread evenly over its images, so most of the nevus class's weight goes
to the easy images. This scout moves it to the others: each nevus confirmed by follow-up counts ``factor`` times
as much as another nevus, and the nevi's total weight is unchanged (:func:`confirmation_weights`), so the balance
between the classes stays as it is. A hypothesis, not tested here: if those nevi share a look of their own (one
clinic's monitoring, one camera), the weighting would also lean the model less on it.

It asks on validation, without training the upper blocks: for each of the three members of chapter 03's validated
ensemble (``Saved_Models/03_efficientnet_lite0_ensemble.keras``, seeds 0-2, trained on the training split only),
the member's upper blocks frozen, heads are re-trained from scratch on its pooled stored training views (seed 0,
the views the members trained on; :func:`skinlib.features.compare_heads`, 30 epochs, learning rate 1e-3, label
smoothing 0.1, class weights power 1, the best validation epoch kept) with three head seeds, once as the chapter
trains them (``control``) and once with the images weighted (``follow-up x0.5``, and ``follow-up x0.25``
reported beside). Same seeds, so each weighted head has a control head with the same start and the same batches:
nine pairs per factor. Each head is scored in one pass (the first validation flip) and with TTA (the four flips);
on all validation images and on those confirmed by histopathology. Test split untouched.

Rule, written before the run (in the commit that adds this file): a three-seed trial of the whole recipe (the
weights in the upper blocks' training too, a chapter 03 parameter, against a control on the same kind of machine)
is worth its hours if, with ``factor=0.5``, the nine heads' mean plain validation balanced accuracy is at least
0.01 above the nine control heads', at least 7 of the 9 pairs are higher, and the mean malignant AUC is no more
than 0.005 lower. The excised images' scores and ``factor=0.25`` are reported, not in the rule. A re-trained head
is a narrower change than a re-trained network: the rule says only whether the trial is worth running.

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/confirmation_weights.py \\
        --out benchmarks/results/confirmation_weights.json
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib import artefacts, data, features, metrics, models, split
from skinlib.reproduce import cpu_has_avx512, cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classifier_retraining import head_scores, member_parts, shipped_views  # noqa: E402

ENSEMBLE = "03_efficientnet_lite0_ensemble.keras"
FACTORS = (0.5, 0.25)
"""Each follow-up nevus's weight relative to another nevus; the first is the rule's."""
FOLLOW_UP = "follow_up"
KEYS = ["balanced_accuracy", "accuracy", "malignant_auc", "macro_auc", "recall_mel", "recall_nv"]
CONTROL = "control"


def confirmation_weights(labels, confirmation, factor):
    """Each training image's weight: a nevus confirmed by follow-up counts ``factor`` times another nevus.

    The nevi's weights are scaled so that their mean stays 1 (the class's total weight unchanged); every other
    image weighs 1. Multiplied by the class weights in training (:func:`skinlib.features.train_top`).

    >>> nv = data.CLASSES.index("nv")
    >>> confirmation_weights(np.array([nv, nv, nv, 0]), np.array(["follow_up", "histo", "histo", "histo"]), 0.5)
    array([0.6, 1.2, 1.2, 1. ])
    """
    labels, confirmation = np.asarray(labels), np.asarray(confirmation)
    weights = np.ones(len(labels))
    nevi = labels == data.CLASSES.index("nv")
    weights[nevi & (confirmation == FOLLOW_UP)] = factor
    weights[nevi] *= nevi.sum() / weights[nevi].sum()
    return weights


def head_rows(head, pooled_val, labels, excised):
    """A head's scores, plain and with TTA, on all validation images and on the excised ones."""
    return {(images, procedure): scores
            for images, rows in (("all", slice(None)), ("excised", excised))
            for procedure, scores in head_scores(head, pooled_val[:, rows], labels[rows]).items()}


def paired(table, arm, *, images="all", procedure="plain"):
    """Each (member, seed) pair's difference from the control head with the same seed, per metric."""
    def pick(name):
        return table.xs((name, images, procedure), level=("arm", "images", "procedure"))

    return pick(arm) - pick(CONTROL)


def rule_met(differences):
    """The rule, on unrounded numbers, from :func:`paired`'s plain differences on all images.

    >>> diff = pd.DataFrame({"balanced_accuracy": [0.02] * 7 + [-0.01] * 2, "malignant_auc": [-0.005] * 9})
    >>> rule_met(diff), rule_met(diff.assign(malignant_auc=-0.0051))
    (True, False)
    >>> rule_met(diff.assign(balanced_accuracy=[0.03] * 6 + [-0.01] * 3))  # Mean above 0.01, 6 of 9 higher.
    False
    """
    gain = differences["balanced_accuracy"]
    return bool(gain.mean() >= 0.01 and (gain > 0).sum() >= 7 and differences["malignant_auc"].mean() >= -0.005)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args()
    begin = time.perf_counter()
    labels, _, stored, stored_val = shipped_views(0)
    table = split.apply_split(data.load_metadata())
    train, val = (table[table["split"] == part].reset_index(drop=True) for part in ("train", "val"))
    assert np.array_equal(train["label"], labels["train"]) and np.array_equal(val["label"], labels["val"])
    excised = (val[metrics.CONFIRMATION] == metrics.EXCISED).to_numpy()
    options = {CONTROL: dict(sampling="shuffle", class_power=1.0)}
    for factor in FACTORS:
        options[f"follow-up x{factor}"] = dict(sampling="shuffle", class_power=1.0, image_weight=confirmation_weights(
            labels["train"], train[metrics.CONFIRMATION], factor))
    cut = features.CUTS["efficientnet_lite0"]
    rows = {}
    for number, member in enumerate(models.members(models.load_model(artefacts.models_dir() / ENSEMBLE))):
        upper, _ = member_parts(member, cut)
        pooled, pooled_val = features.pool_views(upper, stored), features.pool_views(upper, stored_val)
        heads, _ = features.compare_heads(pooled, labels["train"], (pooled_val[0], labels["val"]), options=options,
                                          seeds=range(3), epochs=30, label_smoothing=0.1, patience=6)
        for (arm, seed), run in heads.items():
            for key, scores in head_rows(run.model, pooled_val, labels["val"], excised).items():
                rows[(arm, number, seed, *key)] = scores
        print(f"member {number} done, {time.perf_counter() - begin:.0f} s", flush=True)
    frame = pd.DataFrame(rows).T[KEYS].astype(float)
    frame.index.names = ["arm", "member", "seed", "images", "procedure"]
    mean = frame.groupby(level=["arm", "images", "procedure"], sort=False).mean()
    print(mean.round(4).to_string())
    changes = {}
    for arm in options:
        if arm == CONTROL:
            continue
        changes[arm] = {}
        for images in ("all", "excised"):
            for procedure in ("plain", "TTA"):
                diff = paired(frame, arm, images=images, procedure=procedure)
                changes[arm][f"{images}, {procedure}"] = {
                    "mean": diff.mean().round(4).to_dict(),
                    "pairs_higher_balanced_accuracy": int((diff["balanced_accuracy"] > 0).sum()),
                    "balanced_accuracy_by_pair": diff["balanced_accuracy"].round(4).tolist()}
    met = rule_met(paired(frame, f"follow-up x{FACTORS[0]}"))
    print("changes:", changes, "\nrule met:", met)
    result = {
        "benchmark": "confirmation_weights",
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "model": ENSEMBLE,
        "training_nevi": int((labels["train"] == data.CLASSES.index("nv")).sum()),
        "training_nevi_follow_up": int(((labels["train"] == data.CLASSES.index("nv"))
                                        & (train[metrics.CONFIRMATION] == FOLLOW_UP).to_numpy()).sum()),
        "validation_images": int(len(val)),
        "validation_excised": int(excised.sum()),
        "mean": {", ".join(key): mean.loc[key].round(4).to_dict() for key in mean.index},
        "changes": changes,
        "rule_met": met,
        "runs": {", ".join(str(part) for part in key): frame.loc[key].round(4).to_dict() for key in frame.index},
        "seconds": round(time.perf_counter() - begin, 1),
        "machine": {"cpu_count": os.cpu_count(), "processor": cpu_name(), "avx512": cpu_has_avx512()},
        "command": f"python benchmarks/confirmation_weights.py --out {args.out}",
    }
    artefacts.write_json_atomic(Path(args.out), result, end="\n")


if __name__ == "__main__":
    main()

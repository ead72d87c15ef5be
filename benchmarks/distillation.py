"""Scout: distil the shipped three-seed ensemble into one network of chapter 03's recipe (knowledge distillation).

The shipped model averages three networks, each chapter 03's recipe with another seed: three times the size and
the time of one. Hinton et al. (2015, "Distilling the knowledge in a neural network") trained one network on an
ensemble's probabilities ("soft targets") in place of the labels and found it kept most of the ensemble's gain; the
soft targets also say which wrong classes a picture resembles, which the one-hot labels do not. This scout asks,
on validation, with one seed: does chapter 03's recipe, with the ensemble's probabilities as its targets, give one
network as good as the ensemble?

The teacher is the shipped ensemble (``Saved_Models/03_efficientnet_lite0_ensemble.keras``): its three members'
upper blocks and heads, run on chapter 03's stored training views (seed ``--seed``, the views its members trained
on), averaged, give a target for every stored view. The student is chapter 03's recipe unchanged (the head of
the first stage trained on pooled views with class weights power 1, then the upper blocks and that head for at
most 10 epochs with a one-cycle peak of 3e-4, label smoothing 0.1, class weights power 1 by each image's label,
the best validation epoch kept) but for one thing: each stored view's target is the teacher's probabilities for
that view, not its label (:func:`skinlib.features.train_top`'s ``targets``). ``--class-power 0`` drops the class
weights of the upper-block stage too, since the teacher was trained with them: its targets already carry their balance. It is compared with the same recipe
on the labels with the same seed on the same kind of machine (``benchmarks/results/control_xeon.json``) and with
its teacher. A scout for whether a three-seed trial is worth its hour, not a finding.

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/distillation.py \\
        --seed 0 --out benchmarks/results/distillation.json
    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/distillation.py \\
        --seed 0 --class-power 0 --out benchmarks/results/distillation_unweighted.json

About 28-30 minutes on 2 cores (Intel Xeon with AVX-512) when the stored views are in skinlib's cache: the
teacher's pass over the stored views and the student's epochs take about half each.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib import artefacts, features, metrics, models
from skinlib.reproduce import cpu_has_avx512, cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classifier_retraining import member_parts, shipped_views  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["accuracy", "balanced_accuracy", "macro_auc", "malignant_auc", "recall_mel"]
ENSEMBLE = "03_efficientnet_lite0_ensemble.keras"
CONTROL = ROOT / "benchmarks" / "results" / "control_xeon.json"


def member_top(member, cut):
    """One pixels-in member of an ensemble as a stored-maps-in model: its upper blocks, pooling and head.

    Built as chapter 03 builds the model it trains (:func:`skinlib.features.top_model`), with the member's head
    weights loaded as :func:`skinlib.features.train_top` loads a first-stage head.
    """
    upper, head = member_parts(member, cut)
    top = features.top_model(upper)
    top.get_layer("head").set_weights(head.get_weights())
    return top


def teacher_targets(tops, stored):
    """The mean of ``tops``' probabilities for each stored view: shape (views, n, classes), float32."""
    return np.mean([[features.predict_views(top, view[None]) for view in stored] for top in tops],
                   axis=0).astype("float32")


def control_rows(seed):
    """The same recipe on the labels (seed ``seed``) and its ensemble, from ``control_xeon.json``."""
    runs = json.loads(CONTROL.read_text())["runs"]
    name = f"03_efficientnet_lite0_views_seed{seed}"
    return {("labels (control_xeon.json)", "plain"): runs[name],
            ("labels (control_xeon.json)", "TTA"): runs[f"{name}_tta"],
            ("ensemble (control_xeon.json)", "plain"): runs["03_efficientnet_lite0_ensemble"],
            ("ensemble (control_xeon.json)", "TTA"): runs["03_efficientnet_lite0_ensemble_tta"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the stored views' seed and the student's seed "
                        "(default 0: the views the shipped members trained on, control_xeon.json's seed 0)")
    parser.add_argument("--class-power", type=float, default=1.0, help="the power of the class weights that weigh "
                        "each stored view's loss by its label in the student's upper-block stage (default 1: the "
                        "recipe's; 0: none, the teacher's targets alone)")
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args()
    begin = time.perf_counter()
    option, cut = "class weights, power 1", features.CUTS["efficientnet_lite0"]
    labels, upper, stored, stored_val = shipped_views(args.seed)
    start = time.perf_counter()
    tops = [member_top(member, cut) for member in models.members(models.load_model(artefacts.models_dir() / ENSEMBLE))]
    targets = teacher_targets(tops, stored)
    teacher_val = teacher_targets(tops, stored_val)
    teacher_seconds = time.perf_counter() - start
    rows = {("teacher (shipped ensemble)", "plain"): metrics.classification_metrics(labels["val"], teacher_val[0]),
            ("teacher (shipped ensemble)", "TTA"): metrics.classification_metrics(labels["val"], teacher_val.mean(0))}
    taught = targets.mean(axis=0)
    soft = {"mean top probability": float(targets.max(axis=-1).mean()),
            "share of views whose top class is the label": float((targets.argmax(-1) == labels["train"]).mean()),
            "training balanced accuracy (mean over views)": float(metrics.classification_metrics(
                labels["train"], taught)["balanced_accuracy"])}
    pooled, pooled_val = features.pool_views(upper, stored), features.pool_views(upper, stored_val)
    first, _ = features.compare_heads(pooled, labels["train"], (pooled_val[0], labels["val"]),
                                      options={option: features.BALANCING[option]}, seeds=[args.seed], epochs=30,
                                      label_smoothing=0.1, patience=6)
    run = features.train_top(upper, stored, labels["train"], (np.asarray(stored_val[0]), labels["val"]),
                             name="student", epochs=10, batch_size=64, learning_rate=3e-4, label_smoothing=0.1,
                             patience=4, seed=args.seed, head=first[(option, args.seed)].model, targets=targets,
                             sampling="shuffle", class_power=args.class_power)
    rows[("student", "plain")] = metrics.classification_metrics(labels["val"], run.validation_probabilities)
    rows[("student", "TTA")] = metrics.classification_metrics(labels["val"], features.predict_views(run.model,
                                                                                                     stored_val))
    rows.update(control_rows(args.seed))
    table = pd.DataFrame(rows).T[KEYS].astype(float)
    table.index.names = ["model", "procedure"]
    print(table.round(4).to_string())
    result = {
        "benchmark": "distillation",
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "runs": {", ".join(key): table.loc[key].round(4).to_dict() for key in table.index},
        "class_power": args.class_power,
        "targets": {key: round(value, 4) for key, value in soft.items()},
        "student": {"best_epoch": run.best_epoch,
                    "curve": run.history["val_balanced_accuracy"].round(4).tolist()},
        "seconds": {"teacher": round(teacher_seconds, 1), "student": round(run.seconds, 1),
                    "total": round(time.perf_counter() - begin, 1)},
        "machine": {"cpu_count": os.cpu_count(), "processor": cpu_name(), "avx512": cpu_has_avx512()},
        "command": f"python benchmarks/distillation.py --seed {args.seed}"
                   + (f" --class-power {args.class_power:g}" if args.class_power != 1 else "") + f" --out {args.out}",
    }
    artefacts.write_json_atomic(Path(args.out), result, end="\n")


if __name__ == "__main__":
    main()

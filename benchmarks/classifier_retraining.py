"""Scout: retrain chapter 03's head alone, with class balancing, on the trained upper blocks (decoupled training).

Kang et al. (ICLR 2020, "Decoupling representation and classifier for long-tailed recognition") found that a
network trained on the data as they come (no class balancing) learns the better features, and that the class
balance is best restored afterwards by re-training only the classifier, from scratch, on those frozen features
with class-balanced sampling ("cRT"). Chapter 03 balances both stages with class weights. This scout asks two
questions on validation, with one seed of the upper blocks each:

1. ``shipped``: does re-training the head of the shipped ensemble's member ``--member`` (its upper blocks frozen,
   as trained with class weights) on the pooled stored views beat that member's own head?
2. ``plain``: chapter 03's recipe (stored views of seed ``--seed``, 10 epochs, learning rate 3e-4, label smoothing
   0.1, best validation epoch kept), but with no class balancing in either stage; then the head re-trained on its
   upper blocks' pooled stored views, as in 1. Compared with the same recipe with class weights
   (``benchmarks/results/control_xeon.json``, seed ``--seed``, on the same kind of machine).

Each re-trained head is one of chapter 03's balancing options (class weights power 1, balanced sampling),
trained three times (seeds ``--seed`` to ``--seed`` + 2) on the pooled features of all stored training views
(:func:`skinlib.features.compare_heads`, 30 epochs, learning rate 1e-3, the best validation epoch kept, as the
chapter's head comparison does), scored in one pass (the first validation flip) and with TTA (the mean over the
four flips). A scout for whether a three-seed trial of the whole recipe is worth its hour, not a finding.

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/classifier_retraining.py \\
        --seed 0 --member 0 --arms shipped,plain --out benchmarks/results/classifier_retraining.json

About 25 minutes on 2 cores (Intel Xeon with AVX-512) when the stored views are in skinlib's cache; the upper
blocks' 10 epochs of the ``plain`` arm are most of it.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib import artefacts, features, metrics, models, split
from skinlib.reproduce import cpu_has_avx512, cpu_name

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["accuracy", "balanced_accuracy", "macro_auc", "malignant_auc", "recall_mel"]
OPTIONS = {name: features.BALANCING[name] for name in ("class weights, power 1", "balanced sampling")}
ENSEMBLE = "03_efficientnet_lite0_ensemble.keras"


def shipped_views(seed):
    """Chapter 03's stored views as its shipped recipe stores them (seed ``seed``), and a fresh backbone's upper part.

    Returns ``labels`` ({"train", "val"}: class indices), ``upper`` (ImageNet weights, from the cut on), ``stored``
    (four jittered training views, zoom up to 1.7x, dark fields in half) and ``stored_val`` (the four plain flips of
    each validation image), read from skinlib's cache when the chapter has stored them.
    """
    size = (150, 200)
    parts = split.load_split_images(size, splits=("train", "val"), seed=seed, progress=False)
    labels = {part: rows.labels for part, rows in parts.items()}
    base = models.backbone("efficientnet_lite0", input_shape=(*size, 3), colour_constancy=True)
    lower, upper = features.split_backbone(base, features.CUTS["efficientnet_lite0"])
    stored = features.cached_features(lower, parts["train"].images, views=4, seed=seed, jitter=1.0, zoom=0.7,
                                      surround=0.5, description="training views")
    stored_val = features.cached_features(lower, parts["val"].images, views=4, seed=seed, jitter=0.0,
                                          description="validation flips")
    return labels, upper, stored, stored_val


def member_parts(member, cut):
    """The trained upper blocks and head of one pixels-in member of the shipped ensemble."""
    return features.split_backbone(models.base_of(member), cut)[1], member.get_layer("head")


def head_scores(head, pooled_val, labels):
    """A head's validation metrics in one pass (the first flip) and with TTA (the mean over the flips)."""
    return {"plain": metrics.classification_metrics(labels, features.predict_views(head, pooled_val[:1])),
            "TTA": metrics.classification_metrics(labels, features.predict_views(head, pooled_val))}


def retrained(upper, stored, stored_val, labels, seed):
    """Heads re-trained from scratch on ``upper``'s pooled views: rows ``(option, seed, procedure)``."""
    pooled, pooled_val = features.pool_views(upper, stored), features.pool_views(upper, stored_val)
    heads, _ = features.compare_heads(pooled, labels["train"], (pooled_val[0], labels["val"]), options=OPTIONS,
                                      seeds=range(seed, seed + 3), epochs=30, label_smoothing=0.1, patience=6)
    rows = {}
    for (option, head_seed), run in heads.items():
        for procedure, scores in head_scores(run.model, pooled_val, labels["val"]).items():
            rows[(f"re-trained head, {option}", head_seed, procedure)] = scores
    return rows, pooled_val


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the stored views' seed and the upper blocks' seed of "
                        "the plain arm; heads train with it and the next two (default 0: control_xeon.json's seed 0)")
    parser.add_argument("--member", type=int, default=0, help="which member of the shipped ensemble (0: seed 0)")
    parser.add_argument("--arms", default="shipped,plain", help="comma-separated: shipped, plain")
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args()
    arms = args.arms.split(",")
    begin = time.perf_counter()
    cut = features.CUTS["efficientnet_lite0"]
    labels, upper, stored, stored_val = shipped_views(args.seed)
    rows, seconds = {}, {}
    if "shipped" in arms:
        start = time.perf_counter()
        member = models.members(models.load_model(artefacts.models_dir() / ENSEMBLE))[args.member]
        member_upper, member_head = member_parts(member, cut)
        found, pooled_val = retrained(member_upper, stored, stored_val, labels, args.seed)
        for procedure, scores in head_scores(member_head, pooled_val, labels["val"]).items():
            rows[("shipped member", "own head", 0, procedure)] = scores
        rows.update({("shipped member", *key): value for key, value in found.items()})
        seconds["shipped"] = round(time.perf_counter() - start, 1)
    if "plain" in arms:
        start = time.perf_counter()
        none = {"none": dict(sampling="shuffle", class_power=0.0)}
        pooled, pooled_val = features.pool_views(upper, stored), features.pool_views(upper, stored_val)
        first, _ = features.compare_heads(pooled, labels["train"], (pooled_val[0], labels["val"]), options=none,
                                          seeds=[args.seed], epochs=30, label_smoothing=0.1, patience=6)
        run = features.train_top(upper, stored, labels["train"], (np.asarray(stored_val[0]), labels["val"]),
                                 name="plain", epochs=10, batch_size=64, learning_rate=3e-4, label_smoothing=0.1,
                                 patience=4, seed=args.seed, head=first[("none", args.seed)].model,
                                 sampling="shuffle", class_power=0.0)
        own = {"plain": metrics.classification_metrics(labels["val"], run.validation_probabilities),
               "TTA": metrics.classification_metrics(labels["val"], features.predict_views(run.model, stored_val))}
        for procedure, scores in own.items():
            rows[("no balancing", "own head", 0, procedure)] = scores
        found, _ = retrained(upper, stored, stored_val, labels, args.seed)
        rows.update({("no balancing", *key): value for key, value in found.items()})
        seconds["plain"] = round(time.perf_counter() - start, 1)
        seconds["plain_upper_blocks"] = round(run.seconds, 1)
    table = pd.DataFrame(rows).T[KEYS].astype(float)
    table.index.names = ["arm", "head", "seed", "procedure"]
    summary = table.groupby(level=["arm", "head", "procedure"], sort=False).agg(["mean", "std"])
    print(summary.round(4).to_string())
    result = {
        "benchmark": "classifier_retraining",
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "runs": {", ".join(str(part) for part in key): table.loc[key].round(4).to_dict() for key in table.index},
        "mean": {", ".join(key): summary.loc[key].xs("mean", level=1).round(4).to_dict() for key in summary.index},
        "seconds": {**seconds, "total": round(time.perf_counter() - begin, 1)},
        "machine": {"cpu_count": os.cpu_count(), "processor": cpu_name(), "avx512": cpu_has_avx512()},
        "command": f"python benchmarks/classifier_retraining.py --seed {args.seed} --member {args.member} "
                   f"--arms {args.arms} --out {args.out}",
    }
    artefacts.write_json_atomic(Path(args.out), result, end="\n")


if __name__ == "__main__":
    main()

"""Compare class-balancing losses on chapter 03's heads: class weights, balanced sampling, logit adjustment, none.

Chapter 03 compares its balancing options on heads trained over the pooled stored views (seconds each, three
seeds) before the upper blocks train. This scout adds the logit-adjusted loss (Menon et al. 2021, ``tau`` 1 and 0.5:
cross-entropy of ``softmax(logits + tau * log prior)``, :func:`skinlib.features.loss_function`) and no balancing
at all, with and without the post-hoc version of the same correction (each probability divided by its class's
training share to the power ``tau``, then renormalised). It runs chapter 03's head stage as the chapter does
(today's recipe: stored views of ``--seed``, 30 epochs, learning rate 1e-3, label smoothing 0.1, patience 6, best
validation epoch kept), on validation only; the logit-adjusted loss takes no label smoothing (smoothed adjusted
targets leave each rare class a floor that prediction divides by its small share), so its arms train without. One kind of head, on one set of stored views: a scout for whether a
three-seed trial of the whole recipe is worth its hour, not a finding about the upper blocks. The head loop is
the chapter's (:func:`skinlib.features.compare_heads`, with the chapter's settings).

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/balancing_heads.py \\
        --out benchmarks/results/balancing_heads.json

About 6 minutes on 2 cores when the stored views are in skinlib's cache (chapter 03 run with the same seed); the
pooling of the stored views through the upper blocks is most of it.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib import features, metrics, models, split
from skinlib.reproduce import cpu_has_avx512, cpu_name

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["accuracy", "balanced_accuracy", "macro_auc", "malignant_auc", "recall_mel"]
OPTIONS = {
    "class weights, power 1": dict(sampling="shuffle", class_power=1.0),
    "balanced sampling": dict(sampling="balanced", class_power=1.0),
    "logit adjustment, tau 1": dict(sampling="shuffle", class_power=0.0, loss="logit_adjusted", tau=1.0,
                                    label_smoothing=0.0),
    "logit adjustment, tau 0.5": dict(sampling="shuffle", class_power=0.0, loss="logit_adjusted", tau=0.5,
                                      label_smoothing=0.0),
    "none": dict(sampling="shuffle", class_power=0.0),
}
POST_HOC = (0.5, 1.0)
"""Powers of the post-hoc prior correction applied to the heads trained with no balancing."""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=3, help="the stored views' seed; heads train with it and the "
                        "next two (default 3: the views of chapter03_surround_views.json's seeds 3-5)")
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args()
    begin = time.perf_counter()
    size = (150, 200)
    parts = split.load_split_images(size, splits=("train", "val"), seed=args.seed, progress=False)
    labels = {part: rows.labels for part, rows in parts.items()}
    base = models.backbone("efficientnet_lite0", input_shape=(*size, 3), colour_constancy=True)
    lower, upper = features.split_backbone(base, features.CUTS["efficientnet_lite0"])
    stored = features.cached_features(lower, parts["train"].images, views=4, seed=args.seed, jitter=1.0, zoom=0.7,
                                      surround=0.5, description="training views")
    stored_val = features.cached_features(lower, parts["val"].images, views=4, seed=args.seed, jitter=0.0,
                                          description="validation flips")
    pooled, pooled_val = features.pool_views(upper, stored), features.pool_views(upper, stored_val)
    prior = features.class_prior(labels["train"])  # What the logit-adjusted loss shifts by, too.
    seeds = range(args.seed, args.seed + 3)
    heads, table = features.compare_heads(pooled, labels["train"], (pooled_val[0], labels["val"]), options=OPTIONS,
                                          seeds=seeds, epochs=30, label_smoothing=0.1, patience=6)
    rows = {}
    for option, seed in table.index:
        rows[(option, seed)] = table.loc[(option, seed)]
        if option == "none":
            for tau in POST_HOC:
                adjusted = heads[(option, seed)].validation_probabilities / prior ** tau
                adjusted /= adjusted.sum(axis=1, keepdims=True)
                rows[(f"none, then post-hoc tau {tau:g}", seed)] = pd.Series(metrics.classification_metrics(
                    labels["val"], adjusted))
    table = pd.DataFrame(rows).T[KEYS].astype(float)
    summary = table.groupby(level=0, sort=False).agg(["mean", "std"])
    print(summary.round(3).to_string())
    result = {
        "benchmark": "balancing_heads",
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "runs": {f"{option}, seed {seed}": table.loc[(option, seed)].round(4).to_dict() for option, seed in table.index},
        "mean": {option: summary.loc[option].xs("mean", level=1).round(4).to_dict() for option in summary.index},
        "sd": {option: summary.loc[option].xs("std", level=1).round(4).to_dict() for option in summary.index},
        "seconds": round(time.perf_counter() - begin, 1),
        "machine": {"cpu_count": os.cpu_count(), "processor": cpu_name(), "avx512": cpu_has_avx512()},
        "command": f"python benchmarks/balancing_heads.py --seed {args.seed} --out {args.out}",
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

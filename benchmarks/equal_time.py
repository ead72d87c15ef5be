"""Cached views against end-to-end fine-tuning at equal wall time: validation balanced accuracy against seconds.

Chapter 03 trains the upper blocks of EfficientNet-Lite0 on stored feature maps of four jittered views per image
(the lower part runs once). The alternative is end-to-end fine-tuning: every epoch runs and back-propagates the
whole network over freshly augmented images (the same flips and acquisition jitter, drawn anew each epoch). Both
start the same way, with a head trained first (at most 30 epochs) on the frozen network's pooled features of the
stored views or of the plain training images, and share the rest: class weights of power 1, label smoothing 0.1,
a one-cycle learning rate peaking at 3e-4, BatchNorm frozen, Shades of Gray colour constancy. Both are scored
after every epoch on the plain validation images. The clock starts before anything is
computed from the images (decoding is shared and cached, so it is left out): the views' clock includes storing
them (in a fresh cache, so the cost is always paid), and both include the head. No early stopping: the whole
curve is recorded. The per-epoch times of the views method are its training time split evenly over its epochs
(each epoch does the same work).

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/equal_time.py --method views --epochs 10 \\
        --out benchmarks/results/equal_time_views.json
    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/equal_time.py --method views --epochs 10 --seed 1 \\
        --out benchmarks/results/equal_time_views_seed1.json
    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/equal_time.py --method views --cut block7_add \\
        --epochs 10 --out benchmarks/results/equal_time_views_block7.json
    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/equal_time.py --method end_to_end --epochs 5 \\
        --out benchmarks/results/equal_time_end_to_end.json
    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/equal_time.py --method end_to_end --epochs 5 --seed 1 \\
        --out benchmarks/results/equal_time_end_to_end_seed1.json
    python benchmarks/equal_time.py --plot benchmarks/results/equal_time_{end_to_end,views}*.json \\
        --figure Images/equal_time.png

The same comparison at chapter 03's design of today (150x200, cut at block4_add, batches of 32, views and
augmentation enlarged up to 1.7x and in dark dermoscope fields half of the time):

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/equal_time.py --method views --height 150 --cut block4_add \\
        --batch-size 32 --zoom 0.7 --surround 0.5 --epochs 10 --out benchmarks/results/equal_time_150x200_views.json
    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/equal_time.py --method end_to_end --height 150 \\
        --batch-size 32 --zoom 0.7 --surround 0.5 --epochs 5 --out benchmarks/results/equal_time_150x200_end_to_end.json
    python benchmarks/equal_time.py --plot benchmarks/results/equal_time_150x200_*.json \\
        --figure Images/equal_time_150x200.png

One seed per record: the spread over seeds of chapter 03's recipe (a few hundredths of balanced accuracy) is the
scale of noise when reading the curves. Each record took 15-28 minutes on 2 cores of a CPU without AVX-512
(the same 5 end-to-end epochs took 21 minutes with seed 0 and 28 with seed 1: the clock of a shared machine
varies too); with AVX-512, the same training of the views ran about twice as fast in chapter 03's committed run.
Records from this version on say whether the CPU has AVX-512.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from skinlib.reproduce import cpu_has_avx512, cpu_name  # noqa: E402


def _head(pooled, labels, pooled_val, val_labels, seed):
    """Stage 1 of both methods: a head alone on the frozen network's pooled features (as chapter 03)."""
    from skinlib import features

    return features.train_top(None, pooled, labels, (pooled_val, val_labels), name="head", epochs=30,
                              learning_rate=1e-3, label_smoothing=0.1, patience=6, seed=seed, verbose=False,
                              sampling="shuffle", class_power=1.0)


def cached_views(parts, size, *, cut, epochs, seed, jitter, batch_size=64, zoom=0.2, surround=0.0):
    """Chapter 03's method; returns the seconds spent before the first epoch and the per-epoch curve."""
    import numpy as np

    from skinlib import features, models

    start = time.perf_counter()
    base = models.backbone("efficientnet_lite0", input_shape=(*size, 3), colour_constancy=True)
    lower, upper = features.split_backbone(base, cut)
    with tempfile.TemporaryDirectory() as cache:
        stored = features.cached_features(lower, parts["train"].images, views=4, seed=0, jitter=jitter, zoom=zoom,
                                          surround=surround, cache_dir=cache, description="training views")
        stored_val = features.cached_features(lower, parts["val"].images, views=1, seed=0, jitter=0.0,
                                              cache_dir=cache, description="validation")
    labels, val_labels = parts["train"].labels, parts["val"].labels
    head = _head(features.pool_views(upper, stored), labels, features.pool_views(upper, stored_val)[0], val_labels,
                 seed)
    setup = time.perf_counter() - start
    run = features.train_top(upper, stored, labels, (np.asarray(stored_val[0]), val_labels), name="views",
                             epochs=epochs, batch_size=batch_size, learning_rate=3e-4, label_smoothing=0.1,
                             patience=epochs, seed=seed, head=head.model, sampling="shuffle", class_power=1.0)
    per_epoch = run.seconds / len(run.history)
    seconds = [setup + per_epoch * epoch for epoch in run.history.index]
    return setup, seconds, run.history


def end_to_end(parts, size, *, epochs, seed, jitter, batch_size=64, zoom=0.2, surround=0.0):
    """The whole network trained on freshly augmented images every epoch."""
    import keras
    import numpy as np
    import tensorflow as tf

    from skinlib import acquisition, features, models, pipeline, train

    start = time.perf_counter()
    labels, val_labels = parts["train"].labels, parts["val"].labels
    base = models.backbone("efficientnet_lite0", input_shape=(*size, 3), colour_constancy=True)
    pooled, pooled_val = (features.pool_views(base, part.images[None]) for part in (parts["train"], parts["val"]))
    head = _head(pooled, labels, pooled_val[0], val_labels, seed)
    setup = time.perf_counter() - start

    train.set_seeds(seed)
    model = models.classifier(base, head.model)
    models.unfreeze(model, base.layers[0].name)
    flips = models.RandomDihedral(seed=seed)

    def augment(images):
        key = tf.random.uniform((2,), maxval=2**31 - 1, dtype=tf.int64, seed=seed)
        return acquisition.random_acquisition(flips(images, training=True), key, strength=jitter, zoom=zoom,
                                              surround=surround)

    data = pipeline.training_dataset(parts["train"].images, np.eye(7, dtype="float32")[labels],
                                     batch_size=batch_size, seed=seed, augment=augment)
    ends = []
    clock = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
    run = train.fit(model, data, (parts["val"].images, val_labels), name="end_to_end", epochs=epochs,
                    learning_rate=3e-4, schedule="one_cycle", class_weight=train.class_weights(labels, power=1.0),
                    patience=epochs, loss=features.loss_function("cross_entropy", label_smoothing=0.1),
                    callbacks=[clock])
    return setup, [end - start for end in ends], run.history


def plot(paths, figure_path):
    """One line per record: validation balanced accuracy against minutes since the clock started."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skinlib import explore

    figure, axis = plt.subplots(figsize=(8, 5.5))
    for path in paths:
        record = json.loads(Path(path).read_text())
        minutes = [row["seconds"] / 60 for row in record["curve"]]
        scores = [row["val_balanced_accuracy"] for row in record["curve"]]
        label = f"{record['label']}, {record['epochs']} epochs, seed {record['seed']}"
        line, = axis.plot(minutes, scores, marker="o", label=label)
        axis.axvline(record["setup_seconds"] / 60, color=line.get_color(), linestyle=":", linewidth=1)
    axis.set_xlabel("minutes since the start (dotted: first epoch starts; before it, storing views and the head)")
    axis.set_ylabel("validation balanced accuracy")
    axis.set_title(f"Equal wall time, EfficientNet-Lite0 at {record['input']}, {record['cpu_count']} CPU cores "
                   f"({record['cpu']})", fontsize=10)
    axis.axhline(0.75, color="gray", linestyle="--", linewidth=1, label="the project's goal (0.75)")
    axis.set_xlim(left=0)
    axis.grid(alpha=0.3)
    handles, labels = axis.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", fontsize=8, frameon=False)
    figure.subplots_adjust(bottom=0.15 + 0.035 * len(labels))
    explore.save_figure(figure, Path(figure_path).stem, folder=Path(figure_path).parent)
    print(f"wrote {figure_path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("views", "end_to_end"))
    parser.add_argument("--cut", default="block10_add", help="views: the last layer of the frozen lower part (the "
                        "default is chapter 03's cut when the records were made; skinlib.features.CUTS has today's)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--height", type=int, default=120, help="input height (width is 4/3 of it)")
    parser.add_argument("--jitter", type=float, default=1.0)
    parser.add_argument("--zoom", type=float, default=0.2, help="the jitter's most enlargement beyond 1x (chapter "
                        "03's zoom_views; 0.2 when the first records were made)")
    parser.add_argument("--surround", type=float, default=0.0, help="share of augmented images shown in a dark "
                        "dermoscope field (chapter 03's surround_views; 0 when the first records were made)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch of the training after the head (chapter "
                        "03's batch_size; 64 when the first records were made)")
    parser.add_argument("--out", help="the JSON record to write")
    parser.add_argument("--plot", nargs="+", metavar="RECORD", help="draw these records instead of training")
    parser.add_argument("--figure", default=str(ROOT / "Images" / "equal_time.png"))
    args = parser.parse_args()
    if args.plot:
        return plot(args.plot, args.figure)
    if not (args.method and args.out):
        parser.error("--method and --out are needed unless --plot is given")

    from skinlib import artefacts, split

    size = (args.height, round(args.height * 4 / 3))
    parts = split.load_split_images(size, splits=("train", "val"), seed=0, progress=False)
    settings = dict(epochs=args.epochs, seed=args.seed, jitter=args.jitter, batch_size=args.batch_size, zoom=args.zoom,
                    surround=args.surround)
    if args.method == "views":
        setup, seconds, history = cached_views(parts, size, cut=args.cut, **settings)
        label = f"cached views, lower part frozen up to {args.cut}"
    else:
        setup, seconds, history = end_to_end(parts, size, **settings)
        label = "end-to-end fine-tuning"
    curve = [{"epoch": int(epoch), "seconds": round(float(second), 1),
              "val_balanced_accuracy": round(float(history.loc[epoch, "val_balanced_accuracy"]), 4),
              "val_accuracy": round(float(history.loc[epoch, "val_accuracy"]), 4),
              "loss": round(float(history.loc[epoch, "loss"]), 4)} for epoch, second in zip(history.index, seconds)]
    best = max(curve, key=lambda row: row["val_balanced_accuracy"])
    record = {"method": args.method, "label": label, "cut": args.cut if args.method == "views" else None,
              "epochs": args.epochs, "seed": args.seed, "input": f"{size[0]}x{size[1]}", "jitter": args.jitter,
              "zoom": args.zoom, "surround": args.surround, "batch_size": args.batch_size,
              "setup_seconds": round(setup, 1), "curve": curve, "best": best, "cpu": cpu_name(),
              "avx512": cpu_has_avx512(), "cpu_count": os.cpu_count(), "command": "python benchmarks/equal_time.py " + " ".join(sys.argv[1:])}
    artefacts.write_json_atomic(args.out, record, end="\n")
    print(json.dumps({key: record[key] for key in ("label", "setup_seconds", "best")}))


if __name__ == "__main__":
    main()

"""Images per second for training on this CPU: which backbone, input size and design the budget affords.

For each backbone (MobileNet 0.25, EfficientNet-Lite0/1/2) and input size,
batch 32, on random pixels (speed does not depend on the content):

- ``forward``: inference only (``training=False``), what feature extraction
  and prediction cost;
- ``train_full``: one optimiser step of the whole network (forward and
  backward, every weight trainable but BatchNorm), what end-to-end
  fine-tuning costs;
- ``train_top``: one optimiser step of the part above the cut that
  :mod:`skinlib.features` caches (from the maps stored at the backbone's cut in
  ``skinlib.features.CUTS``), what training on cached
  multi-view features costs per view;
- ``lower_forward``: the frozen lower part alone, what caching one view costs.

First, TensorFlow's thread settings are compared on EfficientNet-Lite0 at
150x200 (each setting in a fresh process, as TensorFlow fixes them at start-up):
the four rates, and whether the setting changes what training computes (a
digest of the weights after a short seeded :func:`skinlib.features.train_top`
on stored maps, the training chapter 03 spends its time on). The table below
uses the setting with the highest ``train_top``.

Run:  python benchmarks/training_speed.py              (the full table, about 10 minutes on 2 cores)
      python benchmarks/training_speed.py --quick      (Lite0 and MobileNet 0.25 at 150x200 only)

Results are printed and written to benchmarks/results/training_speed.json.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from input_pipeline import machine  # noqa: E402

BACKBONES = ("mobilenet_025", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
SIZES = ((120, 160), (150, 200), (180, 240))
THREADS = ((0, 0), (2, 1), (2, 2), (1, 2))
"""(intra-op, inter-op) thread counts; 0 is TensorFlow's default (one per core)."""


def set_threads(intra, inter):
    """Fix TensorFlow's thread pools (before any operation runs)."""
    import tensorflow as tf

    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def measure(name, size, *, batch_size, steps, repeats):
    """The four rates of one backbone at one input size (:func:`skinlib.features.training_rates`)."""
    from skinlib import features, models

    base = models.backbone(name, input_shape=(*size, 3))
    rates = features.training_rates(base, batch_size=batch_size, steps=steps, repeats=repeats)
    return {"backbone": name, "size": f"{size[0]}x{size[1]}", "batch": batch_size, **rates}


def training_digest(images=64, epochs=1):
    """A digest of the weights after a short seeded :func:`skinlib.features.train_top` on stored maps.

    Lite0 at 150x200 with its ImageNet weights, cut where chapter 03 cuts it,
    random pixels with a fixed seed: equal digests under two thread settings
    mean that the setting changed the speed, not what training computed.
    """
    import hashlib

    import numpy as np

    from skinlib import features, models, train

    train.set_seeds(0)
    base = models.backbone("efficientnet_lite0", input_shape=(150, 200, 3), colour_constancy=True)
    lower, upper = features.split_backbone(base)
    pixels = np.random.default_rng(0).integers(0, 256, (images, 150, 200, 3)).astype("float32")
    maps = np.asarray(lower(pixels, training=False)).astype("float16")
    labels = np.arange(images) % 7
    run = features.train_top(upper, np.stack([maps, maps[:, :, ::-1]]), labels, (maps, labels), name="digest",
                             epochs=epochs, batch_size=32, class_power=1.0, seed=0, verbose=False)
    weights = b"".join(np.asarray(value).tobytes() for value in run.model.get_weights())
    return hashlib.sha256(weights).hexdigest()[:16]


def compare_threads(steps, repeats):
    """Lite0 at 150x200 under each thread setting, each in a fresh process: rates and the training digest."""
    rows = []
    for intra, inter in THREADS:
        command = [sys.executable, __file__, "--worker", f"{intra},{inter}", "--steps", str(steps), "--repeats",
                   str(repeats)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        row = json.loads(output.strip().splitlines()[-1])
        rows.append({"intra_op": intra, "inter_op": inter,
                     **{key: row[key] for key in ("forward", "train_full", "lower_forward", "train_top", "digest")}})
        print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Lite0 and MobileNet 0.25 at 150x200 only")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per rate (default 4)")
    parser.add_argument("--repeats", type=int, default=2, help="timings per rate, the best kept (default 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "training_speed.json"))
    args = parser.parse_args()

    if args.worker:  # One thread setting, in its own process: print Lite0's row and the digest as JSON.
        set_threads(*map(int, args.worker.split(",")))
        row = measure("efficientnet_lite0", (150, 200), batch_size=args.batch_size, steps=args.steps,
                      repeats=args.repeats)
        print(json.dumps({**row, "digest": training_digest()}))
        return

    threads = compare_threads(args.steps, args.repeats)
    same = len({row["digest"] for row in threads}) == 1
    best = max(threads, key=lambda row: row["train_top"])
    print(f"fastest thread setting for train_top: intra-op {best['intra_op']}, inter-op {best['inter_op']} "
          f"(0: TensorFlow's default); the same trained weights under every setting: {same}")
    set_threads(best["intra_op"], best["inter_op"])
    backbones = BACKBONES[:2] if args.quick else BACKBONES
    sizes = ((150, 200),) if args.quick else SIZES
    rows = []
    for name in backbones:
        for size in sizes:
            rows.append(measure(name, size, batch_size=args.batch_size, steps=args.steps, repeats=args.repeats))
            print(rows[-1], flush=True)
    result = {"machine": machine(), "threads": threads, "chosen_threads": best, "same_weights": same, "rows": rows,
              "unit": f"images per second, batch {args.batch_size}, best of {args.repeats} timings",
              "command": " ".join(["python benchmarks/training_speed.py", *sys.argv[1:]])}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()

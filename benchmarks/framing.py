"""How should the checker frame an image that is not 4:3 landscape, like every training image? Measured on validation.

Every HAM10000 image is 600x450, so the models only ever saw landscape 4:3 images. A user's image may be
portrait (a phone held upright), square (many dermoscopes and other archives) or wide (16:9). Until this
benchmark the checker stretched any image to the model's input. Here each validation image is cut to such a
shape (the centre of the 150x200 image, or the image turned a quarter turn for portrait), framed by
:func:`skinlib.images.frame` in each way (stretch, turn a portrait image, crop to the centre, pad with black),
resized as the checker resizes, and scored by the checker itself (:class:`skinlib.predict.Checker`, with the
procedure, TTA or one pass, and the temperature chapter 04 chose for the shipped model).

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/framing.py --out benchmarks/results/framing.json

About 19 minutes on 2 cores for a model with TTA (an AMD EPYC without AVX-512), about 2.4 minutes for the
one-pass single model shipped before the ensemble (an AMD EPYC with AVX-512), 74 minutes for the batch-64 three-seed
ensemble with TTA shipped at 3c13fc0 (an AMD EPYC without AVX-512, partly beside a test run), 260 s for the batch-32
ensemble in one pass shipped after it (an Intel Xeon with AVX-512). The test split is never read.
"""

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from skinlib import images, metrics, split
from skinlib.artefacts import write_atomic
from skinlib.predict import Checker
from skinlib.reproduce import cpu_name

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["accuracy", "balanced_accuracy", "malignant_auc"]

SOURCES = {
    "4:3 landscape (as trained)": lambda x: x,
    "3:4 portrait (turned)": lambda x: np.rot90(x),
    "1:1 square (centre)": lambda x: x[:, 25:175],
    "16:9 wide (centre)": lambda x: x[19:131],
}
"""Shapes a user's image may have, made from a 150x200 validation image."""

FRAMINGS = {
    "stretch (before this benchmark)": dict(turn=False, fit="stretch"),
    "turn, then stretch": dict(turn=True, fit="stretch"),
    "turn, then crop": dict(turn=True, fit="crop"),
    "turn, then pad": dict(turn=True, fit="pad"),
}
"""The ways :func:`skinlib.images.frame` can bring an image to the training frame."""


def framed(pixels, source, framing, size):
    """The checker's input for each image: cut to ``source``'s shape, framed, resized to ``size``."""
    return np.stack([images.resize(images.frame(SOURCES[source](x), **FRAMINGS[framing]), size) for x in pixels])


def arguments(doc):
    """The command line both image benchmarks take: ``--out`` and ``--limit``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", required=True, help="the JSON to write")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N validation images (smoke)")
    return parser.parse_args()


def score(checker, labels, batch):
    """The checker's scores on a batch of images already at its input size (rounded to 4 places)."""
    probabilities = np.concatenate([checker.predict_pixels(batch[i:i + 128]) for i in range(0, len(batch), 128)])
    result = metrics.classification_metrics(labels, probabilities)
    return {key: round(float(result[key]), 4) for key in KEYS}


def write_record(args, script, checker, labels, started, **fields):
    """Write the benchmark's JSON record atomically: the model as the checker runs it, the fields, the machine."""
    record = {"split": "val", "images": int(len(labels)), "model": checker.name, "tta": checker.tta,
              "temperature": checker.temperature, **fields, "seconds": round(time.perf_counter() - started),
              "machine": {"cpu_count": os.cpu_count(), "processor": cpu_name()},
              "command": f"python benchmarks/{script} --out {args.out}"
                         + (f" --limit {args.limit}" if args.limit else "")}
    write_atomic(ROOT / args.out, lambda handle: handle.write((json.dumps(record, indent=2) + "\n").encode()))


def main():
    args = arguments(__doc__)
    started = time.perf_counter()
    checker = Checker(backend="keras")
    val = split.load_split_images(checker.size, splits=("val",), progress=False)["val"]
    pixels, labels = val.images[:args.limit], val.labels[:args.limit]
    scores, seen = {}, {}
    for source in SOURCES:
        for framing in FRAMINGS:
            begin = time.perf_counter()
            batch = framed(pixels, source, framing, checker.size)
            key = hashlib.blake2b(batch, digest_size=16).digest()  # np.stack gives a contiguous buffer.
            if key in seen:  # Framing changed nothing for this shape: the same input, the same scores.
                scores[f"{source} | {framing}"] = dict(scores[seen[key]])
                continue
            seen[key] = f"{source} | {framing}"
            scores[f"{source} | {framing}"] = score(checker, labels, batch)
            print(f"{source} | {framing}: {scores[f'{source} | {framing}']} "
                  f"({time.perf_counter() - begin:.0f} s)", flush=True)
    base = scores[f"{next(iter(SOURCES))} | {next(iter(FRAMINGS))}"]["balanced_accuracy"]
    for row in scores.values():
        row["balanced_accuracy_change"] = round(row["balanced_accuracy"] - base, 4)
    write_record(args, "framing.py", checker, labels, started, scores=scores)
    print(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()

"""Does a change of skinlib change training? Chapter 02's first three experiments, trained by two versions of the code.

Trains ``02_mlp``, ``02_cnn_first`` and ``02_cnn_first_sgd`` with chapter 02's settings (64x64, 6 epochs, seed 0)
using whichever ``skinlib`` is first on ``PYTHONPATH``, and prints their validation metrics, per-epoch history and
a hash of the trained weights as JSON. Run it once per version on the same machine, then compare:

    export SKINLIB_DATA=/path/to/ham10000   # the old worktree has no data/ folder
    git worktree add /tmp/old 17226bf
    PYTHONPATH=/tmp/old python benchmarks/chapter02_regression.py --run > /tmp/old.json
    python benchmarks/chapter02_regression.py --run > /tmp/new.json
    python benchmarks/chapter02_regression.py --compare /tmp/old.json /tmp/new.json

About 3 minutes per version on 2 cores. Identical weights on one machine say the code change did not change
training; across machines, TensorFlow's CPU kernels may round differently (see README, "Reproducibility").
"""

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path


def run():
    import numpy as np

    import skinlib
    from skinlib import models, split, train

    size = 64
    splits = split.load_split_images((size, size), splits=("train", "val"), per_split=None, seed=0, progress=False)
    result = {"skinlib": str(Path(skinlib.__file__).parent)}
    builds = {
        "02_mlp": (lambda: models.mlp((size, size, 3), hidden=(64,)), {}),
        "02_cnn_first": (lambda: models.cnn((size, size, 3), filters=(16, 32), pooling=False, dense=64), {}),
        "02_cnn_first_sgd": (lambda: models.cnn((size, size, 3), filters=(16, 32), pooling=False, dense=64),
                             dict(optimizer="sgd", learning_rate=0.01)),
    }
    with tempfile.TemporaryDirectory() as folder:
        for name, (build, extra) in builds.items():
            experiment = train.experiment(name, build, splits, folder=Path(folder), notebook="02_CNN_Iterations",
                                          epochs=6, batch_size=64, seed=0, patience=4, **extra)
            weights = b"".join(np.asarray(w).tobytes() for w in experiment.model.get_weights())
            history = experiment.run.history.round(6)
            result[name] = {"balanced_accuracy": experiment.metrics["balanced_accuracy"],
                            "accuracy": experiment.metrics["accuracy"],
                            "weights_sha256": hashlib.sha256(weights).hexdigest(),
                            "history": {column: history[column].tolist() for column in history}}
    print(json.dumps(result))


def compare(first, second):
    a, b = (json.loads(Path(path).read_text().strip().splitlines()[-1]) for path in (first, second))
    same = True
    for name in (key for key in a if key != "skinlib"):
        equal = a[name]["weights_sha256"] == b[name]["weights_sha256"] and a[name]["history"] == b[name]["history"]
        same &= equal
        print(f"{name}: balanced accuracy {a[name]['balanced_accuracy']:.4f} / {b[name]['balanced_accuracy']:.4f}, "
              f"weights and history {'identical' if equal else 'DIFFERENT'}")
    print("same training" if same else "training differs")
    return 0 if same else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--run", action="store_true", help="train and print JSON")
    group.add_argument("--compare", nargs=2, metavar=("FIRST", "SECOND"), help="compare two --run outputs")
    args = parser.parse_args()
    if args.run:
        run()
        return 0
    return compare(*args.compare)


if __name__ == "__main__":
    sys.exit(main())

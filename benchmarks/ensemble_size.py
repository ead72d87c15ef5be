"""What more seeds buy: ensembles of the first k seeds on the validation split, plain and under the named shifts.

The shipped model averages the probabilities of three seeds (chapter 03's ``full`` profile); each more seed costs
one more network per image in the lesion checker. This scores, on validation, one pass and no TTA, the ensemble of
the first k of the given seeds for every k, unshifted and under chapter 04's named acquisition shifts
(:data:`skinlib.acquisition.SHIFTS`): the curve of what more seeds would buy, and at what cost per image.
Each member is applied once per shift; an ensemble's probabilities are the mean of its members' (what
:func:`skinlib.models.ensemble` computes), so no ensemble is built or saved.

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/ensemble_size.py \\
        --model Saved_Models/03_efficientnet_lite0_ensemble.keras \\
        --model WORKTREE/Saved_Models/03_efficientnet_lite0_ensemble.keras \\
        --group 3:6 --out benchmarks/results/ensemble_size.json

where WORKTREE is the scratch copy kept by ``python benchmarks/chapter03_variant.py --set seed=3 --set
profile=full --keep --out ...`` (seeds 3-5). An ensemble given as ``--model`` adds its members in order; a model
may also be named ``REV:PATH`` (a committed file of an earlier commit), as in ``shifts_on_validation.py``.
``--group FIRST:STOP`` (repeatable) also scores the ensemble of members FIRST..STOP-1 alone (``3:6``: the second
run's seeds), to show how far a three-seed ensemble moves with its seeds.

About 20 s per member and shift on 2 cores at 150x200: 6 members under 8 conditions in about 16 minutes.
"""

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import sys

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shifts_on_validation import head_commit, open_model, shown  # noqa: E402 (a script beside this one)
from skinlib import acquisition, infer, metrics, models, split  # noqa: E402
from skinlib.reproduce import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["accuracy", "balanced_accuracy", "malignant_auc", "recall_mel"]


def scores(labels, probabilities):
    """The recorded metrics of one set of probabilities, rounded to four decimals."""
    found = metrics.classification_metrics(labels, probabilities)
    return {key: round(float(found[key]), 4) for key in KEYS}


def summary(labels, probabilities):
    """Unshifted metrics, then S: the mean balanced accuracy over the shifts other than ``none``."""
    row = scores(labels, probabilities["none"])
    shifted = [scores(labels, probs)["balanced_accuracy"] for shift, probs in probabilities.items() if shift != "none"]
    row["shifted_balanced_accuracy"] = round(statistics.mean(shifted), 4)
    return row


def mean_probabilities(probabilities, chosen):
    """Per shift, the mean of the chosen members' probabilities: what their :func:`skinlib.models.ensemble` gives."""
    return {shift: np.mean([probabilities[i][shift] for i in chosen], axis=0) for shift in probabilities[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, metavar="PATH",
                        help="a saved .keras model, or an ensemble whose members are added in order (repeatable)")
    parser.add_argument("--group", action="append", default=[], metavar="FIRST:STOP",
                        help="also score the ensemble of members FIRST..STOP-1 (repeatable)")
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args()
    groups = []
    for item in args.group:
        first, _, stop = item.partition(":")
        if not (first.isdigit() and stop.isdigit() and int(first) < int(stop)):
            parser.error(f"--group {item}: expected FIRST:STOP, two member numbers with FIRST < STOP")
        groups.append((int(first), int(stop)))

    found = []
    with tempfile.TemporaryDirectory() as scratch:
        for path in args.model:
            model = open_model(path, scratch)
            found += [(f"{shown(path)} | {member.name}", member) for member in models.members(model) or [model]]
    names = [name for name, _ in found]
    if any(stop > len(names) for _, stop in groups):
        parser.error(f"a --group reaches past the {len(names)} members")
    sizes = {tuple(int(side) for side in member.inputs[0].shape[1:3]) for _, member in found}
    if len(sizes) != 1:
        parser.error(f"the members take different input sizes: {sorted(sizes)}")
    val = split.load_split_images(sizes.pop(), splits=("val",), progress=False)["val"]
    probabilities = []
    for number, (name, member) in enumerate(found):
        probabilities.append(infer.predict_shifts(member, val.images))
        print(f"member {number} ({name}): scored under {len(acquisition.SHIFTS)} conditions", flush=True)

    members = {str(i): summary(val.labels, probabilities[i]) for i in range(len(names))}
    curve = {str(k): {**summary(val.labels, mean_probabilities(probabilities, range(k))), "networks_per_image": k}
             for k in range(1, len(names) + 1)}
    extra = {f"{first}:{stop}": summary(val.labels, mean_probabilities(probabilities, range(first, stop)))
             for first, stop in groups}
    plain = [row["balanced_accuracy"] for row in members.values()]
    print("members (plain balanced accuracy):", plain, "mean", round(statistics.mean(plain), 4),
          "sd", round(statistics.stdev(plain), 4) if len(plain) > 1 else "-")
    print(f"{'k':>2} " + " ".join(f"{key:>26}" for key in [*KEYS, "shifted_balanced_accuracy"]))
    for k, row in curve.items():
        print(f"{k:>2} " + " ".join(f"{row[key]:>26.4f}" for key in [*KEYS, "shifted_balanced_accuracy"]))
    for group, row in extra.items():
        print(f"members {group}:", row)
    record = {"split": "val", "members": names, "shifts": [s for s in acquisition.SHIFTS if s != "none"],
              "member_scores": members, "first_k": curve, "groups": extra,
              "machine": {"cpu_count": os.cpu_count(), "processor": cpu_name()}, "commit": head_commit(),
              "command": "python benchmarks/ensemble_size.py " + " ".join(f"--model {shown(p)}" for p in args.model)
                         + "".join(f" --group {g}" for g in args.group) + f" --out {args.out}"}
    (ROOT / args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()

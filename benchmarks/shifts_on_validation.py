"""Score saved models on the validation split under chapter 04's named acquisition shifts.

A design question (does Shades of Gray colour constancy make the model sturdier against other cameras?) is a
choice, so it is measured on validation, never on test. Each model is applied once per shift, without test-time
augmentation, like chapter 04's robustness table.

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/shifts_on_validation.py \\
        --model "colour constancy on=Saved_Models/03_efficientnet_lite0_views.keras" \\
        --model "colour constancy off=WORKTREE/Saved_Models/03_efficientnet_lite0_views.keras" \\
        --out benchmarks/results/shifts_colour_constancy.json

where WORKTREE is the scratch copy kept by
``python benchmarks/chapter03_variant.py --set colour_constancy=False --set seeds=1 --keep --out ...``.
The first is the model of a default run (``make reproduce``, one seed); the committed ``Saved_Models/`` holds
the ``full`` profile's ensemble instead.
``--zoom 1.67`` adds a closer view than chapter 04's ("closer (zoom 1.67x)", the centre 1/1.67 of each side
enlarged: what the lesion checker's ``cut_surround`` makes of a round dermoscope field as tall as the image).
``--surround`` adds a contact dermoscope's dark surround ("dark circle" and "dark ellipse": everything outside a
centred circle as tall as the image, or the inscribed ellipse, set to black; :func:`skinlib.acquisition.field_mask`),
uncut, as a model meets it when the checker's cut does not find the field.
Paths outside this repository are recorded as ``<scratch>/Saved_Models/NAME``, so no machine path is committed.
A model may also be named ``REV:PATH``, a committed file of an earlier commit (read with ``git show``, recorded
as given), and ``--members`` scores each member of an ensemble on its own, labelled ``LABEL, MEMBER``: the seeds of
two shipped ensembles compared without training them again::

    python benchmarks/shifts_on_validation.py --members \\
        --model "batch 32=Saved_Models/03_efficientnet_lite0_ensemble.keras" \\
        --model "batch 64=3c13fc0:Saved_Models/03_efficientnet_lite0_ensemble.keras" \\
        --zoom 1.67 --out benchmarks/results/shifts_batch32_batch64.json

About 1 minute per model on 2 cores at 120x160, about 2.5 minutes at 150x200 with ``--zoom 1.67``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chapter03_variant import git  # noqa: E402 (a script beside this one)
from skinlib import acquisition, infer, metrics, models, split  # noqa: E402
from skinlib.reproduce import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["accuracy", "balanced_accuracy", "macro_auc", "malignant_auc", "recall_mel"]


def shown(path):
    """``path`` as recorded: relative to the repository, ``<scratch>/Saved_Models/NAME`` outside it, or ``REV:PATH``."""
    if ":" in path and not Path(path).exists():
        return path
    path = Path(path).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return f"<scratch>/{path.parent.name}/{path.name}"


def head_commit():
    """The checked-out commit (short hash, ``+`` when files differ from it): what a path in the checkout meant."""
    try:
        dirty = git("status", "--porcelain", "--untracked-files=no").strip()
        return git("rev-parse", "--short", "HEAD").strip() + ("+" if dirty else "")
    except (subprocess.CalledProcessError, OSError):
        return None


def open_model(path, scratch):
    """Load ``path``, or ``REV:PATH`` (a committed file of commit ``REV``) when no such file exists here."""
    rev, colon, inside = path.partition(":")
    if not Path(path).exists() and colon and rev and inside:
        try:
            blob = subprocess.run(["git", "show", path], cwd=ROOT, check=True, capture_output=True).stdout
        except (subprocess.CalledProcessError, OSError) as error:
            reason = (getattr(error, "stderr", None) or b"").decode().strip() or str(error)
            raise SystemExit(f"{path}: no such file here, and git cannot show it as REV:PATH ({reason})") from None
        copy = Path(scratch) / f"{len(os.listdir(scratch))}_{Path(inside).name}"
        copy.write_bytes(blob)
        path = copy
    return models.load_model(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                        help="a saved .keras model and the label it gets in the table (repeatable)")
    parser.add_argument("--zoom", action="append", type=float, default=[], metavar="FACTOR",
                        help="also score a zoom beyond chapter 04's shifts (repeatable)")
    parser.add_argument("--surround", action="store_true", help="also score a dark circle and ellipse around the field")
    parser.add_argument("--members", action="store_true",
                        help="score each member of an ensemble on its own (labelled 'LABEL, MEMBER')")
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args()
    shifts = {**acquisition.SHIFTS, **{f"closer (zoom {factor:g}x)": {"zoom": factor} for factor in args.zoom}}
    if args.surround:
        shifts.update({f"dark {kind}": {"surround": kind} for kind in acquisition.FIELDS})
    table, loaded = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        scored = []
        for item in args.model:
            label, _, path = item.partition("=")
            model = open_model(path, scratch)
            parts = models.members(model) if args.members else []
            scored += [(f"{label}, {member.name}", member) for member in parts] or [(label, model)]
        for label, model in scored:
            size = tuple(int(side) for side in model.inputs[0].shape[1:3])
            if size not in loaded:
                loaded[size] = split.load_split_images(size, splits=("val",), progress=False)["val"]
            val = loaded[size]
            for shift, probabilities in infer.predict_shifts(model, val.images, shifts=shifts).items():
                scores = metrics.classification_metrics(val.labels, probabilities)
                table[(label, shift)] = {key: round(float(scores[key]), 4) for key in KEYS}
            print(f"{label}: scored under {len(shifts)} shifts", flush=True)
    frame = pd.DataFrame(table).T
    frame["balanced_accuracy_change"] = frame["balanced_accuracy"] - frame.xs("none", level=1)[
        "balanced_accuracy"].reindex(frame.index.get_level_values(0)).to_numpy()
    print(frame.round(3).to_string())
    named = [(label, shown(path)) for label, _, path in (item.partition("=") for item in args.model)]
    record = {"split": "val", "models": dict(named),
              "scores": {f"{label} | {shift}": row for (label, shift), row in frame.round(4).to_dict("index").items()},
              "machine": {"cpu_count": os.cpu_count(), "processor": cpu_name()},
              "commit": head_commit(),
              "command": "python benchmarks/shifts_on_validation.py "
                         + " ".join(f'--model "{label}={path}"' for label, path in named)
                         + "".join(f" --zoom {factor:g}" for factor in args.zoom)
                         + (" --surround" if args.surround else "") + (" --members" if args.members else "")
                         + f" --out {args.out}"}
    (ROOT / args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()

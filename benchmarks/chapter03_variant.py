"""Run chapter 03 once with other parameters, in a scratch copy of the repository, and record its validation scores.

A design choice of chapter 03 (another backbone, colour constancy off) is measured by the chapter itself, not by a
re-implementation: the committed code runs in a temporary ``git worktree`` of HEAD, so ``Saved_Models/`` and
``Images/`` of this checkout stay as they are. The summary (validation metrics of every run of the variant, plain
and with TTA, the validation balanced accuracy after each epoch of every trained run, the class balancing the
chapter chose for it, its number of training images and its training seconds, the chapter's time, and the commit
whose code ran) goes to ``--out``.

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/chapter03_variant.py \\
        --set height=120 --set 'balancing=""' --set backbone=efficientnet_lite2 --set seeds=1 \\
        --out benchmarks/results/chapter03_lite2.json

Takes as long as the chapter (about 9 minutes for one seed of Lite2 at 120x160 on 2 cores).

When chapter 03's default changes, the design it replaces is recorded from the commit that still ran it, without
running it again: ``--from-commit REV`` reads that commit's executed chapter and its ``Saved_Models/03_*_metrics.json``
(``--set`` then names the settings that repeat it under today's defaults, and the recorded ``command`` is that
rerun with today's code; ``from_commit`` says where the numbers came from)::

    python benchmarks/chapter03_variant.py --from-commit dec6772 --set height=120 --set 'balancing=""' \\
        --set cut=block10_add --set profile=full --out benchmarks/results/chapter03_block10.json
"""

import argparse
import csv
import io
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from skinlib.reproduce import cpu_has_avx512, cpu_name

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("accuracy", "balanced_accuracy", "macro_auc", "malignant_auc", "recall_mel")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a chapter-03 parameter")
    parser.add_argument("--out", required=True, help="the JSON summary to write")
    parser.add_argument("--keep", action="store_true", help="keep the scratch worktree (its path is printed)")
    parser.add_argument("--summarise", metavar="WORKTREE", help="only summarise a worktree where the same "
                        "`python -m skinlib reproduce --only 03_Transfer --set ...` already ran (kept)")
    parser.add_argument("--from-commit", metavar="REV", help="only summarise the committed chapter 03 of REV (the "
                        "design it ran then; --set names the setting that repeats it now)")
    args = parser.parse_args()
    if args.from_commit and (args.summarise or args.keep or not args.set):
        parser.error("--from-commit needs --set (the setting that repeats REV's design) and takes no --summarise "
                     "or --keep")
    if args.from_commit:
        summary = {"settings": args.set, **committed_summary(args.from_commit)}
        summary["command"] = command_line(args.set, args.out)
        summary["from_commit"] = git("rev-parse", "--short", args.from_commit).strip()
        write(summary, args.out)
        return
    if args.summarise:
        scratch, args.keep = Path(args.summarise), True
    else:
        scratch = Path(tempfile.mkdtemp(prefix="chapter03_variant_")) / "repo"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(scratch), "HEAD"], check=True)
    started = None  # When this run's chapter began (None when only summarising a kept worktree).
    try:
        if not args.summarise:
            started = time.time()
            environment = dict(os.environ, PYTHONPATH=str(scratch))
            if "SKINLIB_DATA" in os.environ:  # The chapter runs in the scratch copy: a relative path would miss.
                environment["SKINLIB_DATA"] = str(Path(os.environ["SKINLIB_DATA"]).resolve())
            command = [sys.executable, "-m", "skinlib", "reproduce", "--only", "03_Transfer"]
            command += [item for pair in args.set for item in ("--set", pair)]
            subprocess.run(command, cwd=scratch, env=environment, check=True)
        executed = json.loads((scratch / "notebooks" / "03_Transfer_Learning.ipynb").read_text())
        seconds = executed["metadata"]["papermill"]["duration"]
        folder = scratch / "Saved_Models"
        # Only the files this run wrote: a variant's runs may share the committed runs' names. A run writes them after
        # it started (even when it repeats the committed ones to the last digit); a kept worktree summarised later
        # has no start time, so there the files git sees changed stand for them.
        if started is not None:
            written = {path.name for path in folder.iterdir() if path.stat().st_mtime >= started}
        else:
            status = subprocess.run(["git", "-C", str(scratch), "status", "--porcelain", "--untracked-files=all", "--",
                                     "Saved_Models"], check=True, capture_output=True, text=True).stdout
            written = {Path(line[3:].strip()).name for line in status.splitlines()}
        runs = {}
        for path in sorted(folder.glob("03_*_metrics.json")):
            if path.name not in written:
                continue
            metrics = json.loads(path.read_text())
            runs[path.name[: -len("_metrics.json")]] = scores(metrics)
        # Only a history this run wrote is its curve (a re-scored run keeps its old one).
        curves = {name: curve((folder / f"{name}_history.csv").read_text()) for name in runs
                  if f"{name}_history.csv" in written}
        if not runs:
            raise SystemExit(f"the variant wrote no chapter-03 metrics under {folder}; nothing to record in {args.out}")
        results = (folder / "results.csv").read_text()
        summary = {"settings": args.set, "runs": runs, "curves": curves, **run_columns(results, runs),
                   "chapter_seconds": round(seconds, 1),
                   "machine": {"cpu_count": os.cpu_count(), "processor": cpu_name(), "avx512": cpu_has_avx512()},
                   "command": command_line(args.set, args.out),
                   # The code that ran: its chapter's defaults complete ``settings`` when today's have moved on.
                   "commit": git("rev-parse", "--short", "HEAD", root=scratch).strip()}
        write(summary, args.out)
    finally:
        if args.keep:
            print(f"scratch worktree kept: {scratch}")
        else:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(scratch)], check=False)


def scores(metrics):
    """The recorded subset (:data:`KEYS`) of a run's metrics file."""
    return {key: metrics[key] for key in KEYS if key in metrics}


def curve(history):
    """The ``val_balanced_accuracy`` column of a training history (CSV text), rounded to four decimals."""
    return [round(float(row["val_balanced_accuracy"]), 4) for row in csv.DictReader(io.StringIO(history))]


def run_columns(results, runs):
    """What the results table (CSV text) says of each run of ``runs`` that trained: ``balancing``, ``train_images``
    and ``train_seconds``, each a dict of run name to value (the TTA and ensemble rows have none).

    >>> run_columns('name,balancing,train_images,train_seconds\\na,sampling,7009.0,717.9\\na_tta,,,\\n', ["a", "a_tta"])
    {'balancing': {'a': 'sampling'}, 'train_images': {'a': 7009}, 'train_seconds': {'a': 717.9}}
    """
    return {"balancing": column(results, runs, "balancing"),
            "train_images": column(results, runs, "train_images", lambda value: int(float(value))),
            "train_seconds": column(results, runs, "train_seconds", float)}


def column(results, names, key, convert=str):
    """The value of ``key`` in the results table (CSV text) for each of ``names`` that has one, through ``convert``.

    A variant can choose another balancing than the shipped design (the heads compare them on its own views), and
    the choice moves accuracy against balanced accuracy, so the record keeps it, and the training images and training
    seconds of each run.

    >>> column('name,balancing\\na,"class weights, power 1"\\na_tta,\\n', ["a", "a_tta"], "balancing")
    {'a': 'class weights, power 1'}
    >>> column('name,train_images\\na,1752.0\\na_tta,\\n', ["a", "a_tta"], "train_images", lambda v: int(float(v)))
    {'a': 1752}
    """
    rows = {row["name"]: row.get(key) for row in csv.DictReader(io.StringIO(results))}
    return {name: convert(rows[name]) for name in names if rows.get(name)}


def git(*arguments, root=ROOT):
    return subprocess.run(["git", "-C", str(root), *arguments], check=True, capture_output=True, text=True).stdout


def committed_summary(rev):
    """Runs, curves, :func:`run_columns` and time of chapter 03 as committed at ``rev`` (no machine: see below)."""
    executed = json.loads(git("show", f"{rev}:notebooks/03_Transfer_Learning.ipynb"))
    names = git("ls-tree", "-z", "--name-only", rev, "Saved_Models/").split("\0")
    runs, curves = {}, {}
    for path in sorted(name for name in names if Path(name).name.startswith("03_") and name.endswith("_metrics.json")):
        stem = path[: -len("_metrics.json")]
        runs[Path(stem).name] = scores(json.loads(git("show", f"{rev}:{path}")))
        if f"{stem}_history.csv" in names:
            curves[Path(stem).name] = curve(git("show", f"{rev}:{stem}_history.csv"))
    if not runs:
        raise SystemExit(f"commit {rev} has no chapter-03 metrics under Saved_Models/; nothing to record")
    # The machine is not recorded per chapter (reproduce_run.json names that of REV's last complete run, which may
    # be another run), so the record names none.
    return {"runs": runs, "curves": curves, **run_columns(git("show", f"{rev}:Saved_Models/results.csv"), runs),
            "chapter_seconds": round(executed["metadata"]["papermill"]["duration"], 1)}


def command_line(settings, out):
    """The shell command that repeats a run (a setting with spaces is quoted).

    >>> command_line(["height=150", "balancing=class weights, power 1"], "x.json")
    "python benchmarks/chapter03_variant.py --set height=150 --set 'balancing=class weights, power 1' --out x.json"
    """
    return "python benchmarks/chapter03_variant.py " + " ".join(f"--set {shlex.quote(s)}" for s in settings) + \
        f" --out {shlex.quote(out)}"


def write(summary, out):
    (ROOT / out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

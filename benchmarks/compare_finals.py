"""Two final models side by side on the test split, as chapter 04 recorded them at two commits.

Reads ``Saved_Models/final_metrics.json`` and chapter 04's table of named acquisition shifts (the output of its
shifts cell) at each commit with ``git show``, so nothing is predicted again and the test split is not read:
only numbers each run of chapter 04 already wrote are set beside each other. For the README and the trial log,
when one final model replaces another.

Run:  python benchmarks/compare_finals.py --before 26af57b --after HEAD \\
          --out benchmarks/results/final_refit_vs_ensemble.json

``--after WORKTREE`` reads the working tree instead of a commit (before the run's outputs are committed).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from skinlib.artefacts import validated_model

ROOT = Path(__file__).resolve().parent.parent
FINAL = "Saved_Models/final_metrics.json"
CHAPTER = "notebooks/04_Evaluation_and_Explanations.ipynb"
SHIFTS_CELL = "shifts = pd.DataFrame(shifted)"
HEADLINE = ("balanced_accuracy", "accuracy", "macro_auc", "malignant_auc")
SCREENING = ("sensitivity", "sensitivity_mel", "specificity")


def read_at(revision, path):
    """The text of ``path`` at ``revision`` (a commit), or in the working tree for ``WORKTREE``."""
    if revision == "WORKTREE":
        return (ROOT / path).read_text()
    try:
        return subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True, capture_output=True,
                              text=True).stdout
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"git show {revision}:{path} failed: {error.stderr.strip()}") from None


def parse_frame(text):
    """Rows of a DataFrame as pandas prints it (wide frames wrap into blocks, each header line ending in a backslash).

    >>> text = "      a  b  \\\\\\nnone  1  2   \\nx y   3  4   \\n\\n      c\\nnone  5\\nx y   6"
    >>> parse_frame(text)
    {'none': {'a': 1.0, 'b': 2.0, 'c': 5.0}, 'x y': {'a': 3.0, 'b': 4.0, 'c': 6.0}}
    """
    rows = {}
    for block in (part for part in text.strip().split("\n\n") if part.strip()):
        header, *lines = block.splitlines()
        columns = [token for token in header.split() if token != "\\"]
        for line in lines:
            tokens = [token for token in line.split() if token != "\\"]
            label = " ".join(tokens[:-len(columns)])
            rows.setdefault(label, {}).update(zip(columns, map(float, tokens[-len(columns):])))
    return rows


def shifts_at(revision):
    """Chapter 04's shifts table at ``revision``: {shift: {metric: value}}, from the cell that prints it."""
    notebook = json.loads(read_at(revision, CHAPTER))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and SHIFTS_CELL in "".join(cell["source"]):
            for output in cell.get("outputs", []):
                text = output.get("data", {}).get("text/plain")
                if text:
                    return parse_frame("".join(text))
    raise SystemExit(f"{CHAPTER} at {revision} has no printed table of shifts (a cell with {SHIFTS_CELL!r})")


def summary(revision):
    """What chapter 04 recorded at ``revision``: the final model, its test scores with intervals, its shifts."""
    final = json.loads(read_at(revision, FINAL))
    if final.get("smoke"):
        raise SystemExit(f"{FINAL} at {revision} is from a smoke run")
    test = final["finals"][final["procedure"]]
    screen = final["screening"]
    return {
        "revision": revision, "model": final["model"], "procedure": final["procedure"],
        "validated_model": validated_model(final), "tta": final["tta"],
        "test": {key: test[key] for key in HEADLINE},
        "melanoma_recall": {key: final["per_class"]["mel"][key] for key in ("recall", "recall_low", "recall_high")
                            if key in final["per_class"]["mel"]},
        "screening": {"threshold": screen["threshold"],
                      **{key: {"estimate": screen["test"][key], **screen.get("test_interval", {}).get(key, {})}
                         for key in SCREENING if key in screen["test"]}},
        "temperature": final["calibration"]["temperature"],
        "ece_test": final["calibration"]["ece"]["test"],
        "shifts_balanced_accuracy_change": {  # As the table printed it, from unrounded scores.
            shift: row["balanced_accuracy_change"] for shift, row in shifts_at(revision).items() if shift != "none"},
    }


def markdown(before, after):
    """A table of the two finals' test scores and shift drops, for the README and the trial log."""
    def cell(value):
        if isinstance(value, dict):
            interval = f" ({value['low']:.3f}-{value['high']:.3f})" if "low" in value else ""
            return f"{value['estimate']:.3f}{interval}"
        return f"{value:+.3f}" if isinstance(value, float) else str(value)

    rows = [("final model", before["model"], after["model"])]
    rows += [(f"test {key.replace('_', ' ')}", cell(before["test"][key]), cell(after["test"][key])) for key in HEADLINE]
    mel = [f"{side['melanoma_recall']['recall']:.3f}" for side in (before, after)]
    rows.append(("test melanoma recall (top diagnosis)", *mel))
    rows.append(("screening threshold (set on validation)", f"{before['screening']['threshold']:.3f}",
                 f"{after['screening']['threshold']:.3f}"))
    rows += [(f"test {key.replace('_', ' ')} at that threshold", cell(before["screening"][key]),
              cell(after["screening"][key])) for key in SCREENING if key in before["screening"]]
    rows += [(f"balanced accuracy change, {shift}", cell(change), cell(after["shifts_balanced_accuracy_change"][shift]))
             for shift, change in before["shifts_balanced_accuracy_change"].items()]
    lines = [f"| | {before['revision']} | {after['revision']} |", "|---|---|---|"]
    return "\n".join(lines + [f"| {name} | {a} | {b} |" for name, a, b in rows])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the commit of the final model replaced")
    parser.add_argument("--after", required=True, help="the commit of the final model that replaces it, or WORKTREE")
    parser.add_argument("--out", help="write the two summaries and the command to this JSON file")
    args = parser.parse_args(argv)
    before, after = summary(args.before), summary(args.after)
    print(markdown(before, after))
    if args.out:
        command = " ".join(["python benchmarks/compare_finals.py", *(argv if argv is not None else sys.argv[1:])])
        record = {"before": before, "after": after, "command": command}
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

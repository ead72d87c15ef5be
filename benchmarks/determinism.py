"""Does a second full run reproduce the first? Compare this checkout's results with another run's.

Run ``make reproduce`` twice (here and in a clean clone, say), then:

    python benchmarks/determinism.py /path/to/other/clone

It compares, row by row, every metric of ``Saved_Models/results.csv`` (validation, chapters 02 and 03), the
test metrics of ``Saved_Models/final_metrics.json`` (with their intervals), the weights of every ``.keras`` model
both runs saved, and the split: the committed manifest of each, and a fresh rebuild from the metadata with the
fixed seed. The issue's bar is the same split and headline metrics within 0.01. Results are printed and written
to benchmarks/results/determinism.json.
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from input_pipeline import machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
METRICS = ["accuracy", "balanced_accuracy", "macro_auc", "malignant_auc", "malignant_recall",
           "malignant_specificity"]


def flatten(tree, prefix=""):
    """Nested dicts of numbers to {"a/b/c": number}."""
    if isinstance(tree, dict):
        return {key: value for name, branch in tree.items()
                for key, value in flatten(branch, f"{prefix}{name}/").items()}
    return {prefix.rstrip("/"): tree} if isinstance(tree, (int, float)) and not isinstance(tree, bool) else {}


def weights_difference(path_a, path_b):
    import numpy as np

    from skinlib import models

    a = models.load_model(path_a).get_weights()
    b = models.load_model(path_b).get_weights()
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        return None
    return float(max((np.abs(x.astype("float64") - y.astype("float64")).max() for x, y in zip(a, b)), default=0.0))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other", type=Path, help="the root of another checkout that ran make reproduce")
    parser.add_argument("--tolerance", type=float, default=0.01)
    args = parser.parse_args(argv)

    from skinlib import artefacts, data, split

    mine, theirs = artefacts.models_dir(root=ROOT), artefacts.models_dir(root=args.other.resolve())
    a = artefacts.read_results(mine).set_index("name")
    b = artefacts.read_results(theirs).set_index("name")
    common = a.index.intersection(b.index)
    metrics = [m for m in METRICS if m in a.columns and m in b.columns]
    validation = (a.loc[common, metrics] - b.loc[common, metrics]).abs()
    final_a = flatten(artefacts.read_final_metrics(mine))
    final_b = flatten(artefacts.read_final_metrics(theirs))
    test = {key: abs(final_a[key] - final_b[key]) for key in final_a if key in final_b}
    headline = {key: value for key, value in test.items() if key.startswith("finals/") and key.endswith("/estimate")}
    models = sorted({p.name for p in mine.glob("*.keras")} & {p.name for p in theirs.glob("*.keras")})
    weights = {name: weights_difference(mine / name, theirs / name) for name in models}
    same_split = split.matches_manifest(split.make_split(data.load_metadata()))
    other_manifest = args.other.resolve() / split.MANIFEST_PATH.relative_to(ROOT)
    record = {
        "machine": machine(),
        "rows_compared": int(len(common)),
        "rows_only_here": sorted(set(a.index) - set(b.index)),
        "rows_only_there": sorted(set(b.index) - set(a.index)),
        "validation_max_difference": {m: float(validation[m].max()) for m in metrics},
        "validation_rows_differing": sorted(validation.index[(validation > 1e-9).any(axis=1)]),
        "test_headline_difference": headline,
        "test_max_difference_any_number": max(test.values(), default=0.0),
        "test_numbers_compared": len(test),
        "weights_max_difference": weights,
        "split_rebuilt_equals_manifest": same_split,
        "manifests_identical": split.MANIFEST_PATH.read_bytes() == other_manifest.read_bytes(),
    }
    worst = max([*record["validation_max_difference"].values(), *headline.values()], default=0.0)
    record["within_tolerance"] = bool(worst <= args.tolerance and same_split and record["manifests_identical"])
    print(json.dumps(record, indent=2))
    out = ROOT / "benchmarks" / "results" / "determinism.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if record["within_tolerance"] else 1


if __name__ == "__main__":
    sys.exit(main())

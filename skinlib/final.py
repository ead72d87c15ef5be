"""The final model: chosen on validation by a rule fixed in advance, then scored once on the test split.

The rule (:func:`choose`): among the single models saved by chapters 02 and
03, the one with the highest **validation** balanced accuracy, with test-time
augmentation (TTA) when TTA raised that model's validation balanced accuracy;
and, as a second final, chapter 03's ensemble when its validation balanced
accuracy is higher still. Nothing about the test split enters the choice.

:func:`write_final_metrics` writes ``Saved_Models/final_metrics.json``, the
only source of the test numbers quoted by the README, the main notebook and
the slides; the lesion checker reads the final model's name from it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd

FINAL_FILE = "final_metrics.json"


@dataclasses.dataclass
class Final:
    """A final prediction procedure: one model (with or without TTA) or an ensemble of saved models."""

    name: str
    members: list
    tta: bool
    validation_balanced_accuracy: float


def candidates(results, folder):
    """The validation results of every saved single model, with its TTA score where chapter 03 measured one."""
    folder = Path(folder)
    table = results.set_index("name")
    rows = []
    for name, row in table.iterrows():
        if not (folder / f"{name}.keras").is_file():
            continue
        tta = table["balanced_accuracy"].get(f"{name}_tta", np.nan)
        rows.append({"name": name, "notebook": row["notebook"], "balanced_accuracy": row["balanced_accuracy"],
                     "accuracy": row["accuracy"], "balanced_accuracy_tta": tta})
    return pd.DataFrame(rows).sort_values("balanced_accuracy", ascending=False).reset_index(drop=True)


def choose(results, folder):
    """Apply the rule; return the list of finals (the single model first, then the ensemble if it qualifies).

    >>> results = pd.DataFrame({"name": ["a", "a_tta", "b", "03_ensemble"], "notebook": ["x"] * 4,
    ...                         "balanced_accuracy": [0.6, 0.62, 0.5, 0.7], "accuracy": [0.7] * 4,
    ...                         "members": [None, None, None, "a_tta + b_tta"]})
    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> for name in "ab": _ = (folder / f"{name}.keras").write_bytes(b"")
    >>> [(f.name, f.members, f.tta) for f in choose(results, folder)]
    [('a_tta', ['a'], True), ('03_ensemble', ['a', 'b'], True)]
    """
    table = candidates(results, folder)
    if table.empty:
        raise FileNotFoundError(f"no saved model of the results table is in {folder}; run chapters 02 and 03 first.")
    best = table.iloc[0]
    use_tta = bool(best["balanced_accuracy_tta"] > best["balanced_accuracy"])
    score = best["balanced_accuracy_tta"] if use_tta else best["balanced_accuracy"]
    finals = [Final(f"{best['name']}_tta" if use_tta else best["name"], [best["name"]], use_tta, float(score))]
    ensembles = results[results["name"] == "03_ensemble"]
    if len(ensembles) and float(ensembles["balanced_accuracy"].iloc[0]) > score:
        members = [m.strip().removesuffix("_tta") for m in str(ensembles["members"].iloc[0]).split("+")]
        if all((Path(folder) / f"{m}.keras").is_file() for m in members):
            finals.append(Final("03_ensemble", members, True, float(ensembles["balanced_accuracy"].iloc[0])))
    return finals


def predict(final, load_images, *, folder, part, metadata=None):
    """Probabilities of a final procedure on one split.

    ``load_images(size)`` returns the split's images at a (height, width);
    each member model is fed at its own input size, with the metadata when it
    takes two inputs, and with TTA when the final uses it.
    """
    from skinlib import evaluate

    outputs = []
    for member in final.members:
        path = Path(folder) / f"{member}.keras"
        model = _load_model(path, path.stat().st_mtime_ns)
        size = tuple(int(side) for side in model.inputs[0].shape[1:3])
        meta = metadata if len(model.inputs) == 2 else None
        function = evaluate.predict_tta if final.tta else evaluate.predict_proba
        outputs.append(function(model, load_images(size)[part].images, metadata=meta))
    return np.mean(outputs, axis=0)


@functools.lru_cache(maxsize=4)
def _load_model(path, modified):
    """Load a saved model once per file version: chapter 04 predicts validation and test with the same models."""
    import keras

    return keras.saving.load_model(path, compile=False, safe_mode=True)


def write_final_metrics(payload, folder):
    """Write ``final_metrics.json`` atomically (NumPy values turned into plain numbers)."""
    from skinlib.images import write_atomic
    from skinlib.train import _jsonable

    path = Path(folder) / FINAL_FILE
    write_atomic(path, lambda handle: handle.write(json.dumps(_jsonable(payload), indent=2).encode()))
    return path

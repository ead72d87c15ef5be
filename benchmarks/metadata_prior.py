"""Scout: would age, sex and body site, combined with the image model by Bayes' rule, raise balanced accuracy?

The lesion checker reads the image only; a user who knows the patient's age, sex and the lesion's site cannot
use them. HAM10000's diagnoses differ by all three (nevi in the young, keratoses and carcinomas in the old and on
the face, dermatofibromas on the legs), so this scout asks whether that knowledge adds to the image. It fits no
network and nothing on validation: from the training split alone it counts, for each field, how often each value
occurs within each diagnosis (``p(value | diagnosis)``, add-one smoothed, age in five bands), and multiplies the
image model's probabilities by those likelihoods, to the power ``alpha``, for the fields a row has (a missing or
"unknown" field adds nothing, as in the checker when a user leaves it out). This is naive Bayes: it assumes the
fields and the image independent given the diagnosis, which fails where the image shows the site or the age, so
``alpha`` below 1 is reported beside 1. The image model is chapter 03's validated ensemble
(``03_efficientnet_lite0_ensemble.keras``, trained on the training split only), one pass, as chapter 04's final
procedure runs it. Test split untouched.

Rule, written before the run (in the commit that adds this file): the correction goes into the checker, applied
only when a user gives age, sex or site, if with ``alpha=1`` it raises validation balanced accuracy by at least
0.01 with the lower end of the 95% paired bootstrap interval (lesion-grouped, 1,000 resamples) above 0, and
lowers the malignant AUC by no more than 0.005. The other alphas are reported, not chosen from.

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/metadata_prior.py \\
        --out benchmarks/results/metadata_prior.json
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib import artefacts, data, infer, metrics, models, split
from skinlib.reproduce import cpu_has_avx512, cpu_name

MODEL = "03_efficientnet_lite0_ensemble.keras"
ALPHAS = (1.0, 0.5, 0.25)
AGE_BANDS = (30, 45, 60, 75)
"""Upper ends of the age bands: under 30, 30-44, 45-59, 60-74, 75 and over."""
UNKNOWN = "unknown"


def fields(table):
    """Each row's age band, sex and site as strings, "unknown" where HAM10000 does not know them.

    >>> fields(pd.DataFrame({"age": [25.0, None], "sex": ["male", "unknown"], "localization": ["back", None]}))
      age_band      sex localization
    0      <30     male         back
    1  unknown  unknown      unknown
    """
    age = table["age"].to_numpy(dtype="float64")
    names = ["<30"] + [f"{low}-{high - 1}" for low, high in zip(AGE_BANDS, AGE_BANDS[1:])] + [f"{AGE_BANDS[-1]}+"]
    band = np.array(names, dtype=object)[np.searchsorted(AGE_BANDS, age, side="right").clip(0, len(names) - 1)]
    band[np.isnan(age)] = UNKNOWN
    return pd.DataFrame({"age_band": band,
                         "sex": table["sex"].fillna(UNKNOWN).to_numpy(),
                         "localization": table["localization"].fillna(UNKNOWN).to_numpy()})


def likelihoods(known, labels, n_classes=7, smoothing=1.0):
    """``log p(value | diagnosis)`` for each field, as {field: DataFrame (values x diagnoses)}, from ``known``.

    Counts each value within each diagnosis, plus ``smoothing`` for every value of the field ("unknown" is left out:
    it carries no knowledge of the patient).

    >>> table = likelihoods(pd.DataFrame({"sex": ["male", "male", "female"]}), np.array([0, 1, 1]), n_classes=2)
    >>> np.exp(table["sex"]).round(3).values.tolist()  # diagnosis 0: 1 male; 1: 1 of each
    [[0.333, 0.5], [0.667, 0.5]]
    """
    tables = {}
    for field in known.columns:
        values = sorted(set(known[field]) - {UNKNOWN})
        counts = np.array([[np.sum((known[field].to_numpy() == value) & (labels == k)) for k in range(n_classes)]
                           for value in values], dtype=float) + smoothing
        tables[field] = pd.DataFrame(np.log(counts / counts.sum(axis=0)), index=values)
    return tables


def correction(known, tables):
    """Sum over the fields of ``log p(value | diagnosis)``, 0 for "unknown" and for values the tables lack."""
    total = np.zeros((len(known), next(iter(tables.values())).shape[1]))
    for field, table in tables.items():
        values = known[field].to_numpy()
        present = np.isin(values, table.index)
        total[present] += table.loc[values[present]].to_numpy()
    return total


def combine(probabilities, log_likelihood, alpha):
    """Probabilities times ``exp(alpha * log_likelihood)``, renormalised.

    >>> combine(np.array([[0.5, 0.5]]), np.log(np.array([[0.2, 0.8]])), 1.0).round(2).tolist()
    [[0.2, 0.8]]
    """
    scores = np.log(np.clip(probabilities, 1e-12, None)) + alpha * log_likelihood
    scores -= scores.max(axis=1, keepdims=True)
    return np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)


def rule_met(change, malignant_auc_change):
    """The rule, on unrounded numbers: a gain of at least 0.01 whose interval's lower end is above 0, and a malignant
    AUC lower by no more than 0.005.

    >>> change = pd.DataFrame({"estimate": [0.0099], "low": [0.001]}, index=["balanced_accuracy"])
    >>> rule_met(change, 0.0), rule_met(change.assign(estimate=0.01), -0.00501)
    (False, False)
    >>> rule_met(change.assign(estimate=0.01), -0.005)
    True
    """
    gain = change.loc["balanced_accuracy"]
    return bool(gain["estimate"] >= 0.01 and gain["low"] > 0 and malignant_auc_change >= -0.005)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args()
    begin = time.perf_counter()
    table = split.apply_split(data.load_metadata())
    train = table[table["split"] == "train"]
    tables = likelihoods(fields(train), train["dx"].map(data.CLASSES.index).to_numpy())
    rows = split.load_split_images((150, 200), splits=("val",), progress=False)["val"]
    labels, lesions = np.asarray(rows.labels), rows.table["lesion_id"].to_numpy()
    model = models.load_model(artefacts.models_dir() / MODEL)
    image_only = infer.predict_proba(model, rows.images)
    log_likelihood = correction(fields(rows.table), tables)
    before = metrics.classification_metrics(labels, image_only)
    arms, changes, auc_changes = {}, {}, {}
    for alpha in ALPHAS:
        fused = combine(image_only, log_likelihood, alpha)
        after = metrics.classification_metrics(labels, fused)
        change = metrics.paired_change(labels, image_only, fused, groups=lesions, n_resamples=args.resamples)
        changes[alpha], auc_changes[alpha] = change, after["malignant_auc"] - before["malignant_auc"]
        arms[str(alpha)] = {
            "balanced_accuracy": round(after["balanced_accuracy"], 4), "accuracy": round(after["accuracy"], 4),
            "malignant_auc": round(after["malignant_auc"], 4), "macro_auc": round(after["macro_auc"], 4),
            "recalls": {name: round(after[f"recall_{name}"], 3) for name in data.CLASSES},
            "change": {key: {column: round(float(change.loc[key, column]), 4) for column in ("estimate", "low", "high")}
                       for key in change.index},
            "malignant_auc_change": round(after["malignant_auc"] - before["malignant_auc"], 4),
        }
        print(alpha, arms[str(alpha)])
    met = rule_met(changes[ALPHAS[0]], auc_changes[ALPHAS[0]])
    result = {
        "benchmark": "metadata_prior",
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "model": MODEL,
        "procedure": "one pass",
        "image_only": {"balanced_accuracy": round(before["balanced_accuracy"], 4),
                       "accuracy": round(before["accuracy"], 4), "malignant_auc": round(before["malignant_auc"], 4),
                       "macro_auc": round(before["macro_auc"], 4),
                       "recalls": {name: round(before[f"recall_{name}"], 3) for name in data.CLASSES}},
        "with_metadata": arms,
        "rule_met": bool(met),
        "validation_rows_with_every_field": int((fields(rows.table) != UNKNOWN).all(axis=1).sum()),
        "validation_rows": len(labels),
        "likelihoods": {field: frame.round(4).to_dict(orient="index") for field, frame in tables.items()},
        "seconds": round(time.perf_counter() - begin, 1),
        "machine": {"cpu_count": os.cpu_count(), "processor": cpu_name(), "avx512": cpu_has_avx512()},
        "command": f"python benchmarks/metadata_prior.py --out {args.out}",
    }
    artefacts.write_json_atomic(Path(args.out), result, end="\n")


if __name__ == "__main__":
    main()

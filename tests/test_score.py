"""Scoring the lesion checker's answers on an outside set of labelled images (``python -m skinlib score``)."""

import json

import numpy as np
import pandas as pd
import pytest

from skinlib import predict
from skinlib.__main__ import main

COLUMNS = ["image", "top1", "top1_probability", "top2", "top2_probability", "top3", "top3_probability",
           "malignant_probability", "screening_threshold", "above_screening_threshold", "model", "version",
           "backend", "error"]


def answers(rows):
    """A table shaped like the checker's CSV: (image, top1, P(malignant), error) per row, threshold 0.3."""
    table = pd.DataFrame([{"image": f"/photos/{name}.jpg", "top1": top1, "malignant_probability": p,
                           "screening_threshold": 0.3 if not error else "", "model": "m", "error": error,
                           "above_screening_threshold": (p >= 0.3) if not error else ""}
                          for name, top1, p, error in rows])
    return table.reindex(columns=COLUMNS)


ROWS = [("ISIC_1", "nv", 0.05, ""), ("ISIC_2", "nv", 0.10, ""), ("ISIC_3", "nv", 0.40, ""),  # a nevus flagged
        ("ISIC_4", "mel", 0.80, ""), ("ISIC_5", "nv", 0.20, ""), ("ISIC_6", "bcc", 0.70, ""),  # a missed melanoma
        ("ISIC_7", "", float("nan"), "ISIC_7.jpg: not an image")]
TRUTH = {"ISIC_1": "nv", "ISIC_2": "nv", "ISIC_3": "nv", "ISIC_4": "mel", "ISIC_5": "mel", "ISIC_6": "bcc",
         "ISIC_7": "nv"}


def test_answers_are_scored_against_the_diagnoses():
    table, counts = predict.score_answers(answers(ROWS), pd.Series(TRUTH), n_resamples=200)
    assert counts["scored"] == 6 and counts["errors"] == 1 and counts["threshold"] == 0.3
    assert counts["support"]["nv"] == 3 and counts["support"]["mel"] == 2 and counts["support"]["bcc"] == 1
    estimate = table["estimate"]
    assert estimate["accuracy"] == pytest.approx(5 / 6)
    assert estimate["balanced_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)  # nv, mel, bcc recalls.
    assert estimate["recall_mel"] == 0.5
    assert estimate["sensitivity"] == pytest.approx(2 / 3) and estimate["specificity"] == pytest.approx(2 / 3)
    # Malignant (mel, mel, bcc) at 0.8, 0.2, 0.7 against benign at 0.05, 0.1, 0.4: 8 of 9 pairs ranked right.
    assert estimate["malignant_auc"] == pytest.approx(8 / 9)
    assert (table["low"] <= estimate + 1e-12).all() and (estimate <= table["high"] + 1e-12).all()


def test_both_layouts_of_diagnoses_are_read(tmp_path):
    ham = tmp_path / "metadata.csv"
    pd.DataFrame({"lesion_id": ["L1", "L2"], "image_id": ["ISIC_1", "ISIC_2"], "dx": ["nv", "MEL"]}).to_csv(ham)
    assert predict.read_truth(ham).to_dict() == {"ISIC_1": "nv", "ISIC_2": "mel"}
    isic = tmp_path / "ISIC2018_Task3_Test_GroundTruth.csv"
    onehot = pd.DataFrame(np.eye(7)[[1, 6]], columns=list(predict.ISIC_COLUMNS))
    onehot.insert(0, "image", ["ISIC_1", "ISIC_2"])
    onehot.to_csv(isic, index=False)
    assert predict.read_truth(isic).to_dict() == {"ISIC_1": "nv", "ISIC_2": "vasc"}


@pytest.mark.parametrize("table, message", [
    (pd.DataFrame({"name": ["a"], "dx": ["nv"]}), "no 'image_id' or 'image' column"),
    (pd.DataFrame({"image": ["a"], "diagnosis": ["nv"]}), "no 'dx' column and not the ISIC 2018 layout"),
    (pd.DataFrame({"image": ["a"], "dx": ["melanoma"]}), r"unknown diagnoses \['melanoma'\]"),
    (pd.DataFrame({"image": ["a", "a.jpg"], "dx": ["nv", "nv"]}), r"1 image name\(s\) given twice"),
])
def test_diagnoses_that_cannot_be_read_name_the_file_and_the_problem(tmp_path, table, message):
    path = tmp_path / "truth.csv"
    table.to_csv(path, index=False)
    with pytest.raises(predict.ScoreError, match=f"truth.csv: {message}"):
        predict.read_truth(path)


def test_an_answered_image_without_a_diagnosis_is_refused():
    with pytest.raises(predict.ScoreError, match=r"1 answered image\(s\) have no known diagnosis \(first: \['ISIC_6'\]"):
        predict.score_answers(answers(ROWS), pd.Series({k: v for k, v in TRUTH.items() if k != "ISIC_6"}))


def test_the_command_line_scores_a_csv_and_writes_json(tmp_path, capsys):
    answers(ROWS).to_csv(tmp_path / "answers.csv", index=False)
    truth = tmp_path / "truth.csv"
    pd.DataFrame({"image_id": list(TRUTH), "dx": list(TRUTH.values())}).to_csv(truth, index=False)
    out = tmp_path / "scores.json"
    assert main(["score", str(tmp_path / "answers.csv"), "--truth", str(truth), "--resamples", "50",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "6 image(s) scored" in printed and "1 the checker could not read left out" in printed
    assert json.loads(out.read_text())["metrics"]["accuracy"]["estimate"] == pytest.approx(5 / 6)
    (tmp_path / "bad.csv").write_text("file,answer\nx,nv\n")
    assert main(["score", str(tmp_path / "bad.csv"), "--truth", str(truth)]) == 2
    assert "bad.csv: not the checker's answers" in capsys.readouterr().err

"""Scoring the lesion checker's answers on an outside set of labelled images (``python -m skinlib score``)."""

import json

import numpy as np
import pandas as pd
import pytest

from skinlib import metrics, predict
from skinlib.__main__ import main

COLUMNS = ["image", "top1", "top1_probability", "top2", "top2_probability", "top3", "top3_probability",
           "malignant_probability", "screening_threshold", "above_screening_threshold", "model", "version",
           "backend", "error"]


def answers(rows, threshold=0.3):
    """A table shaped like the checker's CSV: (image, top1, P(malignant), error) per row."""
    table = pd.DataFrame([{"image": f"/photos/{name}.jpg", "top1": top1, "malignant_probability": p,
                           "screening_threshold": threshold if not error and threshold else "", "model": "m",
                           "error": error, "above_screening_threshold": (p >= threshold)
                           if not error and threshold else ""} for name, top1, p, error in rows])
    return table.reindex(columns=COLUMNS)


ROWS = [("ISIC_1", "nv", 0.05, ""), ("ISIC_2", "nv", 0.10, ""), ("ISIC_3", "nv", 0.40, ""),  # a nevus flagged
        ("ISIC_4", "mel", 0.80, ""), ("ISIC_5", "nv", 0.20, ""), ("ISIC_6", "bcc", 0.70, ""),  # a missed melanoma
        ("ISIC_8", "nv", 0.01, ""), ("ISIC_7", "", float("nan"), "ISIC_7.jpg: not an image")]
TRUTH = {"ISIC_1": "nv", "ISIC_2": "nv", "ISIC_3": "nv", "ISIC_4": "mel", "ISIC_5": "mel", "ISIC_6": "bcc",
         "ISIC_7": "nv", "ISIC_8": "nv"}


def test_answers_are_scored_against_the_diagnoses():
    table, counts = predict.score_answers(answers(ROWS), pd.Series(TRUTH), n_resamples=200)
    assert counts["scored"] == 7 and counts["errors"] == 1 and counts["threshold"] == 0.3
    assert counts["support"]["nv"] == 4 and counts["support"]["mel"] == 2 and counts["support"]["bcc"] == 1
    estimate = table["estimate"]
    assert estimate["accuracy"] == pytest.approx(6 / 7)
    assert estimate["balanced_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)  # nv, mel, bcc recalls.
    assert estimate["recall_mel"] == 0.5
    assert estimate["sensitivity"] == pytest.approx(2 / 3) and estimate["specificity"] == pytest.approx(3 / 4)
    # Malignant (mel, mel, bcc) at 0.8, 0.2, 0.7 against benign at 0.05, 0.1, 0.4, 0.01: 11 of 12 pairs ranked right.
    assert estimate["malignant_auc"] == pytest.approx(11 / 12)
    assert (table["low"] <= estimate + 1e-12).all() and (estimate <= table["high"] + 1e-12).all()
    assert table.loc["recall_bcc", ["low", "high"]].tolist() == [1.0, 1.0]  # Its one image stays in every resample.


def test_answer_metrics_agree_with_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    rng = np.random.default_rng(0)
    labels, top1, p = rng.integers(0, 7, 300), rng.integers(0, 7, 300), rng.random(300)
    every = rng.dirichlet(np.ones(7), 300)
    assert "macro_auc" not in metrics.answer_metrics(labels, np.column_stack([top1, p, p >= 0.5]))
    scores = metrics.answer_metrics(labels, np.column_stack([top1, p, p >= 0.5, every]))
    assert scores["macro_auc"] == pytest.approx(roc_auc_score(labels, every, multi_class="ovr", average="macro"))
    truth = np.isin(labels, metrics.MALIGNANT_INDEX)
    assert scores["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, top1))
    assert scores["malignant_auc"] == pytest.approx(roc_auc_score(truth, p))
    assert scores["sensitivity"] == pytest.approx((p[truth] >= 0.5).mean())
    assert scores["specificity"] == pytest.approx((p[~truth] < 0.5).mean())


def test_answers_without_a_threshold_are_scored_without_screening():
    table, counts = predict.score_answers(answers(ROWS, threshold=None), pd.Series(TRUTH), n_resamples=20)
    assert counts["threshold"] is None and "sensitivity" not in table.index


def test_images_of_one_lesion_are_resampled_together(tmp_path):
    path = tmp_path / "metadata.csv"
    lesions = {"ISIC_1": "L1", "ISIC_2": "L1", "ISIC_3": "L2", "ISIC_4": "L3", "ISIC_5": "L4", "ISIC_6": "L5",
               "ISIC_7": "L6", "ISIC_8": "L6"}
    pd.DataFrame({"lesion_id": list(lesions.values()), "image_id": list(TRUTH), "dx": list(TRUTH.values())}).to_csv(
        path, index=False)
    truth = predict.read_truth(path)
    assert truth.loc["ISIC_2", "lesion"] == "L1"
    _, counts = predict.score_answers(answers(ROWS), truth, n_resamples=20)
    assert counts["lesions"] == 6  # ISIC_7 is an error row, so L6 has only ISIC_8.


def test_both_layouts_of_diagnoses_are_read(tmp_path):
    ham = tmp_path / "metadata.tab"  # HAM10000's tab-separated copy.
    pd.DataFrame({"image_id": ["ISIC_1", "0001", "lesion.001"], "dx": ["nv", "MEL", "df"]}).to_csv(
        ham, sep="\t", index=False)
    assert predict.read_truth(ham)["dx"].to_dict() == {"ISIC_1": "nv", "0001": "mel", "lesion.001": "df"}
    isic = tmp_path / "ISIC2018_Task3_Test_GroundTruth.csv"
    onehot = pd.DataFrame(np.eye(7)[[1, 6]], columns=list(predict.ISIC_COLUMNS))
    onehot.insert(0, "image", ["ISIC_1", "ISIC_2"])
    onehot.to_csv(isic, index=False)  # Written as 1.0 and 0.0.
    assert predict.read_truth(isic)["dx"].to_dict() == {"ISIC_1": "nv", "ISIC_2": "vasc"}
    onehot.rename(columns=str.lower).rename(columns={"image": " Image "}).to_csv(isic, index=False)
    assert predict.read_truth(isic)["dx"].to_dict() == {"ISIC_1": "nv", "ISIC_2": "vasc"}  # Headers in any case.


@pytest.mark.parametrize("table, message", [
    (pd.DataFrame({"name": ["a"], "dx": ["nv"]}), "no 'image_id' or 'image' column"),
    (pd.DataFrame({"image": ["a"], "diagnosis": ["nv"]}), "no 'dx' column and not the ISIC 2018 layout"),
    (pd.DataFrame({"image": ["a"], "dx": ["melanoma"]}), r"unknown diagnoses \['melanoma'\]"),
    (pd.DataFrame({"image": ["a", "a.jpg"], "dx": ["nv", "nv"]}), r"1 image name\(s\) given twice"),
    (pd.DataFrame({"image": ["a", ""], "dx": ["nv", "nv"]}), r"1 row\(s\) name no image"),
    (pd.DataFrame({"image": ["a"], **{c: [1 if c in ("MEL", "NV") else 0] for c in predict.ISIC_COLUMNS}}),
     r"1 image\(s\) without exactly one diagnosis set to 1"),
    (pd.DataFrame({"image": ["a"], **{c: ["yes" if c == "MEL" else 0] for c in predict.ISIC_COLUMNS}}),
     "a diagnosis column holds a value that is not a number"),
    (pd.DataFrame({"image": ["a", "b"], "dx": ["nv", ""]}), r"1 row\(s\) have no diagnosis in 'dx' \(first: row 3"),
    (pd.DataFrame({"image": ["a", "A.JPG"], "dx": ["nv", "nv"]}), r"1 image name\(s\) given twice"),
    (pd.DataFrame({"image": ["a"], "mel": [1], "nv": [0], "ak": [0], "scc": [0], "unk": [0]}),
     "this looks like ISIC 2019's layout"),
    (pd.DataFrame({"image": ["a"], "dx": ["nv"], "DX": ["mel"]}), r"the columns \['dx'\] are given twice"),
    (pd.DataFrame({"image_id;dx": ["a;nv"]}), "no 'image_id' or 'image' column .*; it looks separated by ';', not ','"),
])
def test_diagnoses_that_cannot_be_read_name_the_file_and_the_problem(tmp_path, table, message):
    path = tmp_path / "truth.csv"
    table.to_csv(path, index=False)
    with pytest.raises(predict.ScoreError, match=f"truth.csv: {message}"):
        predict.read_truth(path)


@pytest.mark.parametrize("change, message", [
    (lambda t: t[t["image"] != "/photos/ISIC_6.jpg"].assign(), None),  # Fine: fewer answers than diagnoses.
    (lambda t: pd.concat([t, t.iloc[[0]]]), r"1 image\(s\) answered twice \(first: ISIC_1\)"),
    (lambda t: t.assign(model=["m"] * 7 + ["other"]).iloc[[0, 1, 7]].assign(error=""), "several models"),
    (lambda t: t.assign(malignant_probability=["", *t["malignant_probability"][1:]]), "no P\\(malignant\\)"),
    (lambda t: t.assign(above_screening_threshold=["", *t["above_screening_threshold"][1:]]), "no screening flag"),
    (lambda t: t.assign(top1=["melanoma", *t["top1"][1:]]), r"diagnoses \['melanoma'\]"),
    (lambda t: t.iloc[:0], "the answers have no rows"),
    (lambda t: t.drop(columns=["top1"]), r"not the checker's answers \(no \['top1'\] column\)"),
    (lambda t: t.assign(**{c: 1 / 7 for c in predict.PROBABILITY_COLUMNS}).assign(p_nv=[""] + [1 / 7] * 7),
     r"1 answered image\(s\) lack some of the seven probabilities"),
])
def test_answers_that_cannot_be_scored_are_refused(change, message):
    table = change(answers(ROWS))
    if message is None:
        predict.score_answers(table, pd.Series(TRUTH), n_resamples=5)
        return
    with pytest.raises(predict.ScoreError, match=message):
        predict.score_answers(table, pd.Series(TRUTH), n_resamples=5)


def test_names_match_without_regard_to_case_and_the_scores_say_what_they_rest_on():
    truth = pd.Series({name.lower(): dx for name, dx in TRUTH.items()})
    _, counts = predict.score_answers(answers(ROWS), truth, n_resamples=5)
    assert counts["scored"] == 7  # isic_1 in the diagnoses is the checker's ISIC_1.jpg.
    assert counts["few_lesions"] == {"bcc": 1, "mel": 2, "nv": 4}  # Each image its own lesion here.
    assert counts["ham10000"] == {}  # None of these names is a HAM10000 image.
    from skinlib.split import load_manifest

    manifest = load_manifest().groupby("split").head(2)  # Two HAM10000 images of each split, named in lower case.
    rows = [(name.lower(), "nv", 0.1, "") for name in manifest["image_id"]]
    _, counts = predict.score_answers(answers(rows), pd.Series("nv", index=manifest["image_id"]), n_resamples=5)
    assert counts["ham10000"] == {"train": 2, "val": 2, "test": 2}
    with pytest.raises(predict.ScoreError, match=r"1 image\(s\) answered twice \(first: isic_1\)"):
        predict.score_answers(answers(ROWS + [("isic_1", "nv", 0.05, "")]), pd.Series(TRUTH), n_resamples=5)
    with pytest.raises(predict.ScoreError, match=r"the diagnoses name 1 image\(s\) twice when case is ignored"):
        predict.score_answers(answers(ROWS), pd.Series({**TRUTH, "isic_1": "mel"}), n_resamples=5)


def test_the_notes_under_the_scores():
    from skinlib.__main__ import _score_notes

    support = {dx: 10 for dx in predict.CLASSES}
    assert _score_notes({"support": support, "few_lesions": {}, "ham10000": {"test": 3}}) == []  # Nothing to say.
    notes = _score_notes({"support": {**support, "df": 0}, "few_lesions": {"vasc": 1, "akiec": 4},
                          "ham10000": {"val": 5, "train": 1}})
    assert notes[0] == ("vasc 1, akiec 4 have fewer than 5 lesions: the bootstrap barely varies their recalls (with "
                        "one lesion, not at all), so the intervals are too narrow.")
    assert "not at all" not in _score_notes({"support": support, "few_lesions": {"df": 3}})[0]
    assert notes[1].startswith("6 of the 7 diagnoses are present (akiec, bcc, bkl, mel, nv, vasc)")
    assert notes[2].startswith("6 scored image(s) are HAM10000 validation and training images")


def test_age_sex_and_site_are_checked_before_the_model_loads(capsys):
    from skinlib.__main__ import build_parser

    parser = build_parser()
    args = parser.parse_args(["predict", "x.jpg", "--age", "45", "--sex", "Male", "--site", "Lower Extremity"])
    assert (args.age, args.sex, args.site) == (45.0, "male", "lower extremity")
    for wrong, message in ((["--age", "abc"], "'abc' is not a number of years"),
                           (["--age", "200"], "200 is not an age between 0 and 120 years"),
                           (["--site", "lower leg"], "invalid choice: 'lower leg'")):
        with pytest.raises(SystemExit):
            parser.parse_args(["predict", "x.jpg", *wrong])
        assert message in capsys.readouterr().err


def test_an_answered_image_without_a_diagnosis_is_refused():
    with pytest.raises(predict.ScoreError, match=r"1 answered image\(s\) have no known diagnosis \(first: \['ISIC_6'\]"):
        predict.score_answers(answers(ROWS), pd.Series({k: v for k, v in TRUTH.items() if k != "ISIC_6"}))


def test_the_command_line_scores_the_checkers_own_csv(tmp_path, capsys):
    from skinlib import data

    metadata = data.load_metadata()
    chosen = metadata.groupby("dx").head(1)  # One image of each diagnosis, answered by the shipped model.
    assert main(["predict", *chosen["image_path"].astype(str), "--csv", str(tmp_path / "answers.csv")]) == 0
    assert "p_nv" not in capsys.readouterr().out  # The probabilities go to the CSV, not to the console table.
    truth = tmp_path / "truth.csv"
    chosen[["lesion_id", "image_id", "dx"]].to_csv(truth, index=False)
    out = tmp_path / "scores.json"
    capsys.readouterr()
    assert main(["score", str(tmp_path / "answers.csv"), "--truth", str(truth), "--resamples", "50",
                 "--json", str(out)]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "7 image(s) of 7 lesion(s) scored" in printed and "0 the checker could not read left out" in printed
    from skinlib.split import load_manifest

    splits = load_manifest().set_index("image_id").loc[chosen["image_id"], "split"]
    learnt = int(splits.isin(["train", "val"]).sum())  # The shipped refit learnt from these; the scores say so.
    if learnt:
        assert f"{learnt} scored image(s) are HAM10000" in captured.err
    else:
        assert "HAM10000" not in captured.err
    assert "akiec 1, bcc 1, bkl 1, df 1, mel 1, nv 1, vasc 1 have fewer than 5 lesions" in captured.err
    written = pd.read_csv(tmp_path / "answers.csv")
    expected = (written["top1"].to_numpy() == chosen["dx"].to_numpy()).mean()
    record = json.loads(out.read_text())
    assert record["metrics"]["accuracy"]["estimate"] == pytest.approx(expected)
    assert sum(record["ham10000"].values()) == 7 and len(record["few_lesions"]) == 7
    assert list(written.columns[-7:]) == predict.PROBABILITY_COLUMNS  # All seven probabilities, last: macro AUC too.
    every = written[predict.PROBABILITY_COLUMNS].to_numpy()  # The probabilities the checker shows:
    assert (np.array(predict.CLASSES)[every.argmax(axis=1)] == written["top1"]).all()  # its top diagnosis,
    assert np.allclose(every[:, [0, 1, 4]].sum(axis=1), written["malignant_probability"], atol=3e-4)  # P(malignant).
    assert record["metrics"]["macro_auc"]["estimate"] == pytest.approx(metrics.headline(
        chosen["dx"].map(list(predict.CLASSES).index).to_numpy(), written[predict.PROBABILITY_COLUMNS].to_numpy())[
        "macro_auc"])
    assert record["threshold"] == pytest.approx(float(written["screening_threshold"].iloc[0]))
    (tmp_path / "bad.csv").write_text("file,answer\nx,nv\n")
    assert main(["score", str(tmp_path / "bad.csv"), "--truth", str(truth)]) == 2
    assert f"{tmp_path / 'bad.csv'} against {truth}: not the checker's answers" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "answers.csv"), "--truth", str(truth), "--json",
                 str(tmp_path / "answers.csv" / "scores.json")]) == 2  # A folder that is a file: refused up front.
    assert "the JSON file" in capsys.readouterr().err

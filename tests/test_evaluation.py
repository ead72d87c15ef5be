"""Chapter 04's library code: confidence intervals, screening, calibration, subgroups, Grad-CAM and its scores."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from skinlib import artefacts, calibrate, data, evaluate, explain, explanation_scores, final, metrics, models
from tests.test_models_train import toy_splits


def noisy_predictions(count=700, accuracy=0.7, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 7
    predicted = np.where(rng.uniform(size=count) < accuracy, labels, rng.integers(0, 7, count))
    probabilities = np.full((count, 7), 0.05)
    probabilities[np.arange(count), predicted] = 0.7
    return labels, probabilities / probabilities.sum(axis=1, keepdims=True)


def test_bootstrap_intervals_contain_the_estimate_and_widen_with_grouping():
    labels, probabilities = noisy_predictions()
    plain = metrics.bootstrap(labels, probabilities, n_resamples=200)
    assert ((plain["low"] <= plain["estimate"]) & (plain["estimate"] <= plain["high"])).all()
    # Ten images per "lesion", all alike: the honest interval is wider than one that pretends they are independent.
    groups = np.repeat(np.arange(70), 10)
    same = np.repeat(np.arange(70), 10)
    grouped = metrics.bootstrap(labels[same], probabilities[same], groups=groups, n_resamples=200)
    naive = metrics.bootstrap(labels[same], probabilities[same], n_resamples=200)
    width = lambda table: (table["high"] - table["low"])["accuracy"]  # noqa: E731
    assert width(grouped) > 1.5 * width(naive)


def test_auc_and_balanced_accuracy_give_sklearns_numbers():
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    rng = np.random.default_rng(7)
    for count, rounding in ((40, 1), (700, 2), (1503, 6)):  # Coarse rounding makes many ties.
        truth = rng.uniform(size=count) < 0.3
        scores = np.round(rng.uniform(size=count) + 0.3 * truth, rounding)
        assert metrics.auc(truth, scores) == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    assert np.isnan(metrics.auc(np.ones(5, bool), np.arange(5)))  # One side only, as sklearn (which warns).
    assert metrics.auc([0, 1, 0, 1], [0.5] * 4) == 0.5  # All tied: chance.
    for truth, scores, problem in (([1, 2, 1], [0.1, 0.2, 0.3], "boolean or 0/1"), ([0, 1], [0.1], "one length"),
                                   ([0, 1], [0.1, np.nan], "NaN")):
        with pytest.raises(ValueError, match=problem):  # Refused, as sklearn refuses them, not a silent NaN.
            metrics.auc(truth, scores)
    labels, probabilities = noisy_predictions(seed=3)
    labels, probabilities = labels[labels != 2], probabilities[labels != 2]  # A class absent, as in a resample.
    scores = metrics.headline(labels, probabilities)
    assert scores["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, probabilities.argmax(1)),
                                                        abs=1e-12)
    expected = np.mean([roc_auc_score(labels == k, probabilities[:, k]) for k in np.unique(labels)])
    assert scores["macro_auc"] == pytest.approx(expected, abs=1e-12)
    malignant = np.isin(labels, metrics.MALIGNANT_INDEX)
    assert scores["malignant_auc"] == pytest.approx(
        roc_auc_score(malignant, metrics.malignant_probability(probabilities)), abs=1e-12)


def test_per_class_report_matches_sklearn():
    from sklearn.metrics import f1_score

    labels, probabilities = noisy_predictions()
    table = metrics.per_class_report(labels, probabilities)
    assert list(table.index) == list(data.CLASSES) and table["support"].sum() == len(labels)
    assert np.allclose(table["f1"], f1_score(labels, probabilities.argmax(1), average=None))


def test_screening_threshold_is_set_for_the_asked_sensitivity():
    labels, probabilities = noisy_predictions(seed=1)
    truth = np.isin(labels, metrics.MALIGNANT_INDEX)
    threshold = metrics.threshold_for_sensitivity(truth, metrics.malignant_probability(probabilities), 0.9)
    point = metrics.screening(labels, probabilities, threshold)
    assert point["sensitivity"] >= 0.9 and point["malignant"] == truth.sum()
    stricter = metrics.screening(labels, probabilities, threshold + 1e-6)
    assert stricter["sensitivity"] <= point["sensitivity"]


def test_temperature_scaling_fixes_overconfidence_without_changing_predictions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 2000)
    logits = rng.normal(0, 1, (2000, 7))
    logits[np.arange(2000), labels] += 1.0
    honest = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    overconfident = calibrate.apply_temperature(honest, 0.4)  # Sharpened: claims more than it knows.
    temperature = calibrate.fit_temperature(labels, overconfident)
    assert temperature == pytest.approx(2.5, rel=0.1)
    fixed = calibrate.apply_temperature(overconfident, temperature)
    assert (fixed.argmax(1) == overconfident.argmax(1)).all()
    assert calibrate.expected_calibration_error(labels, fixed) < calibrate.expected_calibration_error(labels,
                                                                                                        overconfident)


def test_subgroups_pool_small_groups_and_age_bands():
    labels, probabilities = noisy_predictions(140)
    table = pd.DataFrame({"sex": ["male"] * 100 + ["female"] * 35 + ["unknown"] * 5})
    groups = metrics.subgroups(table, labels, probabilities, "sex")
    assert groups["images"].to_dict() == {"male": 100, "female": 35, "other (<20 each)": 5}
    assert metrics.age_band(pd.Series([19.0, 20.0, 85.0, np.nan])).tolist() == ["0-19", "20-39", "80+", "unknown"]


def test_scores_by_how_each_diagnosis_was_confirmed_reach_final_metrics_and_the_readme():
    from skinlib import reproduce

    # 4 melanomas (histo), 6 nevi by histopathology (3 found), 10 by follow-up (all found).
    labels = np.array([4] * 4 + [5] * 16)
    called = np.array([4, 4, 4, 5] + [5, 5, 5, 4, 4, 4] + [5] * 10)
    table = pd.DataFrame({"dx_type": ["histo"] * 10 + ["follow_up"] * 10})
    recalls = metrics.recall_by_confirmation(table, labels, np.eye(7)[called])
    assert recalls.loc[("mel", "histo")].tolist() == [4, 0.75]
    assert recalls.loc[("nv", "histo")].tolist() == [6, 0.5] and recalls.loc[("nv", "follow_up")].tolist() == [10, 1.0]
    assert len(recalls) == 3  # No row for a pair without images.
    excised = (table["dx_type"] == metrics.EXCISED).to_numpy()
    probabilities = np.eye(7)[called] * 0.9 + 0.1 / 7
    inside = metrics.bootstrap(labels[excised], probabilities[excised], n_resamples=20)
    overall = metrics.bootstrap(labels, probabilities, n_resamples=20)
    assert inside.loc["balanced_accuracy", "estimate"] == pytest.approx((0.75 + 0.5) / 2)
    text = metrics.describe_confirmation(recalls, inside, overall)
    assert text.startswith("On the 10 images confirmed by histopathology (all 4 images of mel, and 6 of the 16 nv), "
                           "balanced accuracy 0.625")
    assert text.endswith("Recall of nv: 0.50 confirmed by histopathology (6 images), 1.00 by follow-up (10).")
    both = metrics.recall_by_confirmation(pd.DataFrame({"dx_type": ["histo"] * 3}), np.array([1, 4, 4]),
                                          np.eye(7)[[1, 4, 4]])
    assert "(all 3 images of bcc and mel)" in metrics.describe_confirmation(both, inside, overall)
    none = metrics.recall_by_confirmation(pd.DataFrame({"dx_type": ["follow_up"]}), np.array([5]), np.eye(7)[[5]])
    assert metrics.describe_confirmation(none, inside, overall, what="test images") == (
        "None of the test images was confirmed by histopathology.")
    arguments = dict(
        rule="r", model="m", procedure="m", tta=False, input_size=(150, 200), smoke=True, test_labels=labels,
        test_lesion_ids=np.arange(20), bootstrap_resamples=20, finals={"m": overall.assign(validation=0.5)},
        per_class=metrics.per_class_report(labels, probabilities), target_sensitivity=0.9, threshold=0.3,
        screening={"val": {}, "test": {}}, screening_interval=pd.DataFrame(), temperature=1.0,
        temperature_kept=False, ece={"test": {"raw": 0.1, "scaled": 0.1}, "val": {"raw": 0.1, "scaled": 0.1}},
        subgroups={}, explanations=pd.DataFrame(), decision_tradeoff=pd.DataFrame(), tta_comparison=None)
    assert "confirmation" not in artefacts.final_metrics(**arguments)  # Left out unless given.
    record = artefacts.final_metrics(**arguments, confirmation=(recalls, inside))
    record = json.loads(json.dumps(record, default=float))  # As final_metrics.json holds it.
    assert record["confirmation"]["recall"]["nv/follow_up"] == {"images": 10, "recall": 1.0}
    said = text.replace("10 images confirmed", "10 test images confirmed").replace("on all images", "on all test images")
    assert said in reproduce._markdown_final(record)  # The README's final block says the same of the test images.


def test_grad_cam_finds_the_evidence():
    """A model whose class-0 evidence comes from the top-left quarter only: Grad-CAM must point there."""
    quarter = np.zeros((1, 32, 32, 1), "float32")
    quarter[:, :16, :16] = 1
    inputs = keras.Input((32, 32, 3))
    masked = keras.layers.Lambda(lambda t: t * quarter)(inputs)
    feature_map = keras.layers.Conv2D(2, 1, use_bias=False, kernel_initializer="ones", name="evidence")(masked)
    score = keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)(
        keras.layers.GlobalAveragePooling2D()(feature_map))
    logits = keras.layers.Concatenate()([score] + [keras.layers.Lambda(lambda t: 0 * t)(score)] * 6)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    pixels = np.random.default_rng(0).uniform(0, 1, (32, 32, 3)).astype("float32")
    heat, chosen = explain.grad_cam(model, pixels, 0)
    assert chosen == 0 and heat.shape == (32, 32)
    mask = np.zeros((32, 32), bool)
    mask[:16, :16] = True
    scores = explanation_scores.mask_scores(heat, mask)
    assert scores["hit"] and scores["inside"] > 0.9
    assert explanation_scores.mask_scores(np.ones((32, 32)), mask)["inside"] == 0.25  # The uniform baseline.


def test_grad_cam_on_a_transfer_classifier_and_a_cnn():
    base = models.backbone("mobilenet_025", input_shape=(48, 64, 3))
    classifier = models.classifier(base, models.head(256))
    pixels = np.random.default_rng(0).uniform(0, 255, (48, 64, 3)).astype("float32")
    heat, chosen = explain.grad_cam(classifier, pixels)
    assert heat.shape == (48, 64) and 0 <= heat.min() and heat.max() <= 1 and 0 <= chosen < 7
    cnn = models.cnn((48, 64, 3), filters=(4, 8), global_pool=True)
    heat, _ = explain.grad_cam(cnn, pixels, 3)
    assert heat.shape == (48, 64)


def test_grad_cam_of_an_ensemble_is_the_mean_of_its_members_for_the_ensembles_class():
    keras.utils.set_random_seed(3)  # Unseeded weights left both members' maps all zero about one run in eight.
    rng = np.random.default_rng(1)
    parts = [models.classifier(models.backbone("mobilenet_025", input_shape=(48, 64, 3), weights=None),
                               models.head(256), name=f"seed{n}") for n in range(2)]
    for part, leaning in zip(parts, ([6.0, 0, 0, 0, 0, 0, 0], [4.0, 5.0, 0, 0, 0, 0, 0])):  # members disagree
        part.get_layer("head").layers[-1].bias.assign(np.asarray(leaning, "float32"))
    ensemble = models.ensemble(parts)
    pixels = rng.uniform(0, 255, (48, 64, 3)).astype("float32")
    assert [int(np.argmax(part(pixels[None])[0])) for part in parts] == [0, 1]
    heat, chosen = explain.grad_cam(ensemble, pixels)
    assert chosen == int(np.argmax(ensemble(pixels[None])[0])) == 0  # the ensemble's class, for every member
    maps = [explain.grad_cam(part, pixels, chosen)[0] for part in parts]
    assert all(heat_map.max() == 1 for heat_map in maps)  # Two non-empty maps, so the mean is a real test.
    expected = np.mean(maps, axis=0)
    np.testing.assert_allclose(heat, expected / expected.max(), atol=1e-6)
    assert explain.cam_grid(ensemble) == explain.cam_grid(parts[0])


def test_an_ensemble_refuses_too_few_same_named_or_mismatched_members():
    small = lambda name, side=16: models.cnn((side, side, 3), filters=(2,), global_pool=True, name=name)  # noqa: E731
    with pytest.raises(ValueError, match="at least two members"):
        models.ensemble([small("a")])
    with pytest.raises(ValueError, match="names must differ"):
        models.ensemble([small("a"), small("a")])
    with pytest.raises(ValueError, match="different inputs"):
        models.ensemble([small("a"), small("b", side=32)])
    with pytest.raises(ValueError, match="is an ensemble"):
        models.unfreeze(models.ensemble([small("a"), small("b")]))
    with pytest.raises(ValueError, match="not a classifier of one backbone"):  # Two members, no head.
        models.base_of(models.ensemble([small("a"), small("b")]))


def test_frame_share_and_mask_score_shapes():
    heat = np.zeros((20, 20))
    heat[0, :] = 1
    assert explanation_scores.frame_share(heat) == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        explanation_scores.mask_scores(heat, np.ones((10, 10), bool))


def test_lime_marks_the_informative_region():
    """A model that answers class 0 by the brightness of the left half: LIME's superpixels lie there."""
    inputs = keras.Input((32, 32, 3))
    left = keras.layers.Cropping2D(((0, 0), (0, 16)))(inputs)
    bright = keras.layers.GlobalAveragePooling2D()(left)
    score = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(1 / 150), use_bias=False)(bright)
    logits = keras.layers.Concatenate()([score] + [keras.layers.Lambda(lambda t: 0 * t)(score)] * 6)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    blocks = np.random.default_rng(0).uniform(100, 255, (4, 4, 3))  # 16 flat squares: clear superpixels.
    pixels = np.kron(blocks, np.ones((8, 8, 1))).astype("float32")
    mask = explain.lime_explanation(model, pixels, 0, samples=200, features=3)
    assert mask[:, :16].sum() > 0 and mask[:, 16:].sum() == 0


def test_final_choice_applies_the_rule_and_writes_json(tmp_path):
    splits = toy_splits(count=140, side=32)
    small = {name: models.cnn((32, 32, 3), filters=(4,), global_pool=True, name=name)
             for name in ("02_small", "03_big", "03_other")}
    for name, model in small.items():
        artefacts.save_model_atomic(model, tmp_path / f"{name}.keras")
    results = pd.DataFrame({"name": ["02_small", "03_big", "03_big_tta", "03_head_only"],
                            "notebook": ["02", "03", "03", "03"],
                            "balanced_accuracy": [0.50, 0.60, 0.58, 0.90], "accuracy": [0.6] * 4})
    finals = final.choose(results, tmp_path)  # 03_head_only has no saved model; TTA did not raise 03_big's score
    assert [(f.name, f.members, f.tta) for f in finals] == [("03_big", ["03_big"], False)]
    # A saved ensemble of 03_big and 03_other stands for them, though 03_big alone scored higher on validation.
    artefacts.save_model_atomic(models.ensemble([small["03_big"], small["03_other"]], name="03_ens"),
                                tmp_path / "03_ens.keras")
    ensemble_rows = pd.DataFrame({"name": ["03_other", "03_ens", "03_ens_tta"], "notebook": ["03"] * 3,
                                  "balanced_accuracy": [0.55, 0.57, 0.59], "accuracy": [0.6] * 3,
                                  "members": [None, "03_big + 03_other", "03_big + 03_other"]})
    results = pd.concat([results, ensemble_rows], ignore_index=True)
    assert final.candidates(results, tmp_path)["name"].tolist() == ["03_ens", "02_small"]
    finals = final.choose(results, tmp_path)
    assert [(f.name, f.members, f.tta) for f in finals] == [("03_ens_tta", ["03_ens"], True)]
    parts = {(32, 32): splits}
    probabilities = final.predict(finals[0], lambda size: parts[size], folder=tmp_path, part="val")
    expected = np.mean([final.predict_tta(small[name], splits["val"].images) for name in ("03_big", "03_other")], 0)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    # An ensemble row whose model is not saved stands for nothing: its members compete as before.
    (tmp_path / "03_ens.keras").unlink()
    assert final.choose(results, tmp_path)[0].name == "03_big"
    path = artefacts.write_final_metrics({"model": "03_big", "score": np.float32(0.5)}, tmp_path)
    assert json.loads(path.read_text()) == {"model": "03_big", "score": 0.5}


def test_a_refit_predicts_every_split_but_validation_and_is_the_model_that_ships(tmp_path):
    splits = toy_splits(count=70, side=32)
    splits["test"] = splits["train"]  # Any images the models have not been scored on here.
    built = {}
    for seed, name in enumerate(("03_run", "03_run_refit")):
        keras.utils.set_random_seed(seed)  # Two different networks.
        built[name] = models.cnn((32, 32, 3), filters=(4,), global_pool=True, name=name)
    chosen, refitted = built.values()
    artefacts.save_model_atomic(chosen, tmp_path / "03_run.keras")
    artefacts.record_metrics("03_run", {"balanced_accuracy": 0.6, "accuracy": 0.7}, folder=tmp_path, notebook="03")
    results = artefacts.read_results(tmp_path)
    assert final.choose(results, tmp_path, refit=True)[0].refit is None  # No refit yet: the run predicts everything.
    name = artefacts.save_refit(refitted, "03_run", folder=tmp_path, details={"train_images": 70})
    assert final.choose(results, tmp_path)[0].refit is None  # Not asked for (chapter 04 before it was wired).
    finals = final.choose(results, tmp_path, refit=True)
    assert [(f.name, f.members, f.refit, f.model) for f in finals] == [("03_run_refit", ["03_run"], [name], name)]
    # A refit writes no row of the results table, so it is never a candidate of its own.
    assert final.candidates(artefacts.read_results(tmp_path), tmp_path)["name"].tolist() == ["03_run"]
    parts = {(32, 32): splits}
    probabilities = final.predict_finals(finals, lambda size: parts[size], folder=tmp_path,
                                         metadata={"val": None, "test": None})
    # Validation is predicted by the run chosen on it, whose scores fit the temperature and threshold;
    # the test split by the refit, which learnt from the validation images.
    np.testing.assert_allclose(probabilities[("03_run_refit", "val")],
                               final.predict_proba(chosen, splits["val"].images), atol=1e-6)
    np.testing.assert_allclose(probabilities[("03_run_refit", "test")],
                               final.predict_proba(refitted, splits["test"].images), atol=1e-6)
    assert not np.allclose(probabilities[("03_run_refit", "test")], final.predict_proba(chosen, splits["test"].images))
    # Trained again, the run no longer has this refit: it is not the refit of the new run.
    artefacts.record_metrics("03_run", {"balanced_accuracy": 0.61, "accuracy": 0.7}, folder=tmp_path, notebook="03")
    assert artefacts.refit_of("03_run", tmp_path) is None
    assert final.choose(results, tmp_path, refit=True)[0].refit is None


def test_tta_comparison_is_read_from_the_candidates_and_described_either_way():
    table = pd.DataFrame({"name": ["03_big", "02_small"], "balanced_accuracy": [0.60, 0.50],
                          "balanced_accuracy_tta": [0.58, np.nan]})
    labels = np.tile(np.arange(7), 10)
    right, wrong = np.eye(7)[labels], np.eye(7)[np.where(np.arange(70) < 7, (labels + 1) % 7, labels)]
    lesions = np.arange(70) // 2  # Two images per lesion: the bootstrap draws them together.
    without = final.compare_tta(final.Final("03_big", ["03_big"], False, 0.60), table, labels, right, right,
                                groups=lesions, n_resamples=30)
    assert without["tta"] is False and without["validation"] == {"one_pass": 0.60, "tta": 0.58}
    assert without["test"]["one_pass"] == without["test"]["procedure"] == {"accuracy": 1.0, "balanced_accuracy": 1.0}
    assert without["test"]["change"] == {"estimate": 0.0, "low": 0.0, "high": 0.0, "resampled": "lesions"}
    assert json.loads(json.dumps(without)) == without  # JSON-ready, for final_metrics.json.
    assert "did not raise balanced accuracy (0.580 against 0.600)" in final.describe_tta(without)
    table.loc[0, "balanced_accuracy_tta"] = 0.62
    worse = final.compare_tta(final.Final("03_big_tta", ["03_big"], True, 0.62), table, labels, right, wrong,
                              groups=lesions, n_resamples=30)
    change = worse["test"]["change"]
    assert change["estimate"] == pytest.approx(-0.1) and change["low"] <= -0.1 <= change["high"] < 0
    assert "TTA lowered balanced accuracy by 0.100 (95% interval of the change" in final.describe_tta(worse)
    unmeasured = final.compare_tta(final.Final("02_small", ["02_small"], False, 0.5), table, labels, right, right,
                                   n_resamples=5)
    assert unmeasured["validation"]["tta"] is None
    assert "no TTA score was measured on validation" in final.describe_tta(unmeasured)
    with pytest.raises(ValueError, match="02_small_tta uses TTA"):
        final.compare_tta(final.Final("02_small_tta", ["02_small"], True, 0.5), table, labels, right, right)


def test_paired_change_scores_both_predictions_on_the_same_resample():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 300)
    noisy = rng.dirichlet(np.ones(7), 300)  # About one in seven right: resamples vary a lot.
    same = metrics.paired_change(labels, noisy, noisy.copy(), groups=np.arange(300) // 3, n_resamples=50)
    assert same.to_numpy().tolist() == [[0.0] * 3] * 2  # Unpaired resamples would give an interval around 0.
    better = np.where(np.arange(300)[:, None] < 150, np.eye(7)[labels], noisy)
    change = metrics.paired_change(labels, noisy, better, n_resamples=50)
    assert 0 < change.loc["accuracy", "low"] <= change.loc["accuracy", "estimate"] <= change.loc["accuracy", "high"]


@pytest.mark.parametrize("one_pass, with_tta, expected", [
    (0.7004, 0.7008, "a balanced accuracy of 0.700 (accuracy 0.700); the final procedure, TTA (the mean of 4 "
                     "passes), scores 0.701 (0.700): TTA raised balanced accuracy by 0.001 ("),
    (0.7001, 0.7004, "a balanced accuracy of 0.7001 (accuracy 0.700); the final procedure, TTA (the mean of 4 "
                     "passes), scores 0.7004 (0.700): TTA raised balanced accuracy by 0.0003 ("),
    (0.7286, 0.7044, "a balanced accuracy of 0.729 (accuracy 0.700); the final procedure, TTA (the mean of 4 "
                     "passes), scores 0.704 (0.700): TTA lowered balanced accuracy by 0.025 ("),
    (0.71, 0.71, ": TTA left balanced accuracy unchanged ("),
])
def test_tta_description_subtracts_the_scores_it_prints(one_pass, with_tta, expected):
    # A change is the difference of the printed scores, which go to four decimals where three would show a tie.
    text = final.describe_tta({"tta": True, "validation": {"one_pass": 0.7081, "tta": 0.7084},
                               "test": {"one_pass": {"accuracy": 0.7, "balanced_accuracy": one_pass},
                                        "procedure": {"accuracy": 0.7, "balanced_accuracy": with_tta},
                                        "change": {"estimate": with_tta - one_pass, "low": -0.01, "high": 0.01,
                                                   "resampled": "lesions"}}})
    covers = "" if with_tta == one_pass else ", which includes no change"  # Said of a change, not of none.
    assert expected in text and f"-0.010 to +0.010{covers})" in text
    assert text.endswith("On validation, where the rule chose it, TTA scored 0.7084 against 0.7081 for one pass.")


def test_finals_predict_each_member_once_with_the_same_probabilities(tmp_path, monkeypatch):
    """Procedures that share a member (finals built by hand: the rule names one) predict it once, identically."""
    splits = toy_splits(count=140, side=32)
    for name in ("03_big", "03_small"):
        artefacts.save_model_atomic(models.cnn((32, 32, 3), filters=(4,), global_pool=True), tmp_path / f"{name}.keras")
    finals = [final.Final("03_big_tta", ["03_big"], True, 0.6),
              final.Final("03_ensemble", ["03_big", "03_small"], True, 0.7)]
    parts = {(32, 32): splits}
    separate = {(f.name, part): final.predict(f, lambda size: parts[size], folder=tmp_path, part=part)
                for f in finals for part in ("train", "val")}
    calls = []
    counted = final.predict_tta
    monkeypatch.setattr(final, "predict_tta", lambda *a, **k: calls.append(1) or counted(*a, **k))
    together = final.predict_finals(finals, lambda size: parts[size], folder=tmp_path,
                                    metadata={"train": None, "val": None}, parts=("train", "val"))
    assert len(calls) == 4  # two members on two splits, not three member passes per split
    assert together.keys() == separate.keys()
    for key, value in separate.items():
        np.testing.assert_array_equal(together[key], value)


def test_centre_prior_is_a_stronger_baseline_than_a_uniform_map():
    """A centred lesion: the centred Gaussian scores it better than a uniform map, a corner lesion worse."""
    prior = explanation_scores.centre_prior((30, 40))
    centred = np.zeros((30, 40), bool)
    centred[10:20, 13:27] = True
    corner = np.zeros((30, 40), bool)
    corner[:10, :13] = True
    uniform = np.ones((30, 40))
    assert explanation_scores.mask_scores(prior, centred)["inside"] > explanation_scores.mask_scores(
        uniform, centred)["inside"]
    assert explanation_scores.mask_scores(prior, centred)["hit"]
    assert explanation_scores.mask_scores(prior, corner)["inside"] < explanation_scores.mask_scores(
        uniform, corner)["inside"]
    assert not explanation_scores.mask_scores(prior, corner)["hit"]


def test_lime_and_grad_cam_scored_on_the_same_images():
    """A model that looks at the left half; lesions on the left for class 0, on the right for class 1."""
    inputs = keras.Input((32, 32, 3))
    left = keras.layers.Cropping2D(((0, 0), (0, 16)))(inputs)
    feature_map = keras.layers.Conv2D(1, 1, kernel_initializer="ones", use_bias=False)(left)
    score = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(1 / 300), use_bias=False)(
        keras.layers.GlobalAveragePooling2D()(feature_map))
    logits = keras.layers.Concatenate()([score] + [keras.layers.Lambda(lambda t: 0 * t)(score)] * 6)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    blocks = np.random.default_rng(0).uniform(100, 255, (2, 4, 4, 3))
    pixels = np.stack([np.kron(b, np.ones((8, 8, 1))) for b in blocks]).astype("float32")
    masks = [np.zeros((32, 32), bool) for _ in range(2)]
    masks[0][:, :16] = True
    masks[1][:, 16:] = True
    labels, predicted = np.array([0, 1]), np.array([0, 0])
    scores = explanation_scores.score_cams(model, pixels, masks, labels, predicted, per_class=1)
    assert {"inside_centre", "hit_centre"} <= set(scores.columns)
    lime = explanation_scores.score_lime(model, pixels, masks, scores, predicted, per_class=1, samples=100)
    assert len(lime) == 2
    by_row = lime.set_index("row")
    assert by_row.loc[0, "lime_inside"] == 1.0 and by_row.loc[1, "lime_inside"] == 0.0
    text = explanation_scores.describe_lime(lime)
    assert text.startswith("LIME on 2 images") and "disagree on" in text
    summary = explanation_scores.summarise_scores(scores)
    assert "pointing_centre" in summary.columns
    assert "centred Gaussian" in explanation_scores.describe_scores(summary)


def test_per_class_intervals_and_subgroup_intervals():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 400)
    probabilities = np.eye(7)[np.where(rng.uniform(size=400) < 0.7, labels, rng.integers(0, 7, 400))]
    lesions = np.arange(400) // 2
    table = metrics.per_class_intervals(labels, probabilities, groups=lesions, n_resamples=50)
    assert list(table.index) == list(data.CLASSES)
    assert (table["recall_low"] <= table["recall"]).all() and (table["recall"] <= table["recall_high"]).all()
    assert table["support"].sum() == 400
    sex = pd.DataFrame({"sex": np.where(np.arange(400) < 200, "male", "female")})
    groups = metrics.subgroups(sex, labels, probabilities, "sex", groups=lesions, n_resamples=50)
    assert (groups["balanced_accuracy_low"] < groups["balanced_accuracy"]).all()
    assert "cannot be told apart" in metrics.describe_subgroups({"sex": groups}, 0.7)
    point = metrics.screening(labels, probabilities, 0.5)
    assert {"sensitivity_mel", "sensitivity_bcc", "sensitivity_akiec"} <= set(point)


def test_border_effect_needs_a_border_and_an_inside():
    flat = np.full((10, 10), 100.0)
    assert explain.border_effect(flat, explain.EDGE_KERNELS["vertical edges"], width=2) > 1
    for width in (0, 5):
        with pytest.raises(ValueError, match="width must be at least 1"):
            explain.border_effect(flat, explain.EDGE_KERNELS["blur"], width=width)


def test_describe_subgroups_leaves_out_small_pooled_rows():
    """Six pooled images, all right, give an interval of 1.000-1.000: not a group that is better than the rest."""
    table = pd.DataFrame({"images": [400, 6], "balanced_accuracy": [0.7, 1.0], "balanced_accuracy_low": [0.6, 1.0],
                          "balanced_accuracy_high": [0.8, 1.0]},
                         index=pd.Index(["male", metrics.POOLED.format(minimum=20)], name="sex"))
    said = metrics.describe_subgroups({"sex": table}, 0.7)
    assert said.startswith("Of 1 group (1 pooled row of fewer than 20 images left out), none")
    assert "1.000" not in said
    # A pooled row of 20 images or more is a group like the others: its interval counts.
    table.loc[metrics.POOLED.format(minimum=20), "images"] = 24
    said = metrics.describe_subgroups({"sex": table}, 0.7)
    assert "wholly above the overall 0.700 (sex other (<20 each): 1.000" in said


def test_the_decision_tradeoff_refuses_what_it_cannot_mean():
    labels, probabilities = np.array([0, 1]), np.array([[0.6, 0.4], [0.3, 0.7]])
    with pytest.raises(ValueError, match="positive"):  # A class missing from the training split: NaN share.
        metrics.decision_tradeoff(labels, probabilities, [1.0, np.nan])
    with pytest.raises(ValueError, match="include 0"):
        metrics.decision_tradeoff(labels, probabilities, [0.5, 0.5], powers=(0.5, 1.0))
    table = metrics.decision_tradeoff(labels, probabilities, [0.9, 0.1], powers=(1.0, 0.0, -1.0))
    assert table.index.tolist() == [-1.0, 0.0, 1.0]  # Ascending, whatever the order asked.
    assert table.loc[0.0].tolist() == [1.0, 1.0] and table.loc[1.0, "balanced_accuracy"] == 0.5
    back = metrics.tradeoff_table({f"{power:g}": row.to_dict() for power, row in table.iloc[::-1].iterrows()})
    assert back.equals(table)
    assert "meets both goals" in metrics.describe_tradeoff(table, {"accuracy": 0.9, "balanced_accuracy": 0.9})
    without_own = table.drop(index=0.0)
    for refuses in (lambda: metrics.describe_tradeoff(without_own, metrics.GOALS),
                    lambda: evaluate.plot_decision_tradeoff(without_own)):
        with pytest.raises(ValueError, match="no row for power 0"):
            refuses()


def test_a_goal_table_compares_at_full_precision_and_refuses_clashing_columns():
    goals = {"accuracy": 0.85, "balanced_accuracy": 0.75}
    table = metrics.goal_table(goals, {"accuracy": 0.8499, "balanced_accuracy": 0.8}, label="model",
                               **{"95% low": {"accuracy": 0.8, "balanced_accuracy": 0.7}})
    assert table.columns.tolist() == ["goal", "model", "95% low", "met"]
    assert table["model"].tolist() == [0.85, 0.8] and table["met"].tolist() == [False, True]
    scores = {"accuracy": 0.9, "balanced_accuracy": 0.8}
    for clash in (dict(label="goal"), dict(label="met"), dict(label="x", x=scores)):
        with pytest.raises(ValueError, match="must differ"):
            metrics.goal_table(goals, scores, **clash)


def test_data_curve_pools_the_draws_of_a_share():
    table = pd.DataFrame({"recipe": "10 epochs", "share": [0.5, 0.5, 0.5, 0.5, 1.0, 1.0],
                          "train_images": [3500, 3500, 3540, 3540, 7000, 7000], "procedure": "plain",
                          "balanced_accuracy": [0.60, 0.62, 0.64, 0.66, 0.70, 0.72]})
    axis = evaluate.plot_data_curve(table, {"balanced_accuracy": 0.75}).axes[0]
    mean_line = axis.lines[1]  # After the dots of single runs: one point per share, draws pooled.
    assert mean_line.get_xdata().tolist() == [3520, 7000]
    assert mean_line.get_ydata().tolist() == pytest.approx([0.63, 0.71])
    assert [label.get_text() for label in axis.get_xticklabels()] == ["3,500-\n3,540", "7,000", "14,000\n(twice)"]


def test_shift_changes_are_paired_by_lesion_and_the_sentence_names_the_shifts_below_zero():
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(7), 20)
    lesions = np.arange(140) // 2  # Two images of each lesion.
    right = np.eye(7)[labels]
    half = right.copy()
    half[labels == 4] = np.eye(7)[5]  # Every melanoma called a nevus: balanced accuracy down by 1/7.
    noise = np.eye(7)[np.where(rng.random(140) < 0.05, (labels + 1) % 7, labels)]
    changes = metrics.shift_changes(labels, {"none": right, "mel lost": half, "noise": noise}, groups=lesions,
                                    n_resamples=200)
    assert list(changes.index) == ["mel lost", "noise"] and list(changes.columns) == ["change", "low", "high"]
    assert changes.loc["mel lost", "change"] == pytest.approx(-1 / 7)
    assert changes.loc["mel lost", "high"] < 0  # Paired: the same resample of lesions scores both.
    expected = metrics.paired_change(labels, right, noise, groups=lesions, n_resamples=200).loc["balanced_accuracy"]
    assert changes.loc["noise"].tolist() == pytest.approx(expected.tolist())
    recall = pd.Series([1.0, 0.0, float(np.mean(noise[labels == 4].argmax(1) == 4))], index=["none", *changes.index])
    text = metrics.describe_shift_changes(changes, recall, 20)
    assert f"under {1 + int(changes.loc['noise', 'high'] < 0)} of the 2 shifts" in text
    assert "mel lost -0.143" in text and "fell most under mel lost, to 0.000" in text
    assert metrics.describe_shift_changes(metrics.shift_changes(labels, {"none": right}), recall[:1], 20) == (
        "No shift to describe.")

"""The scouts' own functions: benchmarks/decision_offsets.py, classifier_retraining.py, distillation.py,
shifts_on_validation.py (reading a model of an earlier commit), ensemble_size.py, metadata_prior.py and
confirmation_weights.py, and the soft targets and image weights of skinlib.features that distillation.py and
confirmation_weights.py train with."""

import numpy as np
import pytest

from skinlib import features, models
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def offsets():
    return load_benchmark("decision_offsets")


@pytest.fixture(scope="module")
def retraining():
    return load_benchmark("classifier_retraining")


@pytest.fixture(scope="module")
def distillation():
    return load_benchmark("distillation")


@pytest.fixture(scope="module")
def metadata_prior():
    return load_benchmark("metadata_prior")


def test_metadata_likelihoods_are_counted_within_each_diagnosis_and_unknown_adds_nothing(metadata_prior):
    import pandas as pd

    edges = metadata_prior.fields(pd.DataFrame({"age": [0.0, 25.0, 30.0, 40.0, 45.0, 60.0, 74.0, 75.0, 85.0],
                                                "sex": ["male"] * 9, "localization": ["back"] * 9}))
    assert edges["age_band"].tolist() == ["<30", "<30", "30-44", "30-44", "45-59", "60-74", "60-74", "75+", "75+"]
    table = pd.DataFrame({"age": [20.0, 70.0, 70.0, 80.0, np.nan], "sex": ["male", "female", "female", "male", "male"],
                          "localization": ["back", "face", "face", "face", "unknown"]})
    known = metadata_prior.fields(table)
    assert known["age_band"].tolist() == ["<30", "60-74", "60-74", "75+", "unknown"]
    labels = np.array([0, 1, 1, 1, 0])
    tables = metadata_prior.likelihoods(known, labels, n_classes=2)
    assert "unknown" not in tables["localization"].index and "unknown" not in tables["age_band"].index
    # Diagnosis 1: face 3 times of 3, back never; add-one smoothing over the two sites: 4/5 and 1/5.
    assert np.exp(tables["localization"].loc["face", 1]) == pytest.approx(4 / 5)
    assert np.exp(tables["localization"].loc["back", 1]) == pytest.approx(1 / 5)
    # Diagnosis 0: back once, its "unknown" row not counted at all: (1 + 1) / 3 and (0 + 1) / 3.
    assert np.exp(tables["localization"][0]).tolist() == pytest.approx([2 / 3, 1 / 3])
    assert np.allclose(np.exp(tables["sex"]).sum(axis=0), 1.0)  # Each diagnosis's values add up to one.
    log_likelihood = metadata_prior.correction(known, tables)
    assert log_likelihood[4].tolist() == [tables["sex"].loc["male", 0], tables["sex"].loc["male", 1]]  # Sex only.
    nothing = metadata_prior.correction(pd.DataFrame({"age_band": ["unknown"], "sex": ["unknown"],
                                                      "localization": ["mars"]}), tables)
    assert (nothing == 0).all()  # Unknown and unseen values leave the image's probabilities as they are.


def test_metadata_combination_is_bayes_rule_and_alpha_zero_is_the_image_alone(metadata_prior):
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(7), size=5)
    log_likelihood = np.log(rng.dirichlet(np.ones(7), size=5))
    assert np.allclose(metadata_prior.combine(probabilities, log_likelihood, 0.0), probabilities)
    product = probabilities * np.exp(log_likelihood)
    assert np.allclose(metadata_prior.combine(probabilities, log_likelihood, 1.0),
                       product / product.sum(axis=1, keepdims=True))
    half = probabilities * np.exp(log_likelihood) ** 0.5
    assert np.allclose(metadata_prior.combine(probabilities, log_likelihood, 0.5), half / half.sum(axis=1, keepdims=True))


def test_offsets_recover_a_class_the_argmax_never_picks(offsets):
    # Class 2's probability is always second to class 0's: the argmax never picks it (balanced accuracy 2/3);
    # offsets that favour class 2 over class 0 by more than log(0.7 / 0.6) fix that, and the fit finds such.
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    probabilities = np.full((90, 3), 0.05)
    probabilities[np.arange(90), labels] = 0.6
    probabilities[labels == 2, 0] = 0.7
    probabilities += rng.uniform(0, 0.01, probabilities.shape)
    assert offsets.balanced_accuracy(labels, probabilities, np.zeros(3)) == pytest.approx(2 / 3)
    fitted = offsets.fit_offsets(labels, probabilities)
    assert offsets.balanced_accuracy(labels, probabilities, fitted) == 1.0
    assert fitted[2] - fitted[0] > np.log(0.7 / 0.6)


def test_offsets_act_on_log_probabilities(offsets):
    # An offset of 0.6 moves log(0.6 / 0.4) = 0.41 but not log(0.7 / 0.3) = 0.85; on the probabilities themselves
    # it would move both rows to class 1.
    labels, probabilities = np.array([0, 1]), np.array([[0.7, 0.3], [0.6, 0.4]])
    assert offsets.balanced_accuracy(labels, probabilities, np.array([0.0, 0.6])) == 1.0
    assert offsets.balanced_accuracy(labels, probabilities, np.array([0.0, 1.0])) == 0.5


def test_cross_fit_never_scores_a_lesion_it_tuned_on(offsets):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(7), 20)
    lesions = np.array([f"L{i // 2}" for i in range(len(labels))])  # Two images per lesion, one class per lesion.
    probabilities = rng.dirichlet(np.ones(7), size=len(labels))
    table = offsets.cross_fit(labels, probabilities, lesions, repeats=2)
    assert len(table) == 4 and (table["shared_lesions"] == 0).all()
    assert (table["tuned_on"] + table["scored_on"] == len(labels)).all()
    assert all(sum(counts) == tuned for counts, tuned in zip(table["tuned_half_counts"], table["tuned_on"]))
    # Tuning can only help the half it saw: the grid holds 0, so the fit never scores below no offsets there.
    assert (table["tuned_half_balanced_accuracy"] >= table["tuned_half_balanced_accuracy_before"]).all()
    # Both ways round: each cut's tuned halves are the other fold's scored halves.
    for _, cut in table.groupby("repeat"):
        assert cut["tuned_half_balanced_accuracy_before"].tolist() == cut["balanced_accuracy_before"].tolist()[::-1]


def test_offsets_stay_zero_where_the_argmax_is_already_right(offsets):
    labels = np.arange(7).repeat(3)
    probabilities = np.eye(7)[labels] * 0.9 + 0.1 / 7
    assert offsets.fit_offsets(labels, probabilities).tolist() == [0.0] * 7


def test_member_parts_give_back_each_members_own_prediction(retraining, distillation, tmp_path):
    # Two members with different random weights, saved and loaded as the shipped ensemble is: the upper blocks and
    # head taken from member 1 must give member 1's probabilities, not member 0's.
    size = (64, 64, 3)
    rng = np.random.default_rng(0)
    networks = []
    for name in ("seed0", "seed1"):
        head = models.head(1280)  # Its softmax layer starts at zero: random weights make the members differ.
        head.set_weights([rng.normal(0, 0.5, weight.shape).astype("float32") for weight in head.get_weights()])
        base = models.backbone("efficientnet_lite0", weights=None, input_shape=size, colour_constancy=True)
        networks.append(models.classifier(base, head, name=name))
    path = tmp_path / "ensemble.keras"
    models.ensemble(networks, name="ensemble").save(path)
    loaded = models.members(models.load_model(path))
    pixels = np.random.default_rng(0).uniform(0, 255, (2, *size)).astype("float32")
    for member in loaded:
        upper, head = retraining.member_parts(member, features.CUTS["efficientnet_lite0"])
        lower, _ = features.split_backbone(models.base_of(member), features.CUTS["efficientnet_lite0"])
        pooled = np.asarray(upper(lower(pixels))).mean(axis=(1, 2))
        np.testing.assert_allclose(np.asarray(head(pooled)), np.asarray(member(pixels)), atol=1e-5)
        top = distillation.member_top(member, features.CUTS["efficientnet_lite0"])  # The teacher's part, maps in.
        np.testing.assert_allclose(np.asarray(top(lower(pixels))), np.asarray(member(pixels)), atol=1e-5)
    assert not np.allclose(np.asarray(loaded[0](pixels)), np.asarray(loaded[1](pixels)), atol=1e-3)


def test_head_scores_average_the_four_flips(retraining):
    # A head that answers class 0 on the first view and class 1 on the other three: one pass says 0, TTA says 1.
    import keras

    inputs = keras.Input(shape=(2,))
    head = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(
        7, kernel_initializer=keras.initializers.Constant(np.r_[[[5.0] + [0.0] * 6], [[0.0, 5.0] + [0.0] * 5]]),
        bias_initializer="zeros")(inputs)))
    first, other = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    scores = retraining.head_scores(head, [first, other, other, other], np.array([1]))
    assert scores["plain"]["accuracy"] == 0.0 and scores["TTA"]["accuracy"] == 1.0


def stored_views(views=3, count=8):
    """Maps whose one value encodes (view, image), so that a batch says which view of which image it holds."""
    return (np.arange(views)[:, None] * 100 + np.arange(count)[None]).astype("float16")[..., None, None, None]


def test_each_stored_view_gets_its_own_target_and_its_labels_weight():
    stored, labels = stored_views(), np.arange(8) % 7
    targets = np.random.default_rng(0).dirichlet(np.ones(7), size=(3, 8)).astype("float32")
    weights = {k: 1.0 + k for k in range(7)}
    data, steps = features.view_dataset(stored, labels, epochs=2, batch_size=4, targets=targets, class_weight=weights)
    seen = set()
    for x, target, weight in data:
        code = x.numpy().reshape(-1).astype(int)
        view, image = code // 100, code % 100
        np.testing.assert_allclose(target.numpy(), targets[view, image], rtol=1e-6)
        assert weight.numpy().tolist() == [weights[label] for label in labels[image]]  # The label's, not the target's.
        seen.update(zip(view, image))
    assert steps == 2 and len({image for _, image in seen}) == 8  # Every image in each epoch.
    # The same draws as without targets: distillation changes the targets, not the examples.
    plain, _ = features.view_dataset(stored, labels, epochs=2, batch_size=4)
    with_targets, _ = features.view_dataset(stored, labels, epochs=2, batch_size=4, targets=targets)
    for (x, _), (x_taught, _) in zip(plain, with_targets):
        np.testing.assert_array_equal(x.numpy(), x_taught.numpy())


def test_targets_must_match_the_views_and_not_come_with_mixup():
    stored, labels = stored_views(), np.arange(8) % 7
    with pytest.raises(ValueError, match="do not match the stored views"):
        features.view_dataset(stored, labels, epochs=1, batch_size=4, targets=np.ones((8, 7)) / 7)
    with pytest.raises(ValueError, match="targets with mixup"):
        features.view_dataset(stored, labels, epochs=1, batch_size=4, targets=np.ones((3, 8, 7)) / 7, mixup=0.2)
    with pytest.raises(ValueError, match="targets with loss='logit_adjusted'"):
        features.train_top(None, np.zeros((3, 8, 2), "float32"), labels, (np.zeros((8, 2)), labels), name="x",
                           loss="logit_adjusted", class_power=0, label_smoothing=0, targets=np.ones((3, 8, 7)) / 7)


def test_a_head_trained_on_targets_learns_the_targets_not_the_labels():
    # Two clusters labelled 0 and 1; the teacher says the opposite. Trained on the targets, the head follows the
    # teacher (on the labels it would answer the labels). Validation scores against the teacher's answers, so
    # that the epoch kept is the one that agrees with them most.
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 64)
    points = np.where(labels[:, None] == 0, [3.0, 0.0], [0.0, 3.0]) + rng.normal(0, 0.3, (128, 2))
    stored = np.stack([points, points]).astype("float32")  # Two "views" of pooled features.
    teacher = np.eye(7, dtype="float32")[1 - labels] * 0.9 + 0.1 / 7
    run = features.train_top(None, stored, labels, (points, 1 - labels), name="student", epochs=20, batch_size=32,
                             learning_rate=3e-2, label_smoothing=0.0, patience=20, class_power=0.0, verbose=False,
                             targets=np.stack([teacher, teacher]))
    taught = run.model.predict(points, verbose=0).argmax(axis=1)
    assert (taught == 1 - labels).mean() > 0.95


def test_teacher_targets_average_the_members_view_by_view(distillation):
    import keras

    def top(sign):  # A "member" whose probabilities follow the sign of its one input.
        inputs = keras.Input((1, 1, 1))
        logits = keras.layers.Lambda(lambda x: keras.ops.concatenate([sign * x, -sign * x], axis=-1))(inputs)
        return keras.Model(inputs, keras.layers.Softmax()(keras.layers.Flatten()(logits)))

    stored = np.array([1.0, -2.0]).reshape(2, 1, 1, 1, 1).astype("float16")  # Two views of one image.
    one, both = distillation.teacher_targets([top(1.0)], stored), distillation.teacher_targets([top(1.0), top(-1.0)], stored)
    assert one.shape == (2, 1, 2) and one[0, 0, 0] > 0.8 and one[1, 0, 1] > 0.9  # Each view its own probabilities.
    np.testing.assert_allclose(both, 0.5, atol=1e-6)  # Two opposite members average to even odds.


def test_train_top_weighs_the_targets_by_the_labels_class_weights(monkeypatch):
    # The first distillation arm's path: targets with class weights. The weights must reach the dataset (one weight
    # per example, by its label), and Keras's own class_weight must not be given as well.
    from skinlib import train

    seen = {}
    original = features.view_dataset

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(features, "view_dataset", spy)
    labels = np.r_[np.arange(7), np.zeros(25, int)]  # Every class once, class 0 the most often.
    stored = np.random.default_rng(0).normal(size=(2, 32, 2)).astype("float32")
    targets = np.full((2, 32, 7), 1 / 7, "float32")
    run = features.train_top(None, stored, labels, (stored[0], labels), name="student", epochs=1, batch_size=8,
                             class_power=1.0, targets=targets, verbose=False)
    assert seen["targets"] is targets and seen["class_weight"] == train.class_weights(labels, power=1.0)
    assert len(run.history) == 1


@pytest.fixture(scope="module")
def shifts_script():
    return load_benchmark("shifts_on_validation")


def test_a_model_of_an_earlier_commit_is_read_with_git_show(shifts_script, tmp_path):
    # REV:PATH (no such file here) is the committed file of that commit, copied out by git show, not the checkout's.
    if not (shifts_script.ROOT / ".git").exists():
        pytest.skip("not a git checkout (an unpacked archive): no earlier commit to read")
    import subprocess

    spec = "HEAD:Saved_Models/02_mlp.keras"
    blob = subprocess.run(["git", "show", spec], cwd=shifts_script.ROOT, capture_output=True, check=True).stdout
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    then = shifts_script.open_model(spec, scratch)
    assert [path.read_bytes() for path in scratch.iterdir()] == [blob]
    (tmp_path / "committed.keras").write_bytes(blob)
    committed = models.load_model(tmp_path / "committed.keras")
    assert all(np.array_equal(a, b) for a, b in zip(then.get_weights(), committed.get_weights()))
    assert shifts_script.shown(spec) == spec
    with pytest.raises(SystemExit, match="no-such-rev:Saved_Models/02_mlp.keras"):
        shifts_script.open_model("no-such-rev:Saved_Models/02_mlp.keras", scratch)


def test_ensemble_size_averages_members_as_their_ensemble_does():
    ensemble_size = load_benchmark("ensemble_size")
    networks = [models.classifier(models.backbone("mobilenet_025", weights=None, input_shape=(32, 32, 3)),
                                  models.head(256), name=name) for name in ("a", "b", "c")]
    rng = np.random.default_rng(0)
    for network in networks:  # A new head predicts 1/7 for every class: give each member its own decisions.
        top = network.get_layer("head")
        top.set_weights([rng.normal(0, 0.5, weight.shape) for weight in top.get_weights()])
    x = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    probabilities = [{"none": network.predict(x, verbose=0), "dim": network.predict(x * 0.7, verbose=0)}
                     for network in networks]
    assert not np.allclose(probabilities[0]["none"], probabilities[2]["none"], atol=1e-3)  # two different members
    mean = ensemble_size.mean_probabilities(probabilities, [0, 2])
    both = models.ensemble([networks[0], networks[2]])
    assert np.allclose(mean["none"], both.predict(x, verbose=0), atol=1e-6)
    assert np.allclose(mean["dim"], both.predict(x * 0.7, verbose=0), atol=1e-6)


def test_ensemble_size_summary_reports_the_shifted_mean(monkeypatch):
    ensemble_size = load_benchmark("ensemble_size")
    # Two classes, four images: right on the unshifted images, half right under one shift, all wrong under another.
    labels = np.array([0, 0, 1, 1])
    right = np.eye(2)[labels]
    half = np.eye(2)[[0, 0, 0, 0]]
    wrong = np.eye(2)[1 - labels]
    monkeypatch.setattr(ensemble_size.metrics, "classification_metrics",
                        lambda y, p: {"accuracy": float((p.argmax(1) == y).mean()),
                                      "balanced_accuracy": float(np.mean([(p.argmax(1)[y == c] == c).mean()
                                                                          for c in (0, 1)])),
                                      "malignant_auc": 0.5, "recall_mel": 0.0})
    row = ensemble_size.summary(labels, {"none": right, "dim": half, "blur": wrong})
    assert row["balanced_accuracy"] == 1.0
    assert row["shifted_balanced_accuracy"] == 0.25  # (0.5 + 0.0) / 2: "none" is not a shift


def test_compare_finals_reads_what_chapter_04_recorded_at_two_commits(tmp_path):
    # The batch-64 ensemble (3c13fc0) against the batch-32 one (26af57b): the numbers benchmarks/HISTORY.md quotes.
    compare = load_benchmark("compare_finals")
    if not (compare.ROOT / ".git").exists():
        pytest.skip("not a git checkout (an unpacked archive): no earlier commit to read")
    out = tmp_path / "record.json"
    compare.main(["--before", "3c13fc0", "--after", "26af57b", "--out", str(out)])
    import json

    record = json.loads(out.read_text())
    before, after = record["before"], record["after"]
    assert round(before["test"]["balanced_accuracy"]["estimate"], 3) == 0.707
    assert round(after["test"]["balanced_accuracy"]["estimate"], 3) == 0.708
    assert before["shifts_balanced_accuracy_change"]["darker (x0.7)"] == -0.004
    assert after["shifts_balanced_accuracy_change"]["closer (zoom 1.3x)"] == -0.047
    assert after["validated_model"] == after["model"]  # Before validated_model was recorded: the model itself.
    assert record["command"].startswith("python benchmarks/compare_finals.py --before 3c13fc0")
    with pytest.raises(SystemExit, match="no-such-rev"):
        compare.summary("no-such-rev")


def test_confirmation_weights_move_the_nevi_weight_to_those_not_followed_up_and_keep_its_total():
    scout = load_benchmark("confirmation_weights")
    nv, mel = scout.data.CLASSES.index("nv"), scout.data.CLASSES.index("mel")
    labels = np.array([nv] * 5 + [mel] * 2)
    confirmation = np.array(["follow_up", "follow_up", "histo", "consensus", "confocal", "histo", "histo"])
    weights = scout.confirmation_weights(labels, confirmation, 0.25)
    nevi = weights[labels == nv]
    assert nevi.sum() == pytest.approx(5) and (weights[labels == mel] == 1).all()
    assert nevi[0] == nevi[1] == pytest.approx(0.25 * nevi[2]) and nevi[2] == nevi[3] == nevi[4]
    np.testing.assert_allclose(scout.confirmation_weights(labels, confirmation, 1.0), 1)  # Factor 1: unweighted.


def test_confirmation_scout_pairs_each_head_with_the_control_of_its_seed_and_applies_its_rule():
    import pandas as pd

    scout = load_benchmark("confirmation_weights")
    index = pd.MultiIndex.from_tuples(
        [(arm, member, seed, "all", "plain") for arm in ("control", "follow-up x0.5") for member in range(3)
         for seed in range(3)], names=["arm", "member", "seed", "images", "procedure"])
    control = np.linspace(0.70, 0.72, 9)
    gains = np.array([0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, -0.01, -0.01])
    frame = pd.DataFrame({"balanced_accuracy": np.r_[control, control + gains],
                          "malignant_auc": np.r_[np.full(9, 0.9), np.full(9, 0.896)]}, index=index)
    diff = scout.paired(frame, "follow-up x0.5")
    np.testing.assert_allclose(diff["balanced_accuracy"], gains, atol=1e-12)
    assert scout.rule_met(diff)  # Mean 0.0133, 7 of 9 higher, AUC 0.004 lower.
    assert not scout.rule_met(diff.assign(malignant_auc=-0.006))
    assert not scout.rule_met(diff.assign(balanced_accuracy=gains - 0.004))  # Mean 0.0093.


def test_backbone_scout_mixes_the_two_ensembles_and_needs_every_part_of_its_rule():
    import pandas as pd

    scout = load_benchmark("backbone_ensemble")
    first, other = np.array([[0.8, 0.2], [0.4, 0.6]]), np.array([[0.2, 0.8], [0.0, 1.0]])
    np.testing.assert_allclose(scout.mix(first, other, 0.5), [[0.5, 0.5], [0.2, 0.8]])
    np.testing.assert_allclose(scout.mix(first, other, 0.0), first)
    gain = pd.DataFrame({"estimate": [0.012], "low": [0.002]}, index=["balanced_accuracy"])
    assert scout.rule_met(gain, -0.004, 0.0)
    assert not scout.rule_met(gain.assign(low=-0.001), 0.0, 0.01)  # The interval reaches 0.
    assert not scout.rule_met(gain, -0.006, 0.01)  # The malignant AUC falls too far.
    assert not scout.rule_met(gain, 0.0, -0.001)  # Less robust under the shifts.


def test_constancy_invariance_writes_each_fronts_change_under_each_shift(real_data_dir, tmp_path):
    import json

    from skinlib import acquisition

    invariance = load_benchmark("constancy_invariance")
    out = tmp_path / "invariance.json"
    invariance.main(["--images", "12", "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["images"] == 12 and list(record["changes"]) == list(invariance.FRONTS)
    shifts = [name for name in acquisition.SHIFTS if name != "none"]
    assert all(list(changes) == shifts for changes in record["changes"].values())
    gray, both = record["changes"]["Shades of Gray"], record["changes"]["Shades of Gray, then intensity"]
    assert both["darker (x0.7)"] < 0.1 * gray["darker (x0.7)"]  # The intensity layer undoes exposure.
    assert "--images 12" in record["command"]

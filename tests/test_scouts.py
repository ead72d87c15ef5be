"""The scouts' own functions: benchmarks/decision_offsets.py and benchmarks/classifier_retraining.py."""

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


def test_member_parts_give_back_each_members_own_prediction(retraining, tmp_path):
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
        base = next(layer for layer in member.layers if layer.name not in ("head",) and hasattr(layer, "layers"))
        lower, _ = features.split_backbone(base, features.CUTS["efficientnet_lite0"])
        pooled = np.asarray(upper(lower(pixels))).mean(axis=(1, 2))
        np.testing.assert_allclose(np.asarray(head(pooled)), np.asarray(member(pixels)), atol=1e-5)
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

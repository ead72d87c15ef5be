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
    # Class 2's probability is always second: the argmax never picks it (balanced accuracy 2/3); an offset for it
    # fixes that, and the fit finds one that scores every class right on these images.
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
        networks.append(models.classifier(models.backbone("efficientnet_lite0", weights=None, input_shape=size), head,
                                          name=name))
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

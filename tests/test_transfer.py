"""Transfer-learning building blocks: backbones, heads, fine-tuning, metadata fusion and TTA."""

import keras
import numpy as np
import pandas as pd
import pytest

from skinlib import acquisition, artefacts, diagrams, infer, models, pipeline, split, train
from tests.test_models_train import toy_splits


def test_metadata_features_encode_missing_values_as_their_own_category():
    rows = pd.DataFrame({"age": [90.0, np.nan, 45.0], "sex": ["female", None, "unknown"],
                         "localization": ["back", "unknown", None]})
    matrix = models.metadata_features(rows)
    assert matrix.dtype == np.float32 and matrix.shape == (3, 20)
    assert matrix[:, 0].tolist() == [1.0, 0.0, 0.5]  # age / 90, a missing age becomes 0 ...
    assert matrix[:, 1].tolist() == [0.0, 1.0, 0.0]  # ... with its own flag.
    assert (matrix[:, 2:5].sum(axis=1) == 1).all() and matrix[1, 4] == 1 and matrix[2, 4] == 1  # sex "unknown"
    assert (matrix[:, 5:].sum(axis=1) == 1).all()  # exactly one site each, missing -> "unknown"


def test_backbone_preprocessing_is_inside_the_model():
    base = models.backbone("mobilenet_025", input_shape=(64, 96, 3))
    assert base.get_layer("preprocess").__class__.__name__ == "Rescaling"
    assert base.output_shape == (None, 2, 3, 256)  # Stride 32.
    with pytest.raises(ValueError, match="backbone must be one of"):
        models.backbone("resnet_1000")


def test_any_backbone_can_start_with_colour_constancy():
    plain = models.backbone("mobilenet_025", input_shape=(32, 48, 3), weights=None)
    constant = models.backbone("mobilenet_025", input_shape=(32, 48, 3), weights=None, colour_constancy=True)
    constant.set_weights(plain.get_weights())  # Shades of Gray has no weights: the same network behind it.
    assert [layer.name for layer in constant.layers[1:3]] == ["colour_constancy", "preprocess"]
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 48, 3)).astype("float32")
    images[1] *= np.array([1.0, 0.8, 0.6], "float32")  # A warm colour cast.
    balanced = keras.ops.convert_to_numpy(acquisition.ShadesOfGray()(images))
    np.testing.assert_allclose(constant.predict(images, verbose=0), plain.predict(balanced, verbose=0), atol=1e-4)


def test_intensity_constancy_undoes_exposure_and_contrast_and_travels_with_the_model(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.uniform(60, 220, (3, 24, 32, 3)).astype("float32")
    images[2] = 150 + (images[2] - 150) * 0.15  # Nearly flat: its contrast is stretched by max_gain at most.
    layer = acquisition.IntensityStandardization()
    standard = keras.ops.convert_to_numpy(layer(images))
    np.testing.assert_allclose(standard, acquisition.standardize_intensity(images), atol=1e-3)
    np.testing.assert_allclose(standard[:2].mean(axis=(1, 2, 3)), acquisition.INTENSITY_MEAN, atol=0.5)
    np.testing.assert_allclose(standard[:2].std(axis=(1, 2, 3)), acquisition.INTENSITY_STD, atol=0.5)
    assert standard[2].std() == pytest.approx(images[2].std() * acquisition.INTENSITY_MAX_GAIN, rel=1e-3)
    shifted = {"darker": acquisition.apply(images, brightness=0.7), "flatter": acquisition.apply(images, contrast=0.7),
               "plain": acquisition.apply(images)}  # The same rounding to uint8 for all three.
    for name in ("darker", "flatter"):  # Chapter 04's shifts, undone but for rounding.
        difference = np.abs(acquisition.standardize_intensity(shifted[name][:2])
                            - acquisition.standardize_intensity(shifted["plain"][:2]))
        assert difference.mean() < 1.0, name
    base = models.backbone("efficientnet_lite0", input_shape=(24, 32, 3), weights=None,
                           colour_constancy="shades_of_gray+intensity")
    assert [layer.name for layer in base.layers[1:4]] == ["colour_constancy", "intensity_constancy", "preprocess"]
    assert "brightness and\ncontrast set\n(second layer)" in [
        label for label, _ in diagrams.transfer_steps((24, 32), "efficientnet_lite0", (3, 4, 40), 1, 2,
                                                      colour_constancy="shades_of_gray+intensity")]
    base.save(tmp_path / "front.keras")
    loaded = models.load_model(tmp_path / "front.keras")  # Registers the layer, as every loader does.
    np.testing.assert_allclose(loaded.predict(images, verbose=0), base.predict(images, verbose=0), atol=1e-5)
    with pytest.raises(ValueError, match="colour_constancy must be one of"):
        models.backbone("mobilenet_025", input_shape=(32, 48, 3), weights=None, colour_constancy="retinex")


def test_fine_tuning_unfreezes_the_top_only_and_keeps_batchnorm_in_inference_mode():
    base = models.backbone("mobilenet_025", input_shape=(32, 32, 3))
    model = models.fine_tune_model(base, models.head(256))
    names = [layer.name for layer in base.layers]
    start = names.index(models.BACKBONES["mobilenet_025"].fine_tune_from)
    assert not any(layer.trainable for layer in base.layers[:start])
    assert any(layer.trainable for layer in base.layers[start:])
    assert not any(layer.trainable for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization))
    watched = {name: [w.numpy() for w in base.get_layer(name).weights]
               for name in ("conv_pw_13_bn", "conv_pw_1", "conv_pw_13")}
    model.compile("adam", "sparse_categorical_crossentropy")
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    model.train_on_batch(images, np.arange(8) % 7)
    unchanged = {name: all(np.array_equal(a, b.numpy()) for a, b in zip(before, base.get_layer(name).weights))
                 for name, before in watched.items()}
    # BatchNorm statistics and the frozen bottom stay as they were; the unfrozen top learns.
    assert unchanged == {"conv_pw_13_bn": True, "conv_pw_1": True, "conv_pw_13": False}


def test_pipeline_feeds_metadata_as_a_second_named_input():
    images = np.zeros((5, 8, 8, 3), np.uint8)
    meta = np.ones((5, 20), np.float32)
    inputs, labels = next(iter(pipeline.training_dataset(images, np.arange(5), batch_size=5, metadata=meta)))
    assert set(inputs) == {"pixels", "metadata"} and tuple(inputs["metadata"].shape) == (5, 20)
    features, _ = next(iter(pipeline.training_dataset(np.zeros((5, 16)), np.arange(5), batch_size=5, metadata=meta)))
    assert set(features) == {"features", "metadata"}
    with pytest.raises(ValueError, match="images and metadata differ in length"):
        pipeline.evaluation_dataset(images, metadata=meta[:3])


def test_tta_views_and_average():
    images = np.arange(2 * 3 * 4 * 3).reshape(2, 3, 4, 3)
    assert np.array_equal(infer.view(images, "flip_left_right"), images[:, :, ::-1])
    assert np.array_equal(infer.view(infer.view(images, "rotate_180"), "rotate_180"), images)
    with pytest.raises(ValueError, match="view must be one of"):
        infer.view(images, "zoom")
    # Global average pooling ignores where things are, so flips change nothing: TTA must equal one pass.
    inputs = keras.Input((6, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(pooled))
    pixels = np.random.default_rng(1).uniform(0, 255, (4, 6, 8, 3)).astype("float32")
    assert np.allclose(infer.predict_tta(model, pixels), infer.predict_proba(model, pixels), atol=1e-4)
    # A model that looks at one corner sees four different images.
    corner = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs)))
    assert not np.allclose(infer.predict_tta(corner, pixels), infer.predict_proba(corner, pixels))


def test_metadata_fusion_model_saves_and_reloads(tmp_path):
    splits = toy_splits(count=70, side=32)
    base = models.backbone("mobilenet_025", input_shape=(32, 32, 3))
    features = infer.feature_splits(base, splits)
    assert features["train"].images.shape == (49, 256)
    meta = {name: np.random.default_rng(0).uniform(0, 1, (len(part.labels), 20)).astype("float32")
            for name, part in splits.items()}
    head = train.experiment("fused_head", lambda: models.head(256, n_metadata=20), features, folder=tmp_path,
                            notebook="test", epochs=1, metadata=meta, save_model=False, verbose=False)
    model = models.classifier(base, head.model)
    probabilities = infer.predict_proba(model, splits["val"].images, metadata=meta["val"])
    assert np.allclose(probabilities, head.probabilities, atol=1e-4)  # Same numbers from pixels as from features.
    artefacts.save_model_atomic(model, tmp_path / "fused.keras")
    loaded = keras.saving.load_model(tmp_path / "fused.keras", safe_mode=True)
    assert np.allclose(infer.predict_proba(loaded, splits["val"].images, metadata=meta["val"]), probabilities,
                       atol=1e-5)


def test_one_cycle_schedule_warms_up_then_decays():
    cycle = train.learning_rate_schedule("one_cycle", 0.01, 1000)
    rates = [float(cycle(step)) for step in (0, 150, 300, 650, 1000)]
    assert rates[0] == pytest.approx(0.0004) and rates[2] == pytest.approx(0.01)
    assert rates[0] < rates[1] < rates[2] > rates[3] > rates[4]
    assert train.learning_rate_schedule("plateau", 0.01, 1000) == 0.01
    with pytest.raises(ValueError, match="one_cycle"):
        train.learning_rate_schedule("triangle", 0.01, 1000)


def test_experiment_scores_the_restored_best_epoch_without_a_second_pass(tmp_path):
    splits = toy_splits(count=140, side=32)
    run = train.experiment("cnn", lambda: models.cnn((32, 32, 3), filters=(8,)), splits, folder=tmp_path,
                           notebook="test", epochs=4, patience=1, learning_rate=0.05, verbose=False)
    # The probabilities kept from training are those of the model as returned (best epoch's weights restored).
    assert np.array_equal(run.probabilities, infer.predict_proba(run.model, splits["val"].images))
    history = run.run.history
    assert run.metrics["balanced_accuracy"] == pytest.approx(history["val_balanced_accuracy"].max(), abs=1e-5)


def test_tta_of_heads_on_one_base_equals_tta_of_each_model():
    splits = toy_splits(count=70, side=32)
    base = models.backbone("mobilenet_025", input_shape=(32, 32, 3))
    meta = np.random.default_rng(0).uniform(0, 1, (len(splits["val"].labels), 20)).astype("float32")
    plain_head, fused_head = models.head(256), models.head(256, n_metadata=20)
    model = models.classifier(base, plain_head)
    fused = models.classifier(base, fused_head)
    pixels = splits["val"].images
    shared = infer.predict_tta_heads(model, {"plain": (plain_head, None), "fused": (fused_head, meta)}, pixels,
                                        identity_features=infer.extract_features(model, pixels))
    assert np.allclose(shared["plain"], infer.predict_tta(model, pixels), atol=1e-5)
    assert np.allclose(shared["fused"], infer.predict_tta(fused, pixels, metadata=meta), atol=1e-5)


def test_the_constancy_front_largely_undoes_exposure_and_contrast_that_shades_of_gray_alone_keeps():
    # Shades of Gray comes first: it commutes with exposure but not with contrast about the mean, so through the
    # whole front "lower contrast" is largely but not wholly undone (a small colour shift stays).
    rng = np.random.default_rng(2)
    skin = np.array([200.0, 150.0, 130.0], "float32")
    images = np.clip(skin * rng.uniform(0.6, 1.1, (4, 24, 32, 1)) + rng.normal(0, 8, (4, 24, 32, 3)), 0, 255)
    images = images.astype("uint8")
    fronts = {}
    for option in (True, "shades_of_gray+intensity"):
        base = models.backbone("efficientnet_lite0", input_shape=(24, 32, 3), weights=None, colour_constancy=option)
        last = "intensity_constancy" if option is not True else "colour_constancy"
        fronts[option] = keras.Model(base.input, base.get_layer(last).output)
    assert [layer.name for layer in fronts[True].layers[1:]] == ["colour_constancy"]  # As before the front existed.
    change = {(option, shift): float(np.abs(np.asarray(front(acquisition.shift(images, shift)))
                                            - np.asarray(front(images))).mean())
              for option, front in fronts.items() for shift in ("darker (x0.7)", "lower contrast (x0.7)")}
    assert change[("shades_of_gray+intensity", "darker (x0.7)")] < 1.0 < 0.1 * change[(True, "darker (x0.7)")]
    assert change[("shades_of_gray+intensity", "lower contrast (x0.7)")] < 0.5 * change[(True, "lower contrast (x0.7)")]


def test_intensity_targets_are_those_of_the_training_images(real_data_dir):
    # INTENSITY_MEAN and INTENSITY_STD were computed on all 7,009 training images; a sample of 1,000 lands near them.
    sample = split.load_split_images((150, 200), splits=("train",), per_split=1000, seed=0, progress=False)["train"]
    mean, std = acquisition.intensity_targets(sample.images)
    assert abs(mean - acquisition.INTENSITY_MEAN) < 3 and abs(std - acquisition.INTENSITY_STD) < 2

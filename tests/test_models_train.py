"""skinlib.models, train, evaluate and explain: builders, the fit loop, metrics and saved artefacts."""

import json

import numpy as np
import pandas as pd
import pytest

from skinlib import artefacts, evaluate, explain, infer, metrics, models, pipeline, split, train


def colour_problem(count=420, side=32, seed=0):
    """A learnable toy task: the class is written in the red channel, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 7
    images = rng.integers(0, 60, (count, side, side, 3)).astype(np.uint8)
    images[..., 0] = np.clip(labels[:, None, None] * 30 + rng.integers(0, 20, (count, side, side)), 0, 255)
    return images, labels


def toy_splits(**options):
    images, labels = colour_problem(**options)
    table = pd.DataFrame({"image_id": [f"ISIC_{i:07d}" for i in range(len(labels))], "label": labels})
    cut = int(0.7 * len(labels))
    return {"train": split.SplitImages(table.iloc[:cut], images[:cut], labels[:cut]),
            "val": split.SplitImages(table.iloc[cut:], images[cut:], labels[cut:])}


def test_builders_shapes_and_parameter_counts():
    mlp = models.mlp((16, 16, 3), hidden=(8,))
    assert mlp.count_params() == 16 * 16 * 3 * 8 + 8 + 8 * 7 + 7
    cnn = models.cnn((64, 64, 3), filters=(8, 16), stem=8, batch_norm=True, l2=1e-4, dropout=0.3, dense=16)
    assert cnn.output_shape == (None, 7)
    names = [layer.__class__.__name__ for layer in cnn.layers]
    assert {"BatchNormalization", "Dropout", "MaxPooling2D", "Rescaling"} <= set(names)
    assert cnn.get_layer("stem_conv").strides == (2, 2)
    strided = models.cnn((64, 64, 3), filters=(8, 16), pooling=False)
    assert strided.get_layer("block2_conv1").output.shape[1] == 16  # 64 halved twice.
    assert len(cnn.losses) > 0 and len(strided.losses) == 0  # L2 penalties only where asked.


def test_augmentation_changes_training_batches_only():
    images, _ = colour_problem(8)
    layer = models.augmentation(seed=3)
    augmented = np.asarray(layer(images.astype("float32"), training=True))
    assert augmented.shape == images.shape
    assert not np.allclose(augmented, images)
    assert np.allclose(np.asarray(layer(images.astype("float32"), training=False)), images)


def test_class_weights():
    weights = train.class_weights(np.array([0] * 6 + [1] * 2 + [2] * 4 + [3, 4, 5, 6]))
    assert weights[1] == pytest.approx(16 / (7 * 2)) and weights[0] < weights[1] < weights[3]
    with pytest.raises(ValueError, match="every class needs at least one training image"):
        train.class_weights(np.array([0, 1, 2]))


def test_fit_learns_a_learnable_task_and_keeps_the_best_epoch():
    splits = toy_splits()
    train.set_seeds(0)
    data = pipeline.training_dataset(splits["train"].images, splits["train"].labels, batch_size=32)
    run = train.fit(models.cnn((32, 32, 3), filters=(8,), global_pool=True), data,
                    (splits["val"].images, splits["val"].labels), name="toy", epochs=10, patience=10,
                    learning_rate=0.01, verbose=False)
    history = run.history
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]  # The loss must fall.
    assert history["val_balanced_accuracy"].max() > 0.5  # Far above chance (1/7) and the majority class.
    assert run.best_epoch == history["val_balanced_accuracy"].idxmax()
    probabilities = infer.predict_proba(run.model, splits["val"].images)
    best = metrics.classification_metrics(splits["val"].labels, probabilities)["balanced_accuracy"]
    assert best == pytest.approx(history["val_balanced_accuracy"].max(), abs=1e-4)  # Best weights restored.


def test_bad_fit_options_are_refused():
    splits = toy_splits(count=70)
    data = pipeline.training_dataset(splits["train"].images, splits["train"].labels)
    model = models.mlp((32, 32, 3), hidden=(4,))
    validation = (splits["val"].images, splits["val"].labels)
    with pytest.raises(ValueError, match="optimizer must be 'adam' or 'sgd'. Got 'rmsprop'"):
        train.fit(model, data, validation, name="x", optimizer="rmsprop")
    with pytest.raises(ValueError, match="schedule must be None, 'cosine', 'plateau' or 'one_cycle'"):
        train.fit(model, data, validation, name="x", schedule="linear")


def test_experiment_saves_model_history_metrics_and_results_row(tmp_path):
    import keras

    splits = toy_splits()
    options = dict(folder=tmp_path, notebook="test", epochs=2, batch_size=32, seed=1, patience=2)
    build = lambda: models.cnn((32, 32, 3), filters=(8,), global_pool=True)  # noqa: E731
    first = train.experiment("toy_a", build, splits, **options)
    again = train.experiment("toy_a", build, splits, **options)
    assert np.allclose(first.probabilities, again.probabilities, atol=1e-5)  # Same seed, same result.
    train.experiment("toy_b", build, splits, augment=models.augmentation(), balance_classes=True,
                     schedule="cosine", **options)
    results = pd.read_csv(tmp_path / artefacts.RESULTS_FILE)
    assert results["name"].tolist() == ["toy_a", "toy_b"]  # Rerunning toy_a replaced its row.
    assert {"balanced_accuracy", "macro_auc", "malignant_recall", "params", "train_seconds"} <= set(results.columns)
    loaded = keras.models.load_model(tmp_path / "toy_a.keras", safe_mode=True)
    assert getattr(loaded, "optimizer", None) is None  # Saved for inference: no optimizer state.
    assert np.allclose(infer.predict_proba(loaded, splits["val"].images), again.probabilities, atol=1e-5)
    history = pd.read_csv(tmp_path / "toy_a_history.csv")
    assert list(history["epoch"]) == [1, 2]
    saved = json.loads((tmp_path / "toy_a_metrics.json").read_text())
    assert saved["accuracy"] == pytest.approx(again.metrics["accuracy"])


def test_a_failed_save_keeps_the_last_good_model(tmp_path, monkeypatch):
    import keras

    model = models.mlp((16, 16, 3), hidden=(4,))
    path = artefacts.save_model_atomic(model, tmp_path / "model.keras")
    before = path.read_bytes()

    def broken_save(self, filepath, *args, **kwargs):
        open(filepath, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        artefacts.save_model_atomic(models.mlp((16, 16, 3), hidden=(4,)), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_metrics_on_a_known_case():
    labels = np.array([0, 1, 4, 5, 5, 5, 5, 6])
    probabilities = np.full((8, 7), 0.01)
    probabilities[np.arange(8), [0, 1, 5, 5, 5, 5, 5, 5]] = 0.9  # The melanoma and the vascular lesion are missed.
    scores = metrics.classification_metrics(labels, probabilities)
    assert scores["accuracy"] == pytest.approx(6 / 8)
    assert scores["balanced_accuracy"] == pytest.approx((1 + 1 + 0 + 1 + 0) / 5)
    assert scores["recall_mel"] == 0 and scores["recall_nv"] == 1 and np.isnan(scores["recall_df"])
    assert metrics.malignant_probability(probabilities)[0] == pytest.approx(0.9 + 0.01 + 0.01)
    fixed = metrics.classification_metrics(labels, probabilities, threshold=0.5)
    assert fixed["malignant_threshold"] == 0.5
    assert fixed["malignant_recall"] == pytest.approx(2 / 3)  # akiec and bcc caught, the melanoma missed.
    assert metrics.confusion(labels, probabilities.argmax(1)).loc["mel", "nv"] == 1
    table = metrics.change({"name": "a", **scores}, {"name": "b", **fixed})
    assert list(table.columns) == ["a", "b", "change"]


def test_plots_and_explanations_draw():
    import matplotlib

    matplotlib.use("Agg")
    images, labels = colour_problem(40)
    model = models.cnn((32, 32, 3), filters=(8, 16), stem=8)
    history = pd.DataFrame({"loss": [2, 1.5], "val_loss": [2, 1.8], "accuracy": [0.3, 0.5], "val_accuracy": [0.3, 0.4],
                            "val_balanced_accuracy": [0.2, 0.3]}, index=[1, 2])
    probabilities = np.eye(7)[labels]
    results = pd.DataFrame({"name": ["a", "b"], "accuracy": [0.5, 0.6], "balanced_accuracy": [0.3, 0.4],
                            "macro_auc": [0.7, 0.8]})
    figures = [evaluate.plot_history(history), evaluate.plot_confusion(labels, probabilities),
               evaluate.plot_comparison(results), explain.plot_filters(model),
               explain.plot_convolutions(images[0]),
               explain.plot_feature_maps(model, images[0], ["stem_relu", "block1_pool"], channels=3)]
    assert all(len(figure.axes) > 0 for figure in figures)
    maps = explain.feature_maps(model, images[0], ["stem_relu", "block2_pool"])
    assert [m.shape for m in maps] == [(16, 16, 8), (4, 4, 16)]


def test_convolve_matches_a_known_edge():
    step = np.zeros((5, 6))
    step[:, 3:] = 1.0
    response = explain.convolve(step, explain.EDGE_KERNELS["vertical edges"])
    assert response[2, 2] == -4 and response[2, 3] == -4 and response[2, 0] == 0

"""Cached multi-view features and acquisition shifts: real computations on small arrays."""

import json

import numpy as np
import pandas as pd
import pytest

from skinlib import acquisition, artefacts, features, metrics, models, train


@pytest.fixture(scope="module")
def small_backbone():
    base = models.backbone("efficientnet_lite0", weights=None, input_shape=(32, 48, 3), colour_constancy=True)
    return (base, *features.split_backbone(base))


def test_split_backbone_composes_to_the_whole(small_backbone):
    base, lower, upper = small_backbone
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 48, 3)).astype("float32")
    np.testing.assert_allclose(upper(lower(pixels)), base(pixels), atol=1e-5)
    weighted = lambda model: {id(layer) for layer in model.layers if layer.weights}  # noqa: E731
    assert not weighted(upper) & weighted(lower)  # No layer is in both parts.
    assert len(weighted(upper)) + len(weighted(lower)) == len(weighted(base))


def test_views_are_flips_without_jitter():
    pixels = np.random.default_rng(1).integers(0, 256, (3, 6, 8, 3)).astype("uint8")
    assert np.array_equal(np.asarray(features.make_views(pixels, 0, jitter=0)), pixels)
    assert np.array_equal(np.asarray(features.make_views(pixels, 1, jitter=0)), pixels[:, :, ::-1])
    assert np.array_equal(np.asarray(features.make_views(pixels, 2, jitter=0)), pixels[:, ::-1])
    assert np.array_equal(np.asarray(features.make_views(pixels, 3, jitter=0)), pixels[:, ::-1, ::-1])


def test_jitter_is_seeded_and_per_image():
    pixels = np.full((4, 16, 16, 3), 120, dtype="uint8")
    first = np.asarray(features.make_views(pixels, 0, seed=3))
    again = np.asarray(features.make_views(pixels, 0, seed=3))
    other = np.asarray(features.make_views(pixels, 0, seed=4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert len({round(float(image.mean()), 3) for image in first}) > 1  # Each image its own jitter.


def test_jpeg_jitter_recompresses_a_third_and_leaves_the_other_draws():
    import tensorflow as tf

    rows, columns = np.meshgrid(np.linspace(0, 1, 24), np.linspace(0, 1, 32), indexing="ij")
    smooth = np.stack([rows * 200, columns * 180, (rows + columns) * 90], axis=-1)
    pixels = np.repeat(smooth[None], 30, axis=0).astype("float32")
    plain = np.asarray(acquisition.random_acquisition(pixels, [4, 9]))
    compressed = np.asarray(acquisition.random_acquisition(pixels, [4, 9], jpeg=True))
    np.testing.assert_array_equal(compressed, np.asarray(acquisition.random_acquisition(pixels, [4, 9], jpeg=True)))
    changed = [i for i in range(30) if not np.array_equal(plain[i], compressed[i])]
    assert 4 <= len(changed) <= 16  # About a third; the others keep exactly the draws they had without JPEG.
    low, high = acquisition.JPEG_QUALITIES
    for i in changed:  # Each is its jittered image saved as JPEG at one quality of the range.
        source = tf.cast(tf.round(plain[i]), tf.uint8)
        assert any(np.array_equal(compressed[i], tf.image.adjust_jpeg_quality(source, quality).numpy())
                   for quality in range(low, high + 1))


def stripes_seen(images):
    """How many dark-to-light edges each image's middle row shows (colour jitter keeps them; zoom spreads them)."""
    row = np.asarray(images)[:, images.shape[1] // 2, :, 0]
    light = row > row.mean(axis=1, keepdims=True)
    return (light[:, 1:] & ~light[:, :-1]).sum(axis=1)


def test_zoom_sets_how_close_the_jittered_views_come():
    columns = np.arange(160) // 4 % 2 * 200 + 20  # 20 stripes of 8 px across 160 px.
    pixels = np.broadcast_to(columns[None, None, :, None], (40, 120, 160, 3)).astype("float32")
    default = stripes_seen(acquisition.random_acquisition(pixels, [1, 2]))
    assert default.min() >= 16  # At most 1.2x: at least 20 / 1.2 stripes stay in view.
    closer = stripes_seen(acquisition.random_acquisition(pixels, [1, 2], zoom=0.7))
    assert closer.min() >= 11 and (closer < 14).sum() >= 5  # Up to 1.7x: some views show under 20 / 1.45.


def test_default_zoom_crops_as_before_it_was_a_parameter(monkeypatch):
    import tensorflow as tf

    boxes, crop = [], tf.image.crop_and_resize
    def recorded(images, box, *args):
        boxes.append(box)
        return crop(images, box, *args)

    monkeypatch.setattr(tf.image, "crop_and_resize", recorded)
    pixels = np.random.default_rng(5).integers(0, 256, (6, 12, 16, 3)).astype("float32")
    acquisition.random_acquisition(pixels, [7, 1], strength=0.5)
    draws = tf.random.stateless_uniform((6, 8), seed=[7, 1], minval=-1.0, maxval=1.0) * 0.5
    factor = 1.0 + 0.1 * (draws[:, 0] + 0.5)  # The formula of the jitter before its zoom was a parameter.
    margin = (1 - 1 / factor) / 2
    top, left = margin * (1 + draws[:, 1]), margin * (1 + draws[:, 2])
    np.testing.assert_array_equal(boxes[0], tf.stack([top, left, top + 1 / factor, left + 1 / factor], axis=1))
    with pytest.raises(ValueError, match="zoom must be 0 or more"):
        acquisition.random_acquisition(pixels, [7, 1], zoom=-0.1)


def test_surround_shows_a_share_of_views_in_a_dark_field_and_leaves_the_other_draws_alone():
    pixels = np.full((200, 60, 80, 3), 180.0, "float32")
    plain = np.asarray(acquisition.random_acquisition(pixels, [3, 4]))
    fielded = np.asarray(acquisition.random_acquisition(pixels, [3, 4], surround=0.5))
    changed = (fielded != plain).any(axis=(1, 2, 3))
    assert 70 <= changed.sum() <= 130  # About half the images get a field; the others are exactly as without.
    corners = fielded[changed][:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners <= 0.15 * plain[changed][:, [0, 0, -1, -1], [0, -1, 0, -1]] + 1e-3).all()  # Dark outside.
    np.testing.assert_array_equal(fielded[:, 25:35, 35:45], plain[:, 25:35, 35:45])  # The centre is never touched.
    every = np.asarray(acquisition.random_acquisition(pixels, [3, 4], surround=1.0))
    assert (every != plain).any(axis=(1, 2, 3)).all()
    np.testing.assert_array_equal(np.asarray(acquisition.random_acquisition(pixels, [3, 4], strength=0,
                                                                            surround=1.0)), pixels)
    rng = np.random.default_rng(9)  # With JPEG too: the same images compressed, at the same qualities.
    textured = rng.integers(0, 256, (30, 60, 80, 3)).astype("float32")
    compressed = np.asarray(acquisition.random_acquisition(textured, [5, 6], jpeg=True))
    both = np.asarray(acquisition.random_acquisition(textured, [5, 6], jpeg=True, surround=0.5))
    untouched = (np.asarray(acquisition.random_acquisition(textured, [5, 6], surround=0.5))
                 == np.asarray(acquisition.random_acquisition(textured, [5, 6]))).all(axis=(1, 2, 3))
    assert untouched.sum() >= 5 and np.array_equal(both[untouched], compressed[untouched])
    for share in (-0.1, 1.5):
        with pytest.raises(ValueError, match="surround must be a share between 0 and 1"):
            acquisition.random_acquisition(pixels, [3, 4], surround=share)


def test_dark_field_shift_blackens_outside_the_field_only():
    pixels = np.full((2, 150, 200, 3), 120, "uint8")
    for kind, black in (("circle", 0.41), ("ellipse", 0.21)):
        shifted = acquisition.apply(pixels, surround=kind)
        mask = acquisition.field_mask((150, 200), kind)
        assert (shifted[:, mask] == 120).all() and (shifted[:, ~mask] == 0).all()
        assert abs((~mask).mean() - black) < 0.01  # 1 - pi * 3/16 and 1 - pi / 4 of the image.
    with pytest.raises(ValueError, match="kind must be one of"):
        acquisition.field_mask((150, 200), "square")


def test_cached_features_are_stored_once_and_keyed(small_backbone, tmp_path):
    _, lower, _ = small_backbone
    pixels = np.random.default_rng(2).integers(0, 256, (5, 32, 48, 3)).astype("uint8")
    stored = features.cached_features(lower, pixels, views=2, cache_dir=tmp_path, progress=False)
    assert stored.shape == (2, 5, *lower.output_shape[1:]) and stored.dtype == np.float16
    assert len(list(tmp_path.iterdir())) == 1
    np.testing.assert_array_equal(features.cached_features(lower, pixels, views=2, cache_dir=tmp_path,
                                                           progress=False), stored)
    plain = features.cached_features(lower, pixels, views=1, jitter=0, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 2
    features.cached_features(lower, pixels, views=1, jitter=0, jpeg=True, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 2  # Without jitter there is no JPEG either: the plain flips' file.
    jpeg = features.cached_features(lower, pixels, views=2, jpeg=True, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 3 and jpeg.shape == stored.shape
    features.cached_features(lower, pixels, views=2, zoom=0.2, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 3  # The default zoom named: the same file as without it, ...
    layers = [(type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"})
              for layer in lower.layers]
    old_key = features.content_key(pixels, lower.get_weights(), layers, 2, 0, 1.0, 64, features.FEATURES_VERSION)
    assert (tmp_path / f"{lower.name}_{old_key}.npy").is_file()  # ... the one keyed before zoom was a setting.
    closer = features.cached_features(lower, pixels, views=2, zoom=0.7, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 4 and not np.array_equal(closer, stored)
    features.cached_features(lower, pixels, views=2, surround=0.0, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 4  # No surround named: still the old file.
    fielded = features.cached_features(lower, pixels, views=2, surround=1.0, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 5 and not np.array_equal(fielded, stored)
    without = models.backbone("efficientnet_lite0", weights=None, input_shape=(32, 48, 3))
    without.set_weights(small_backbone[0].get_weights())
    other_lower, _ = features.split_backbone(without)  # Same weights, no colour constancy: other features.
    features.cached_features(other_lower, pixels, views=1, jitter=0, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 6
    np.testing.assert_allclose(plain[0], np.asarray(lower(pixels.astype("float32"))), rtol=1e-2, atol=1e-2)
    with pytest.raises(ValueError, match="views must be between 1 and 12"):
        features.cached_features(lower, pixels, views=13, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="views=5 needs jitter"):
        features.cached_features(lower, pixels, views=5, jitter=0, cache_dir=tmp_path)


def test_views_beyond_four_repeat_the_flips_with_new_jitter():
    pixels = np.random.default_rng(5).integers(0, 256, (3, 6, 8, 3)).astype("uint8")
    flips = [pixels, pixels[:, :, ::-1], pixels[:, ::-1], pixels[:, ::-1, ::-1]]
    for view, flipped in enumerate(flips):  # Views 0-3 as they were stored before streams: the same jitter keys.
        expected = acquisition.random_acquisition(flipped.astype("float32"), [2 * 7919 + view, 5])
        np.testing.assert_array_equal(np.asarray(features.make_views(pixels, view, seed=2, start=5)),
                                      np.asarray(expected))
    for view in range(4, 12):
        np.testing.assert_array_equal(np.asarray(features.make_views(pixels, view, jitter=0)),
                                      np.asarray(features.make_views(pixels, view % 4, jitter=0)))
    drawn = [np.asarray(features.make_views(pixels, view, seed=2)) for view in (1, 5, 9)]
    assert not np.array_equal(drawn[0], drawn[1]) and not np.array_equal(drawn[1], drawn[2])
    # A stream's draw does not collide with another seed's: seed 2, view 5 against seed 3's views 0-11.
    assert all(not np.array_equal(drawn[1], np.asarray(features.make_views(pixels, view, seed=3)))
               for view in range(12))
    with pytest.raises(ValueError, match="view must be between 0 and 11"):
        features.make_views(pixels, 12)


def test_balanced_sampling_evens_out_classes():
    labels = np.array([0] * 90 + [1] * 10)
    stored = np.zeros((2, 100, 3), "float16")
    data, steps = features.view_dataset(stored, labels, epochs=20, batch_size=10, sampling="balanced")
    drawn = np.concatenate([y.numpy() for _, y in data])
    assert steps == 10 and 0.4 < drawn.mean() < 0.6
    data, _ = features.view_dataset(stored, labels, epochs=1, batch_size=10)
    assert sorted(np.concatenate([y.numpy() for _, y in data]).tolist()) == sorted(labels.tolist())


def test_mixup_blends_two_examples_of_the_same_batch_with_their_labels_and_class_weights():
    # Each stored map names its image (a one-hot row of 12 channels) and its view (a 13th channel), so every mixed
    # map shows which two images it blends, by how much, and from which views: the labels and weights must be
    # blended by the same share, and each example bring the view drawn for it.
    count, batch = 12, 4
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 1, 2])
    stored = np.zeros((3, count, 2, 2, count + 1), "float16")
    stored[:, :, :, :, :count] = np.eye(count)[None, :, None, None, :]
    stored[:, :, :, :, count] = np.arange(3)[:, None, None, None]
    weights = {k: float(k + 1) for k in range(7)}
    plain, steps = features.view_dataset(stored, labels, epochs=2, batch_size=batch, seed=5)
    mixed, mixed_steps = features.view_dataset(stored, labels, epochs=2, batch_size=batch, seed=5, mixup=0.4,
                                               class_weight=weights)
    assert steps == mixed_steps == 3
    shares = []
    for (x, _), (maps, targets, sample_weights) in zip(plain, mixed):
        x, maps, targets, sample_weights = x.numpy(), maps.numpy(), targets.numpy(), sample_weights.numpy()
        np.testing.assert_allclose(maps[:, 0, 0], maps[:, 1, 1])  # The blend is one share over the whole map.
        share = maps[:, 0, 0, :count]  # (batch, images): the images each example blends, and by how much.
        np.testing.assert_allclose(share.sum(axis=1), 1, atol=1e-6)
        assert (np.count_nonzero(share > 1e-6, axis=1) <= 2).all()
        # The same images as without mixup: the partners are a shuffle of the batch itself.
        plain_images, plain_views = x[:, 0, 0, :count].argmax(axis=1), x[:, 0, 0, count]
        assert set(np.flatnonzero(share.sum(axis=0) > 1e-6)) == set(plain_images)
        # Each image brings the view it was drawn with in the plain batch: the blend of the two views' numbers.
        view_of = dict(zip(plain_images, plain_views))
        np.testing.assert_allclose(maps[:, 0, 0, count], share @ np.array([view_of.get(i, 0) for i in range(count)]),
                                   atol=1e-5)
        np.testing.assert_allclose(targets, share @ np.eye(7)[labels], atol=1e-6)
        np.testing.assert_allclose(sample_weights, share @ (labels + 1.0), atol=1e-5)
        shares.append(share.max(axis=1))
    assert 0.5 < np.concatenate(shares).min() < 0.999  # Some examples are truly blended.
    # Beta(0.2, 0.2) keeps most blends close to one image; Beta(4, 4) keeps most near half and half.
    one_view = np.eye(count, dtype="float16")[None, :, None, None, :]
    for alpha, low, high in ((0.2, 0.6, 1.0), (4.0, 0.0, 0.2)):  # One batch of all 12: 1/12 of them are unmixed.
        data, _ = features.view_dataset(one_view, labels, epochs=200, batch_size=count, seed=1, mixup=alpha)
        larger = np.concatenate([x.numpy()[:, 0, 0].max(axis=1) for x, _ in data])
        assert low <= (larger > 0.9).mean() <= high, (alpha, (larger > 0.9).mean())
    unweighted = next(iter(features.view_dataset(stored, labels, epochs=1, batch_size=batch, mixup=0.4)[0]))
    assert len(unweighted) == 2 and unweighted[1].shape == (batch, 7)
    for bad in (-0.1, float("nan"), float("inf"), None):
        with pytest.raises(ValueError, match="Beta distribution"):
            features.view_dataset(stored, labels, epochs=1, batch_size=batch, mixup=bad)


def test_train_top_with_mixup_learns_and_records_it(tmp_path):
    rng = np.random.default_rng(9)
    labels = np.arange(140) % 7
    pooled = (np.eye(7)[labels] * 2 + rng.normal(0, 0.5, (2, 140, 7))).astype("float32")
    for balancing in (dict(class_power=1.0), dict(sampling="balanced"), dict(class_power=0.0, loss="focal")):
        run = features.train_top(None, pooled, labels, (pooled[1], labels), name="mixup", epochs=10, batch_size=14,
                                 learning_rate=0.05, mixup=0.4, patience=10, verbose=False, **balancing)
        assert run.history["val_balanced_accuracy"].max() > 0.6, balancing  # Chance is 1/7.
    for bad in (True, -1, float("nan"), "0.2"):
        with pytest.raises(ValueError, match="Beta distribution"):
            features.train_top(None, pooled, labels, (pooled[1], labels), name="bad", epochs=1, mixup=bad,
                               verbose=False)
    base = models.backbone("efficientnet_lite0", weights=None, input_shape=(32, 48, 3))  # Not the shared fixture.
    lower, upper = features.split_backbone(base)
    pixels = rng.integers(0, 255, (20, 32, 48, 3)).astype("uint8")
    stored = features.cached_features(lower, pixels, views=2, jitter=0, cache_dir=tmp_path, progress=False)
    features.train_and_save("mixed", base, upper, stored, np.arange(20) % 7, stored, np.arange(20) % 7,
                            folder=tmp_path, notebook="test", epochs=1, batch_size=10, mixup=0.2, verbose=False)
    rows = pd.read_csv(tmp_path / artefacts.RESULTS_FILE).set_index("name")
    assert rows.loc["mixed", "mixup"] == 0.2


def test_train_top_learns_a_separable_task_and_saves(small_backbone, tmp_path):
    base, lower, upper = small_backbone
    rng = np.random.default_rng(3)
    labels = np.arange(70) % 7
    pixels = np.clip(rng.normal(40 + 25 * labels, 5, (3, 32, 48, 70)).transpose(3, 1, 2, 0), 0, 255).astype("uint8")
    stored = features.cached_features(lower, pixels, views=2, jitter=0, cache_dir=tmp_path, progress=False)
    assert features.pool_views(upper, stored).shape == (2, 70, upper.output_shape[-1])
    clusters = (np.eye(7)[labels] * 3 + rng.normal(0, 0.5, (2, 70, 7))).astype("float32")  # Separable views.
    head = features.train_top(None, clusters, labels, (clusters[0], labels), name="head", epochs=20, batch_size=10,
                              learning_rate=0.01, label_smoothing=0.0, patience=20, verbose=False)
    assert head.history["val_balanced_accuracy"].max() > 0.6  # Chance is 1/7.
    experiment, tta = features.train_and_save("tiny", base, upper, stored, labels, stored, labels, folder=tmp_path,
                                              notebook="test", epochs=1, batch_size=10, verbose=False)
    assert (tmp_path / "tiny.keras").is_file() and tta.shape == (70, 7)
    np.testing.assert_allclose(tta.sum(axis=1), 1, atol=1e-5)
    loaded = models.load_model(tmp_path / "tiny.keras")  # Registers ShadesOfGray, as every loader does.
    # The saved pixels-in model gives what training scored on the stored identity view (float16 rounding aside).
    np.testing.assert_allclose(loaded.predict(pixels.astype("float32"), verbose=0), experiment.probabilities,
                               atol=1e-2)
    # A second seed (the same lower part, as in chapter 03), then both saved as one model that averages them.
    second = models.backbone("efficientnet_lite0", weights=None, input_shape=(32, 48, 3), colour_constancy=True)
    second.set_weights(base.get_weights())
    other, other_tta = features.train_and_save("tiny2", second, features.split_backbone(second)[1], stored, labels,
                                               stored, labels, folder=tmp_path, notebook="test", epochs=1,
                                               batch_size=10, seed=1, verbose=False)
    seeds = {"tiny": experiment, "tiny2": other}
    plain, averaged = features.save_ensemble("tiny_ensemble", seeds, {"tiny": tta, "tiny2": other_tta}, labels,
                                             folder=tmp_path, notebook="test")
    np.testing.assert_allclose(plain, (experiment.probabilities + other.probabilities) / 2, atol=1e-6)
    np.testing.assert_allclose(averaged, (tta + other_tta) / 2, atol=1e-6)
    assert not (tmp_path / "tiny.keras").exists() and not (tmp_path / "tiny2.keras").exists()  # inside it now
    rows = artefacts.read_results(tmp_path).set_index("name")
    assert rows.loc[["tiny_ensemble", "tiny_ensemble_tta"], "members"].tolist() == ["tiny + tiny2"] * 2
    assert rows.loc["tiny_ensemble_tta", "balanced_accuracy"] == round(
        metrics.classification_metrics(labels, averaged)["balanced_accuracy"], 4)
    ensemble = models.load_model(tmp_path / "tiny_ensemble.keras")
    assert [member.name for member in models.members(ensemble)] == ["tiny", "tiny2"]
    np.testing.assert_allclose(ensemble.predict(pixels.astype("float32"), verbose=0), plain, atol=1e-2)


def test_a_refit_trains_as_the_validated_run_did_for_every_epoch_and_keeps_the_last():
    rng = np.random.default_rng(4)
    labels = np.arange(140) % 7
    pooled = (np.eye(7)[labels] + rng.normal(0, 0.9, (2, 140, 7))).astype("float32")
    settings = dict(name="run", epochs=6, batch_size=14, learning_rate=0.05, class_power=1.0, verbose=False)
    validated = features.train_top(None, pooled, labels, (pooled[1], labels), patience=20, **settings)
    refitted = features.train_top(None, pooled, labels, None, patience=1, **settings)  # patience unused: no stop
    # Scoring on validation changes nothing in training: the same losses, epoch by epoch, and all six epochs.
    assert len(refitted.history) == 6 and refitted.best_epoch == 6 and refitted.validation_probabilities is None
    assert "val_balanced_accuracy" not in refitted.history
    np.testing.assert_allclose(refitted.history["loss"], validated.history["loss"], rtol=1e-4)
    # It keeps the last epoch's weights: on the validation images it scores what the validated run's last epoch did.
    decided = refitted.model.predict(pooled[1], verbose=0).argmax(axis=1)
    assert metrics.classification_metrics(labels, np.eye(7)[decided])["balanced_accuracy"] == pytest.approx(
        validated.history["val_balanced_accuracy"].iloc[-1], abs=1e-4)
    with pytest.raises(ValueError, match="ema with validation=None"):
        features.train_top(None, pooled, labels, None, name="bad", epochs=1, ema=0.9, verbose=False)


def test_refit_returns_the_pixels_in_model_of_the_last_epoch(tmp_path):
    base = models.backbone("efficientnet_lite0", weights=None, input_shape=(32, 48, 3), colour_constancy=True)
    lower, upper = features.split_backbone(base)
    rng = np.random.default_rng(5)
    labels = np.arange(28) % 7
    pixels = np.clip(rng.normal(40 + 25 * labels, 5, (3, 32, 48, 28)).transpose(3, 1, 2, 0), 0, 255).astype("uint8")
    stored = features.cached_features(lower, pixels, views=2, jitter=0, cache_dir=tmp_path, progress=False)
    run = features.refit("tiny_refit", base, upper, stored, labels, epochs=2, batch_size=7, verbose=False)
    assert run.model.name == "tiny_refit" and run.best_epoch == 2 and len(run.history) == 2
    assert run.model.inputs[0].shape[1:] == (32, 48, 3)  # Pixels in, like every saved classifier.
    top = features.top_model(upper, n_features=stored.shape[-1])
    top.get_layer("head").set_weights(run.model.get_layer("head").get_weights())
    # The pixels-in model is the lower part then the trained top (float16 storage aside).
    np.testing.assert_allclose(run.model.predict(pixels.astype("float32"), verbose=0),
                               top.predict(np.asarray(stored[0], "float32"), verbose=0), atol=1e-2)
    # Marked as trained: the upper blocks (BatchNorm frozen), not the lower part.
    upper_names = {layer.name for layer in upper.layers}
    assert not any(layer.trainable for layer in base.layers if layer.name not in upper_names)
    shared = [layer for layer in upper.layers if any(layer is mine for mine in base.layers)]  # Not upper's Input.
    assert sum(layer.trainable for layer in base.layers) == sum(features._trains(layer, "frozen")
                                                                for layer in shared) > 0
    # Saved as the refit of a validated run: one model, or one that averages the seeds.
    artefacts.record_metrics("tiny", {"accuracy": 0.5}, folder=tmp_path, notebook="test")
    assert features.save_refit("tiny", [run], folder=tmp_path, details={"train_images": 28}) == "tiny_refit"
    assert artefacts.refit_of("tiny", tmp_path) == "tiny_refit"
    second = models.backbone("efficientnet_lite0", weights=None, input_shape=(32, 48, 3), colour_constancy=True)
    second.set_weights(base.get_weights())
    other = features.refit("tiny_seed1_refit", second, features.split_backbone(second)[1], stored, labels, epochs=1,
                           batch_size=7, seed=1, verbose=False)
    features.save_refit("tiny", [run, other], folder=tmp_path)
    saved = models.load_model(tmp_path / "tiny_refit.keras")
    assert [member.name for member in models.members(saved)] == ["tiny_refit", "tiny_seed1_refit"]
    expected = (run.model.predict(pixels.astype("float32"), verbose=0)
                + other.model.predict(pixels.astype("float32"), verbose=0)) / 2
    np.testing.assert_allclose(saved.predict(pixels.astype("float32"), verbose=0), expected, atol=1e-5)
    record = json.loads((tmp_path / "tiny_refit_training.json").read_text())
    assert record["refit_of"] == "tiny" and list(record["runs"]) == ["tiny_refit", "tiny_seed1_refit"]
    assert record["runs"]["tiny_seed1_refit"]["epochs"] == 1 and len(record["runs"]["tiny_refit"]["history"]["loss"]) == 2


def test_trained_batch_norm_adapts_the_upper_statistics_only_and_the_saved_model_uses_them(tmp_path):
    import keras

    base = models.backbone("efficientnet_lite0", weights=None, input_shape=(32, 48, 3), colour_constancy=True)
    lower, upper = features.split_backbone(base)
    norms = lambda model: [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]  # noqa: E731
    before = {id(layer): [w.numpy().copy() for w in layer.weights] for layer in norms(base)}
    rng = np.random.default_rng(4)
    labels = np.arange(40) % 7
    pixels = rng.integers(0, 256, (40, 32, 48, 3)).astype("uint8")
    stored = features.cached_features(lower, pixels, views=1, jitter=0, cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="batch_norm must be one of"):
        features.top_model(upper, batch_norm="adapted")
    experiment, _ = features.train_and_save("bn", base, upper, stored, labels, stored, labels, folder=tmp_path,
                                            notebook="test", epochs=1, batch_size=10, verbose=False,
                                            batch_norm="trained")
    changed = {id(layer) for layer in norms(base)
               if any(not np.array_equal(a, w.numpy()) for a, w in zip(before[id(layer)], layer.weights))}
    assert changed and changed <= {id(layer) for layer in norms(upper)}  # The stored lower part is untouched.
    # The moving statistics move only in training mode: the batches' own statistics were used.
    assert any(not np.array_equal(before[id(layer)][2], layer.moving_mean.numpy()) for layer in norms(upper))
    assert all(layer.trainable for layer in norms(upper))
    loaded = models.load_model(tmp_path / "bn.keras")
    np.testing.assert_allclose(loaded.predict(pixels.astype("float32"), verbose=0), experiment.probabilities,
                               atol=1e-2)


def test_image_weights_multiply_the_class_weights_and_ones_train_as_without_them():
    rng = np.random.default_rng(3)
    labels = np.array([0, 1, 1, 1, 2, 2, 3, 4, 5, 5, 5, 5, 6, 6])
    pooled = (np.eye(7)[labels] + rng.normal(0, 0.8, (2, len(labels), 7))).astype("float32")
    stored = np.zeros((2, 14, 1), "float16")
    stored[:, :, 0] = np.arange(14)  # Each stored value names its image.
    own = rng.uniform(0.1, 3, 14)
    classes = {k: float(k + 1) for k in range(7)}
    data, steps = features.view_dataset(stored, labels, epochs=3, batch_size=7, seed=2, class_weight=classes,
                                        image_weight=own)
    plain, _ = features.view_dataset(stored, labels, epochs=3, batch_size=7, seed=2)
    assert steps == 2 and len(list(data)) == len(list(plain)) == 6
    for (x, y, weights), (x_plain, _) in zip(data, plain):
        image = x.numpy()[:, 0].astype(int)
        np.testing.assert_array_equal(image, x_plain.numpy()[:, 0])  # The same draws as without weights.
        np.testing.assert_array_equal(y.numpy(), labels[image])
        np.testing.assert_allclose(weights.numpy(), (labels[image] + 1.0) * own[image], rtol=1e-6)
    # Weights of one train as class weights alone: the same head, epoch by epoch.
    settings = dict(name="head", epochs=4, batch_size=7, learning_rate=0.01, patience=10, verbose=False,
                    class_power=1.0)
    alone = features.train_top(None, pooled, labels, (pooled[0], labels), **settings)
    ones = features.train_top(None, pooled, labels, (pooled[0], labels), image_weight=np.ones(14), **settings)
    np.testing.assert_allclose(ones.validation_probabilities, alone.validation_probabilities, atol=1e-5)
    halved = features.train_top(None, pooled, labels, (pooled[0], labels),
                                image_weight=np.r_[np.ones(7), 0.5 * np.ones(7)], **settings)
    assert not np.allclose(halved.validation_probabilities, alone.validation_probabilities, atol=1e-4)
    balanced, _ = features.view_dataset(stored, labels, epochs=1, batch_size=7, sampling="balanced",
                                        image_weight=own)
    for x, _, weights in balanced:  # No class weights with balanced sampling: each image's own weight alone.
        np.testing.assert_allclose(weights.numpy(), own[x.numpy()[:, 0].astype(int)], rtol=1e-6)
    for bad, message in ((np.ones(13), "does not match"), (np.r_[-1.0, np.ones(13)], "0 or more"),
                         (np.zeros(14), "all 0"), (np.r_[np.nan, np.ones(13)], "finite"),
                         (np.r_[np.inf, np.ones(13)], "finite")):
        with pytest.raises(ValueError, match=message):
            features.view_dataset(stored, labels, epochs=1, batch_size=7, image_weight=bad)
    with pytest.raises(ValueError, match="image_weight with mixup"):
        features.train_top(None, pooled, labels, None, name="bad", epochs=1, mixup=0.2, image_weight=np.ones(14),
                           verbose=False)


def test_compare_heads_trains_each_option_and_seed_as_train_top_would():
    rng = np.random.default_rng(5)
    labels = np.arange(70) % 7
    pooled = (np.eye(7)[labels] + rng.normal(0, 0.8, (2, 70, 7))).astype("float32")
    options = {"weights": dict(class_power=1.0), "sharp": dict(class_power=0.0, label_smoothing=0.0)}
    heads, scores = features.compare_heads(pooled, labels, (pooled[0], labels), options=options, seeds=(3, 4),
                                           epochs=3, label_smoothing=0.2, patience=5)
    assert list(scores.index) == [("weights", 3), ("weights", 4), ("sharp", 3), ("sharp", 4)]
    for (option, seed), settings in [(("weights", 4), dict(class_power=1.0, label_smoothing=0.2)),
                                     (("sharp", 3), dict(class_power=0.0, label_smoothing=0.0))]:
        alone = features.train_top(None, pooled, labels, (pooled[0], labels), name=option, epochs=3,
                                   learning_rate=1e-3, patience=5, seed=seed, verbose=False, **settings)
        np.testing.assert_allclose(heads[(option, seed)].validation_probabilities, alone.validation_probabilities,
                                   atol=1e-6)
        assert scores.loc[(option, seed), "balanced_accuracy"] == pytest.approx(
            metrics.classification_metrics(labels, alone.validation_probabilities)["balanced_accuracy"])


def test_ema_scores_and_keeps_the_moving_average_of_the_best_epoch():
    rng = np.random.default_rng(6)
    labels = np.arange(140) % 7
    pooled = (np.eye(7)[labels] + rng.normal(0, 0.9, (2, 140, 7))).astype("float32")
    validation = (pooled[1], labels)
    train.set_seeds(0)  # As train_top starts: the same seed, the same initial head.
    initial = np.concatenate([w.ravel() for w in features.top_model(None, n_features=7).get_weights()])
    moved = {}
    for ema, patience in [(0.0, 20), (0.9, 20), (0.9, 1), (0.999999, 20)]:
        run = features.train_top(None, pooled, labels, validation, name="ema", epochs=8, batch_size=14,
                                 learning_rate=0.05, patience=patience, ema=ema, verbose=False)
        # What the best epoch scored is what the model keeps: the average, swapped in before scoring and stopping.
        np.testing.assert_allclose(run.model.predict(validation[0], verbose=0), run.validation_probabilities,
                                   atol=1e-6)
        moved[ema, patience] = np.abs(np.concatenate([w.ravel() for w in run.model.get_weights()]) - initial).max()
        if patience == 1:  # The early stop's path: the best epoch's average restored after fit's own finalising.
            assert len(run.history) < 8 and run.best_epoch < len(run.history)
    # A momentum near 1 keeps the weights of the first step, which barely moved under the one-cycle warm-up;
    # without an average the weights moved far.
    assert moved[0.999999, 20] < 0.05 * moved[0.0, 20]
    with pytest.raises(ValueError, match="momentum lies in"):
        features.train_top(None, pooled, labels, validation, name="bad", epochs=1, ema=1.0, verbose=False)


def test_the_saved_pixels_in_model_holds_the_moving_average(tmp_path):
    import keras

    rng = np.random.default_rng(7)
    labels = np.arange(40) % 7
    # Stored maps of a useful scale: a random lower part's are near zero, and the upper blocks would barely move.
    stored = (rng.normal(0, 1, (1, 40, 4, 6, 40)) + labels[None, :, None, None, None] % 2).astype("float16")
    moved = {}
    for ema in (0.0, 0.999999):
        keras.utils.set_random_seed(1)  # The same random backbone for both runs.
        base = models.backbone("efficientnet_lite0", weights=None, input_shape=(32, 48, 3), colour_constancy=True)
        _, upper = features.split_backbone(base)
        assert upper.input_shape[1:] == stored.shape[2:]
        before = {w.path: w.numpy().copy() for w in upper.trainable_weights}
        features.train_and_save(f"ema{ema}", base, upper, stored, labels, stored, labels, folder=tmp_path,
                                notebook="test", epochs=3, batch_size=10, learning_rate=0.01, patience=3,
                                verbose=False, ema=ema)
        saved = {w.path: w.numpy() for w in models.load_model(tmp_path / f"ema{ema}.keras").weights}
        moved[ema] = max(np.abs(saved[path] - value).max() for path, value in before.items())
    # The saved upper blocks are the average (near the first step's weights), not the weights training reached.
    assert moved[0.0] > 1e-5 and moved[0.999999] < 0.05 * moved[0.0]  # Rounding alone moves them by ~1e-8.
    rows = pd.read_csv(tmp_path / artefacts.RESULTS_FILE).set_index("name")
    assert rows.loc["ema0.999999", "ema"] == 0.999999 and pd.isna(rows.loc["ema0.0", "ema"])  # Recorded where not 0.


def test_malignant_term_adds_the_binary_cross_entropy_of_p_malignant_per_image():
    import keras

    rng = np.random.default_rng(8)
    y = np.eye(7)[rng.integers(0, 7, 32)].astype("float32")
    p = rng.dirichlet(np.ones(7), 32).astype("float32")
    loss = features.with_malignant_term(keras.losses.CategoricalCrossentropy(label_smoothing=0.1), 0.5)
    smoothed = y * 0.9 + 0.1 / 7
    cross_entropy = -(smoothed * np.log(p)).sum(axis=1)
    malignant = [0, 1, 4]  # akiec, bcc, mel
    target, score = y[:, malignant].sum(axis=1), p[:, malignant].sum(axis=1)
    binary = -(target * np.log(score) + (1 - target) * np.log(1 - score))
    np.testing.assert_allclose(np.asarray(loss(y, p)), cross_entropy + 0.5 * binary, rtol=1e-5)


def test_train_top_adds_the_malignant_term_when_weighted():
    rng = np.random.default_rng(9)
    labels = np.arange(140) % 7
    pooled = (np.eye(7)[labels] + rng.normal(0, 0.9, (2, 140, 7))).astype("float32")
    first = {}
    for weight in (0.0, 1.0):
        run = features.train_top(None, pooled, labels, (pooled[1], labels), name="malignant", epochs=2,
                                 batch_size=14, learning_rate=0.01, malignant_weight=weight, verbose=False)
        first[weight] = run.history["loss"].iloc[0]
    assert first[1.0] > first[0.0] + 0.2  # The same seed and data; the binary term (about 0.6 at first) is added.
    for weight in (-1, float("nan"), float("inf"), None):
        with pytest.raises(ValueError, match="malignant term"):
            features.train_top(None, pooled, labels, (pooled[1], labels), name="bad", epochs=1,
                               malignant_weight=weight, verbose=False)
    with pytest.raises(ValueError, match="unadjusted"):
        features.train_top(None, pooled, labels, (pooled[1], labels), name="bad", epochs=1, loss="logit_adjusted",
                           class_power=0, label_smoothing=0, malignant_weight=1.0, verbose=False)


def test_logit_adjusted_loss_lifts_the_rare_classes_that_plain_cross_entropy_buries():
    # Overlapping classes, 90% of class 0: plain cross-entropy learns the prior and calls almost everything 0;
    # the logit-adjusted loss (Menon et al. 2021) learns the likelihood ratio and predicts the rare classes more often.
    rng = np.random.default_rng(0)
    labels = np.array([0] * 630 + list(range(1, 7)) * 10)
    centres = np.eye(7)[labels] * 1.0
    pooled = (centres[None] + rng.normal(0, 0.9, (2, len(labels), 7))).astype("float32")
    shares = {}
    for loss in ("cross_entropy", "logit_adjusted"):
        run = features.train_top(None, pooled, labels, (pooled[0], labels), name=loss, epochs=15, batch_size=35,
                                 learning_rate=0.01, class_power=0.0, loss=loss, label_smoothing=0.0, patience=15,
                                 verbose=False)
        shares[loss] = (run.validation_probabilities.argmax(axis=1) != 0).mean()
    assert shares["logit_adjusted"] > shares["cross_entropy"] + 0.05, shares
    with pytest.raises(ValueError, match="needs the class prior"):
        features.loss_function("logit_adjusted")
    with pytest.raises(ValueError, match="loss must be one of"):
        features.loss_function("hinge")
    with pytest.raises(ValueError, match="takes no label smoothing"):
        features.loss_function("logit_adjusted", prior=[0.5, 0.5], label_smoothing=0.1)
    with pytest.raises(ValueError, match="not on top of class weights"):
        features.train_top(None, pooled, labels, (pooled[0], labels), name="twice", class_power=1.0,
                           loss="logit_adjusted", label_smoothing=0.0, verbose=False)


def test_shades_of_gray_layer_matches_numpy_and_removes_a_cast():
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 200, (3, 10, 12, 3)).astype("uint8")
    layer = acquisition.ShadesOfGray()
    np.testing.assert_allclose(np.asarray(layer(pixels.astype("float32"))), acquisition.shades_of_gray(pixels),
                               atol=0.51)
    warm = acquisition.apply(pixels, temperature=0.25)
    corrected = [acquisition.shades_of_gray(image) for image in (pixels, warm)]
    cast = lambda image: np.abs(image.astype(float).mean(axis=(0, 1, 2)) - image.mean()).max()  # noqa: E731
    assert cast(corrected[1]) < cast(warm)


def test_shifts_are_named_and_change_images():
    pixels = np.random.default_rng(5).integers(0, 256, (2, 24, 32, 3)).astype("uint8")
    assert np.array_equal(acquisition.shift(pixels, "none"), pixels)
    for name in list(acquisition.SHIFTS)[1:]:
        shifted = acquisition.shift(pixels, name)
        assert shifted.shape == pixels.shape and shifted.dtype == np.uint8 and not np.array_equal(shifted, pixels)
    with pytest.raises(ValueError, match="shift must be one of"):
        acquisition.shift(pixels, "sepia")
    closer = {"closer (zoom 1.67x)": {"zoom": 1.67}}  # Beyond chapter 04's (benchmarks/shifts_on_validation.py).
    np.testing.assert_array_equal(acquisition.shift(pixels, "closer (zoom 1.67x)", batch_size=1, shifts=closer),
                                  acquisition.apply(pixels, zoom=1.67))
    with pytest.raises(ValueError, match="shift must be one of"):
        acquisition.shift(pixels, "none", shifts=closer)


def test_predict_shifts_scores_each_named_shift_once_in_order():
    from skinlib import infer

    pixels = np.random.default_rng(6).integers(0, 256, (5, 24, 32, 3)).astype("uint8")
    model = models.cnn((24, 32, 3), filters=(2,), global_pool=True, name="shifts")
    probabilities = infer.predict_shifts(model, pixels)
    assert list(probabilities) == list(acquisition.SHIFTS)
    np.testing.assert_array_equal(probabilities["none"], infer.predict_proba(model, pixels))
    np.testing.assert_array_equal(probabilities["darker (x0.7)"],
                                  infer.predict_proba(model, acquisition.apply(pixels, brightness=0.7)))
    closer = {"none": {}, "closer (zoom 1.67x)": {"zoom": 1.67}}
    chosen = infer.predict_shifts(model, pixels, shifts=closer)
    assert list(chosen) == list(closer) and chosen["none"].shape == (5, 7)
    np.testing.assert_array_equal(chosen["closer (zoom 1.67x)"],
                                  infer.predict_proba(model, acquisition.apply(pixels, zoom=1.67)))


def test_save_ensemble_keeps_the_members_files_when_it_fails_before_its_rows(tmp_path, monkeypatch):
    from types import SimpleNamespace

    labels = np.arange(14) % 7
    seeds = {}
    for name in ("s0", "s1"):
        model = models.cnn((16, 16, 3), filters=(2,), global_pool=True, name=name)
        artefacts.save_model_atomic(model, tmp_path / f"{name}.keras")
        (tmp_path / f"{name}.tflite").write_bytes(b"lite")
        (tmp_path / f"{name}.tflite.json").write_bytes(b"{}")
        seeds[name] = SimpleNamespace(run=SimpleNamespace(model=model), probabilities=np.eye(7)[labels])
    tta = {name: np.eye(7)[labels] for name in seeds}

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artefacts, "record_metrics", fail)
    with pytest.raises(OSError, match="disk full"):
        features.save_ensemble("ens", seeds, tta, labels, folder=tmp_path, notebook="test")
    assert all((tmp_path / f"{name}{suffix}").is_file() for name in seeds for suffix in (".keras", ".tflite"))
    monkeypatch.undo()
    features.save_ensemble("ens", seeds, tta, labels, folder=tmp_path, notebook="test")
    assert not any((tmp_path / f"{name}{suffix}").exists() for name in seeds
                   for suffix in (".keras", ".tflite", ".tflite.json"))
    assert artefacts.read_results(tmp_path)["name"].tolist() == ["ens", "ens_tta"]

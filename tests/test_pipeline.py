"""skinlib.pipeline: tf.data batches for training and evaluation."""

import numpy as np
import pytest

from skinlib import pipeline


def arrays(count=20, side=16):
    images = np.arange(count, dtype=np.uint8)[:, None, None, None] * np.ones((1, side, side, 3), np.uint8)
    return images, np.arange(count) % 7


def first_pixels(dataset):
    return [int(v) for batch in dataset for v in batch[0][:, 0, 0, 0].numpy()]


def test_training_batches_are_shuffled_reproducibly_and_cover_every_image():
    images, labels = arrays()
    epoch = first_pixels(pipeline.training_dataset(images, labels, batch_size=8, seed=3))
    assert sorted(epoch) == list(range(20)) and epoch != list(range(20))
    assert epoch == first_pixels(pipeline.training_dataset(images, labels, batch_size=8, seed=3))
    assert epoch != first_pixels(pipeline.training_dataset(images, labels, batch_size=8, seed=4))


def test_labels_stay_with_their_images_and_weights_pass_through():
    images, labels = arrays()
    weights = np.linspace(0.5, 2, 20)
    for batch_images, batch_labels, batch_weights in pipeline.training_dataset(images, labels, sample_weight=weights):
        index = batch_images.numpy()[:, 0, 0, 0].astype(int)
        assert np.array_equal(batch_labels.numpy(), labels[index])
        assert np.allclose(batch_weights.numpy(), weights[index])


def test_augmentation_runs_on_training_batches_only():
    import keras

    images, labels = arrays()
    flip = keras.layers.RandomFlip("horizontal", seed=1)
    constant = pipeline.training_dataset(images, labels, augment=lambda batch: batch * 0 + 7)
    assert all(float(batch[0].numpy().max()) == 7.0 for batch in constant)
    flipped = next(iter(pipeline.training_dataset(images, labels, augment=flip)))[0]
    assert flipped.shape == (32 if len(images) > 32 else 20, 16, 16, 3)
    evaluation = pipeline.evaluation_dataset(images, labels, batch_size=6)
    assert first_pixels(evaluation) == list(range(20))


def test_bad_shapes_are_refused():
    images, labels = arrays()
    with pytest.raises(ValueError, match=r"images must have shape \(n, height, width, 3\)"):
        pipeline.evaluation_dataset(images[..., 0])
    with pytest.raises(ValueError, match="20 images, 19 labels"):
        pipeline.training_dataset(images, labels[:-1])


def test_a_model_trains_from_the_pipeline():
    import keras

    images, labels = arrays(64)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(7, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(pipeline.training_dataset(images, labels, batch_size=16), epochs=2, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 2
    assert model.predict(pipeline.evaluation_dataset(images), verbose=0).shape == (64, 7)

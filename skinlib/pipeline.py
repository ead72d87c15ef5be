"""tf.data pipelines that feed decoded images to Keras.

Images arrive as a uint8 array (from :func:`skinlib.images.load_images`), so
nothing is decoded during training: the pipeline shuffles row numbers, gathers
whole batches, applies an optional augmentation to each batch, and prefetches
the next batch while the model works on the current one. Models rescale pixels
themselves, so the pipelines hand over raw 0-255 values as float32.
"""

from __future__ import annotations

import numpy as np


def _tf():
    """Import TensorFlow on first use, so that importing skinlib stays fast."""
    import tensorflow as tf

    return tf


def _check_inputs(images, labels):
    """Check shapes and return labels as int32 (or None)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (n, height, width, 3). Got {images.shape} instead.")
    if labels is None:
        return images, None
    labels = np.asarray(labels)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"images and labels differ in length: {images.shape[0]} images, {labels.shape[0]} labels.")
    return images, labels


def training_dataset(images, labels, *, batch_size=32, seed=0, augment=None, sample_weight=None):
    """Shuffled, batched, optionally augmented batches for ``model.fit``.

    Parameters
    ----------
    images : ndarray of shape (n, height, width, 3), dtype uint8
    labels : array-like of shape (n,) or (n, n_classes)
    batch_size : int, default=32
    seed : int, default=0
        Seed of the shuffle, reshuffled each epoch in a reproducible order.
    augment : callable, default=None
        Applied to each batch of float32 images, e.g. a ``keras.Sequential``
        of ``RandomFlip``/``RandomRotation`` layers; called with ``training=True``
        when it accepts that argument.
    sample_weight : array-like of shape (n,), default=None
        Per-image weights (for example class weights), passed to Keras.

    Returns
    -------
    tf.data.Dataset
        Yields ``(images, labels)`` or ``(images, labels, weights)`` batches.

    Examples
    --------
    >>> images = np.zeros((10, 32, 32, 3), dtype=np.uint8)
    >>> batch_images, batch_labels = next(iter(training_dataset(images, np.arange(10), batch_size=4)))
    >>> tuple(batch_images.shape), batch_images.dtype.name
    ((4, 32, 32, 3), 'float32')
    """
    tf = _tf()
    images, labels = _check_inputs(images, labels)
    columns = [images, labels] + ([] if sample_weight is None else [np.asarray(sample_weight, "float32")])
    rows = tf.data.Dataset.range(len(images)).shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return _gather_batches(rows.batch(batch_size), columns, augment)


def evaluation_dataset(images, labels=None, *, batch_size=64):
    """Batches in the original order, without augmentation, for evaluate and predict.

    >>> images = np.zeros((5, 32, 32, 3), dtype=np.uint8)
    >>> [int(batch.shape[0]) for batch in evaluation_dataset(images, batch_size=2)]
    [2, 2, 1]
    """
    tf = _tf()
    images, labels = _check_inputs(images, labels)
    columns = [images] + ([] if labels is None else [labels])
    return _gather_batches(tf.data.Dataset.range(len(images)).batch(batch_size), columns, None)


def _gather_batches(row_batches, columns, augment):
    """Turn batches of row numbers into batches of data, cast to float32 and augmented.

    Shuffling and batching row numbers, then gathering whole batches from the
    arrays held as tensors, is far cheaper than sending every image through
    tf.data one at a time.
    """
    tf = _tf()
    tensors = [tf.constant(column) for column in columns]
    # Sequential maps: each is one cheap vectorised op per batch, prefetching overlaps them with training, and
    # they keep the augmentation's random stream in a fixed order (parallel maps are rewritten to sequential
    # ones anyway once deterministic ops are requested, see skinlib.train.set_seeds).
    dataset = row_batches.map(lambda rows: tuple(tf.gather(tensor, rows) for tensor in tensors))
    dataset = dataset.map(_batch_function(augment))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF  # One device.
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def _batch_function(augment):
    """Return the per-batch map: cast to float32, then augment."""
    tf = _tf()

    def to_float(images, *rest):
        images = tf.cast(images, tf.float32)
        if augment is not None:
            images = _call_augment(augment, images)
        return (images, *rest) if rest else images

    return to_float


def _call_augment(augment, images):
    """Call a Keras layer with training=True, or a plain function as is."""
    import keras

    if isinstance(augment, keras.layers.Layer):
        return augment(images, training=True)
    return augment(images)

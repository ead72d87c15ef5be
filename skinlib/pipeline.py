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


def _check_inputs(images, labels, metadata=None):
    """Check shapes and return the arrays (labels and metadata may be None)."""
    images = np.asarray(images)
    if images.ndim not in (2, 4):
        raise ValueError(f"images must have shape (n, height, width, 3), (n, height, width, channels) for stored "
                         f"feature maps, or (n, features) for features. "
                         f"Got {images.shape} instead.")
    for name, column in (("labels", labels), ("metadata", metadata)):
        if column is not None and np.shape(column)[0] != images.shape[0]:
            raise ValueError(f"images and {name} differ in length: {images.shape[0]} images, "
                             f"{np.shape(column)[0]} {name}.")
    labels = None if labels is None else np.asarray(labels)
    metadata = None if metadata is None else np.asarray(metadata, "float32")
    return images, labels, metadata


def training_dataset(images, labels, *, batch_size=32, seed=0, augment=None, sample_weight=None, metadata=None):
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
    metadata : array-like of shape (n, m), default=None
        A second input (:func:`skinlib.models.metadata_features`): batches
        then carry ``{"pixels": images, "metadata": metadata}`` (``"features"``
        instead of ``"pixels"`` when ``images`` are 2-D feature vectors).

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
    images, labels, metadata = _check_inputs(images, labels, metadata)
    columns = [images, metadata, labels] + ([] if sample_weight is None else [np.asarray(sample_weight, "float32")])
    rows = tf.data.Dataset.range(len(images)).shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return _gather_batches(rows.batch(batch_size), columns, augment)


def evaluation_dataset(images, labels=None, *, batch_size=64, metadata=None):
    """Batches in the original order, without augmentation, for evaluate and predict.

    >>> images = np.zeros((5, 32, 32, 3), dtype=np.uint8)
    >>> [int(batch.shape[0]) for batch in evaluation_dataset(images, batch_size=2)]
    [2, 2, 1]
    """
    tf = _tf()
    images, labels, metadata = _check_inputs(images, labels, metadata)
    columns = [images, metadata] + ([] if labels is None else [labels])
    return _gather_batches(tf.data.Dataset.range(len(images)).batch(batch_size), columns, None)


def _gather_batches(row_batches, columns, augment):
    """Turn batches of row numbers into batches of data, cast to float32 and augmented.

    ``columns`` is ``[inputs, metadata or None, *rest]``. Shuffling and
    batching row numbers, then gathering whole batches from the arrays held
    as tensors, is far cheaper than sending every image through tf.data one at
    a time.
    """
    tf = _tf()
    inputs, metadata, rest = columns[0], columns[1], columns[2:]
    tensors = [tf.constant(column) for column in [inputs, *rest]]
    meta = None if metadata is None else tf.constant(metadata)
    key = "pixels" if inputs.ndim == 4 else "features"
    # Sequential maps: each is one cheap vectorised op per batch, prefetching overlaps them with training, and
    # they keep the augmentation's random stream in a fixed order (parallel maps are rewritten to sequential
    # ones anyway once deterministic ops are requested, see skinlib.train.set_seeds).
    dataset = row_batches.map(lambda rows: tuple(tf.gather(t, rows) for t in tensors)
                              + (() if meta is None else (tf.gather(meta, rows),)))

    def prepare(x, *others):
        x = tf.cast(x, tf.float32)
        if augment is not None:
            x = _call_augment(augment, x)
        if meta is not None:
            *others, batch_meta = others
            x = {key: x, "metadata": batch_meta}
        return (x, *others) if others else x

    dataset = dataset.map(prepare)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF  # One device.
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def _call_augment(augment, images):
    """Call a Keras layer with training=True, or a plain function as is."""
    import keras

    if isinstance(augment, keras.layers.Layer):
        return augment(images, training=True)
    return augment(images)

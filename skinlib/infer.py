"""Inference: class probabilities, test-time augmentation and the features of a frozen base.

Training (:mod:`skinlib.train`), the plots and the final evaluation
(:mod:`skinlib.evaluate`, :mod:`skinlib.final`) and the explanations all
predict through these functions, so that every prediction runs through
:func:`skinlib.pipeline.evaluation_dataset` the same way.
"""

from __future__ import annotations

import numpy as np

TTA_VIEWS = ("identity", "flip_left_right", "flip_up_down", "rotate_180")
"""The test-time views: the image and its three flips (each keeps the image's shape)."""


def predict_proba(model, images, *, metadata=None, batch_size=256):
    """Class probabilities of shape (n, 7), through :func:`skinlib.pipeline.evaluation_dataset`.

    Parameters
    ----------
    model : keras.Model
    images : ndarray
        uint8 or float pixels (n, height, width, 3), or feature vectors (n, features) for a head.
    metadata : ndarray of shape (n, n_metadata), default=None
        The second input of a two-input model.
    batch_size : int, default=256

    Returns
    -------
    ndarray of shape (n, n_classes)
    """
    from skinlib import pipeline

    batches = pipeline.evaluation_dataset(images, batch_size=batch_size, metadata=metadata)
    return model.predict(batches, verbose=0)


def view(images, name):
    """One test-time view of a batch of images (n, height, width, 3).

    >>> view(np.arange(4).reshape(1, 2, 2, 1), "rotate_180")[0, :, :, 0].tolist()
    [[3, 2], [1, 0]]
    """
    images = np.asarray(images)
    steps = {"identity": (slice(None), slice(None)), "flip_left_right": (slice(None), slice(None, None, -1)),
             "flip_up_down": (slice(None, None, -1), slice(None)),
             "rotate_180": (slice(None, None, -1), slice(None, None, -1))}
    if name not in steps:
        raise ValueError(f"view must be one of {list(steps)}. Got {name!r} instead.")
    return images[(slice(None), *steps[name])]


def predict_tta(model, images, *, metadata=None, views=TTA_VIEWS, batch_size=256):
    """Test-time augmentation: the mean of the class probabilities over flipped copies of each image.

    A lesion has no up or left, so the model should say the same of every
    flip; averaging its answers smooths out what it learned by chance about
    orientation. Costs one prediction pass per view.
    """
    total = 0
    for name in views:
        total = total + predict_proba(model, view(images, name), metadata=metadata, batch_size=batch_size)
    return total / len(views)


def predict_shifts(model, images, *, metadata=None, shifts=None, batch_size=256):
    """Class probabilities under each named acquisition shift (:func:`skinlib.acquisition.shift`), one pass each.

    Parameters
    ----------
    model : keras.Model
    images : ndarray of shape (n, height, width, 3), uint8
    metadata : ndarray of shape (n, n_metadata), default=None
        The second input of a two-input model (the same for every shift).
    shifts : dict, default=None
        Shifts by name, as :data:`skinlib.acquisition.SHIFTS` (the default).
    batch_size : int, default=256

    Returns
    -------
    dict
        ``{shift name: ndarray of shape (n, n_classes)}``, in the order of ``shifts``.

    Examples
    --------
    >>> probabilities = predict_shifts(model, images)  # doctest: +SKIP
    >>> probabilities["none"].shape  # doctest: +SKIP
    (1503, 7)
    """
    from skinlib import acquisition

    shifts = acquisition.SHIFTS if shifts is None else shifts
    return {name: predict_proba(model, acquisition.shift(images, name, shifts=shifts), metadata=metadata,
                                batch_size=batch_size) for name in shifts}


def extract_features(base, images, *, batch_size=128, description="features"):
    """Run a frozen base once over ``images`` and return its globally pooled features, with a progress bar.

    Feature extraction: with the base frozen and no augmentation, its output
    for an image never changes, so it is computed once and a new head trains
    on the stored vectors in seconds instead of running the base every epoch.

    Parameters
    ----------
    base : keras.Model
        Pixels in, a feature map out (:func:`skinlib.models.backbone`), or a
        :func:`skinlib.models.classifier` (its pooled features are used).
    images : ndarray of shape (n, height, width, 3)

    Returns
    -------
    ndarray of shape (n, channels), float32
    """
    import keras
    import tensorflow as tf
    from tqdm import tqdm

    from skinlib import pipeline

    if "pool" in [layer.name for layer in base.layers]:  # A classifier: stop at its pooled features.
        pooled = keras.Model(base.inputs[0], base.get_layer("pool").output)
    else:
        pooled = keras.Model(base.inputs, keras.layers.GlobalAveragePooling2D()(base.outputs[0]))
    run = tf.function(lambda batch: pooled(batch, training=False), reduce_retracing=True)
    batches = pipeline.evaluation_dataset(images, batch_size=batch_size)
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # The last, smaller batch retraces; TensorFlow's warning about it is noise here.
    try:
        parts = [run(batch).numpy() for batch in tqdm(batches, desc=description, unit="batch", mininterval=10,
                                                      total=int(batches.cardinality()))]
    finally:
        logger.setLevel(level)
    return np.concatenate(parts).astype("float32")


def feature_splits(base, splits):
    """:func:`extract_features` for every split: a dict like ``splits`` whose "images" are feature vectors.

    The result goes to :func:`skinlib.train.experiment` in place of the
    images, to train a :func:`skinlib.models.head` on features computed once.
    """
    from skinlib.split import SplitImages

    return {name: SplitImages(part.table, extract_features(base, part.images, description=f"{name} features"),
                              part.labels)
            for name, part in splits.items()}


def predict_tta_heads(model, heads, images, *, identity_features=None, views=TTA_VIEWS):
    """:func:`predict_tta` for several heads that share one base: the base runs once per view, not once per head.

    Parameters
    ----------
    model : keras.Model
        A :func:`skinlib.models.classifier`; its pooled features feed the heads.
    heads : dict
        ``{name: (head, metadata)}``: a :func:`skinlib.models.head` on those
        features, with the metadata array of a two-input head (else None).
    images : ndarray of shape (n, height, width, 3)
    identity_features : ndarray, default=None
        The pooled features of the unflipped images, when already computed.

    Returns
    -------
    dict of ndarray of shape (n, 7), by head name
    """
    totals = dict.fromkeys(heads, 0)
    for name in views:
        if name == "identity" and identity_features is not None:
            features = identity_features
        else:
            features = extract_features(model, view(images, name), description=f"{name} features")
        for head_name, (head, metadata) in heads.items():
            totals[head_name] = totals[head_name] + predict_proba(head, features, metadata=metadata)
    return {name: total / len(views) for name, total in totals.items()}

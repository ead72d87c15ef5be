"""Cached multi-view features: run a backbone's frozen lower part once, train its upper part many times.

Fine-tuning a whole backbone on a 2-core CPU spends most of each step on the
lower blocks, whose generic edge and texture filters hardly need to change.
Here the backbone is cut in two (:func:`split_backbone`): the **lower part**
stays frozen and runs **once** over ``K`` seeded views of every training image
(the four flips a 4:3 image allows, each with its own colour jitter, then the
same flips with new jitter, see :func:`make_views`), its feature maps are
stored on disk in float16 (:func:`cached_features`, keyed like the image
cache), and the **upper part**
(the last stages and a new head) trains for many epochs on them, each epoch
drawing one stored view per image (:func:`view_dataset`). The trained upper
part shares its layers with the backbone, so the final model is the usual
pixels-in classifier (:func:`skinlib.models.classifier`).
"""

from __future__ import annotations

from pathlib import Path

FEATURES_VERSION = 1
"""Part of every cache key: raise it when :func:`make_views` or the jitter changes, so old features are not reused."""

CUTS = {
    # The last layer of the frozen lower part: the end of the stride-16 stage; for Lite0 two stages lower, the end of
    # its 40-channel (stride-8) stage, so the 80- and 112-channel stages train too (chosen on validation over three
    # seeds each: benchmarks/results/cut_trial_block4.json against chapter03_block7.json and chapter03_block10.json).
    "mobilenet_025": "conv_pw_11_relu",
    "efficientnet_lite0": "block4_add",
    "efficientnet_lite1": "block14_add",
    "efficientnet_lite2": "block14_add",
}
"""Where :func:`split_backbone` cuts each backbone by default."""


def cut_layer(base):
    """The name of the layer whose output the lower part of ``base`` ends with (:data:`CUTS`)."""
    if base.name not in CUTS:
        raise ValueError(f"no cut known for backbone {base.name!r}; known: {sorted(CUTS)}. Pass cut= explicitly.")
    return CUTS[base.name]


def split_backbone(base, cut=None):
    """Cut ``base`` into a lower and an upper Keras model that share its layers.

    Parameters
    ----------
    base : keras.Model
        From :func:`skinlib.models.backbone` (raw pixels in, feature map out).
    cut : str, default=None
        The layer whose output ends the lower part (:func:`cut_layer` by default).

    Returns
    -------
    lower, upper : keras.Model
        ``upper(lower(pixels))`` equals ``base(pixels)``; training ``upper``
        trains the layers of ``base``.

    Examples
    --------
    >>> from skinlib import models
    >>> base = models.backbone("efficientnet_lite0", weights=None, input_shape=(64, 64, 3))
    >>> lower, upper = split_backbone(base)
    >>> lower.output_shape, upper.input_shape
    ((None, 8, 8, 40), (None, 8, 8, 40))
    """
    import keras

    cut = cut or cut_layer(base)
    middle = base.get_layer(cut).output
    lower = keras.Model(base.inputs[0], middle, name=f"{base.name}_lower")
    upper = keras.Model(middle, base.outputs[0], name=f"{base.name}_upper")
    return lower, upper


VIEWS = ("original", "flipped left-right", "flipped up-down", "rotated 180 degrees")
"""The four views a 4:3 image allows without changing its shape (the flips and the half turn)."""

STREAMS = 3
"""Most jitter streams: view ``v`` is flip ``v % 4`` of :data:`VIEWS` with jitter stream ``v // 4``, so at most
``STREAMS * len(VIEWS)`` (12) stored views per image, every one a new draw of the jitter."""


def make_views(pixels, view, *, seed=0, jitter=1.0, start=0, jpeg=False, zoom=0.2, surround=0.0):
    """View ``view`` of a batch, with seeded acquisition jitter (TensorFlow, float 0-255).

    View ``view`` is the flip ``view % 4`` of :data:`VIEWS`; views 4-7 (and
    8-11) repeat the four flips with new draws of the jitter. ``start`` is the
    index of the batch's first image in its split: with ``seed`` and ``view``
    it seeds each image's jitter, so a view is the same on every run.
    ``jitter=0`` gives the plain flips (for test-time augmentation); ``jpeg=True``
    adds JPEG compression to the jitter, ``zoom`` is its most enlargement at
    jitter 1, and ``surround`` the share of views shown inside a dark dermoscope
    field (:func:`skinlib.acquisition.random_acquisition`).

    Examples
    --------
    >>> import numpy as np
    >>> pixels = np.arange(24, dtype="uint8").reshape(1, 2, 4, 3)
    >>> bool((np.asarray(make_views(pixels, 5, jitter=0)) == pixels[:, :, ::-1]).all())  # view 5: flip 1
    True
    """
    import tensorflow as tf

    from skinlib import acquisition

    if not 0 <= view < STREAMS * len(VIEWS):
        raise ValueError(f"view must be between 0 and {STREAMS * len(VIEWS) - 1}. Got {view!r} instead.")
    images = tf.cast(pixels, tf.float32)
    flip = view % len(VIEWS)
    if flip % 2:
        images = tf.reverse(images, axis=[2])
    if flip // 2:
        images = tf.reverse(images, axis=[1])
    if jitter:
        key = tf.stack([tf.constant(seed * 7919 + view, tf.int64), tf.cast(start, tf.int64)])
        images = acquisition.random_acquisition(images, key, strength=jitter, jpeg=jpeg, zoom=zoom,
                                                 surround=surround)
    return images


def content_key(*parts):
    """A short hash of arrays, weights and settings: the cache key of stored features."""
    import hashlib

    import numpy as np

    digest = hashlib.blake2b(digest_size=12)
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(str(part.shape).encode() + str(part.dtype).encode())
            digest.update(np.ascontiguousarray(part).data)
        elif isinstance(part, (list, tuple)) and part and isinstance(part[0], np.ndarray):
            for array in part:
                digest.update(str(array.shape).encode() + str(array.dtype).encode())
                digest.update(np.ascontiguousarray(array).data)
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()


def cached_features(lower, pixels, *, views=4, seed=0, jitter=1.0, jpeg=False, zoom=0.2, surround=0.0,
                    batch_size=64, cache_dir=None, description="views", progress=True):
    """Feature maps of the frozen ``lower`` part for ``views`` views of every image, stored once in float16.

    Parameters
    ----------
    lower : keras.Model
        From :func:`split_backbone` (pixels in, a feature map out).
    pixels : ndarray of shape (n, height, width, 3), uint8
    views : int, default=4
        How many views per image (1-12): the four flips of :data:`VIEWS` in
        order, then the same flips again with new jitter (:func:`make_views`).
        Beyond four the jitter must not be 0, or the views would repeat.
    seed : int, default=0
        Seed of the jitter.
    jitter : float, default=1.0
        Strength of :func:`skinlib.acquisition.random_acquisition` (0: plain flips).
    jpeg : bool, default=False
        Whether the jitter also saves each view again as JPEG with probability
        1/3 (quality 30-90; ignored without jitter).
    zoom : float, default=0.2
        The jitter's most enlargement at strength 1 (0.2: up to 1.2x; ignored
        without jitter).
    surround : float, default=0.0
        Share of the views the jitter shows inside a random dark dermoscope
        field (ignored without jitter).
    cache_dir : path, default=None
        Folder of the cache (skinlib's image cache folder by default). The file
        name is a hash of the pixels, the weights of ``lower`` and the settings,
        so anything that changes them computes new features.

    Returns
    -------
    ndarray of shape (views, n, h, w, c), float16 (memory-mapped from the cache file)
    """
    import numpy as np
    import tensorflow as tf
    from tqdm import tqdm

    from skinlib import artefacts, images as image_cache

    if not 1 <= views <= STREAMS * len(VIEWS):
        raise ValueError(f"views must be between 1 and {STREAMS * len(VIEWS)}. Got {views!r} instead.")
    if views > len(VIEWS) and not jitter:
        raise ValueError(f"views={views} needs jitter: without it, views beyond {len(VIEWS)} repeat the flips.")
    folder = Path(cache_dir) if cache_dir else image_cache.default_cache_dir() / "features"
    layers = [(type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"})
              for layer in lower.layers]  # Weightless layers (colour constancy, rescaling) count too.
    settings = (views, seed, jitter, batch_size, FEATURES_VERSION) + (("jpeg",) if jpeg and jitter else ())
    settings += (("zoom", zoom),) if jitter and zoom != 0.2 else ()
    settings += (("surround", surround),) if jitter and surround else ()
    key = content_key(pixels, lower.get_weights(), layers, *settings)  # Defaults: older caches' keys.
    path = folder / f"{lower.name}_{key}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r")
    def lower_view(view):
        def run(batch, start):
            return lower(make_views(batch, view, seed=seed, jitter=jitter, start=start, jpeg=jpeg, zoom=zoom,
                                    surround=surround), training=False)

        return tf.function(run)

    runs = [lower_view(view) for view in range(views)]  # One graph per view: the flips are fixed, not conditions.
    shape = (views, len(pixels), *lower.output_shape[1:])
    stored = np.empty(shape, dtype="float16")
    steps = [(view, start) for view in range(views) for start in range(0, len(pixels), batch_size)]
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # The last, smaller batch of each view retraces; TensorFlow's warning about it is noise.
    try:
        for view, start in tqdm(steps, desc=description, unit="batch", mininterval=10, disable=not progress):
            batch = tf.constant(pixels[start:start + batch_size])
            stored[view, start:start + batch_size] = runs[view](batch, tf.constant(start, tf.int64)).numpy()
    finally:
        logger.setLevel(level)
    folder.mkdir(parents=True, exist_ok=True)
    artefacts.write_atomic(path, lambda handle: np.save(handle, stored))
    return np.load(path, mmap_mode="r")


def view_dataset(stored, labels, *, epochs, batch_size=64, seed=0, sampling="shuffle", class_power=1.0,
                 mixup=0.0, class_weight=None, targets=None, image_weight=None):
    """Batches of stored views for ``epochs`` epochs: each epoch draws one view per image at random.

    Parameters
    ----------
    stored : ndarray of shape (views, n, h, w, c)
        From :func:`cached_features`.
    labels : ndarray of shape (n,)
    epochs : int
    sampling : {"shuffle", "balanced"}, default="shuffle"
        Every image once per epoch in a random order; or ``n`` draws per epoch
        with probabilities that make each class ``count ** (1 - class_power)``
        likely (``class_power=1``: every class equally often).
    mixup : float, default=0.0
        Above 0: mixup on the stored maps (manifold mixup at the cut). Each
        example is blended with a partner drawn from its batch (each with its
        own view; a shuffle of the batch, so now and then the example itself)
        by a weight ``lam`` drawn from Beta(mixup, mixup), and so are their
        one-hot labels. 0: no mixing, and the batches are exactly those drawn
        without this option.
    class_weight : dict, default=None
        With ``mixup``: each example's loss weight is the blend of the two
        classes' weights (:func:`skinlib.train.class_weights`), returned as a
        third element; Keras's own ``class_weight`` would take only the
        larger part's class. With ``targets``: each example's weight is its
        label's, returned the same way (Keras's would take the target's
        largest class). Not used otherwise.
    targets : ndarray of shape (views, n, classes), default=None
        Soft targets for each stored view (a teacher's probabilities, for
        knowledge distillation, Hinton et al. 2015): each example's target is
        that of the view drawn, in place of its label. Not with ``mixup``.
    image_weight : ndarray of shape (n,), default=None
        Each image's own loss weight, times its class's in ``class_weight``
        (1 without it), returned as a third element: to weight images within
        a class. Not with ``mixup`` or ``targets``.

    Returns
    -------
    tf.data.Dataset, int
        The batches of all epochs and the number of steps per epoch. Without
        ``mixup`` or ``targets``: ``(features, labels)``, float32 features and
        class indices; with either: ``(features, targets)`` or, with
        ``class_weight``, ``(features, targets, weights)``, targets of shape (batch, 7);
        with ``image_weight``: ``(features, labels, weights)``.

    Examples
    --------
    >>> import numpy as np
    >>> stored = np.random.default_rng(0).normal(size=(2, 8, 1, 1, 3)).astype("float16")
    >>> data, steps = view_dataset(stored, np.arange(8) % 7, epochs=1, batch_size=4, mixup=0.4,
    ...                            class_weight={k: 1.0 for k in range(7)})
    >>> x, targets, weights = next(iter(data))
    >>> steps, tuple(targets.shape), bool(np.allclose(targets.numpy().sum(axis=1), 1)), weights.numpy().tolist()
    (2, (4, 7), True, [1.0, 1.0, 1.0, 1.0])
    >>> soft = np.full((2, 8, 7), 1 / 7, "float32")
    >>> x, targets, weights = next(iter(view_dataset(stored, np.arange(8) % 7, epochs=1, batch_size=4, targets=soft,
    ...                                              class_weight={k: k + 1.0 for k in range(7)})[0]))
    >>> bool(np.allclose(targets.numpy(), 1 / 7)), sorted(weights.numpy().tolist()) != [1.0] * 4
    (True, True)
    >>> data, _ = view_dataset(stored, np.zeros(8, int), epochs=1, batch_size=8, class_weight={0: 2.0},
    ...                        image_weight=np.arange(8.0))
    >>> x, y, weights = next(iter(data))
    >>> sorted(weights.numpy().tolist())
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]
    """
    import numpy as np
    import tensorflow as tf

    if sampling not in ("shuffle", "balanced"):
        raise ValueError(f"sampling must be 'shuffle' or 'balanced'. Got {sampling!r} instead.")
    _check_mixup(mixup)
    labels = np.asarray(labels)
    views, count = stored.shape[0], stored.shape[1]
    if targets is not None:
        if mixup:
            raise ValueError("targets with mixup: distil on the views as they are, or mix their labels, not both.")
        if np.shape(targets)[:2] != (views, count):
            raise ValueError(f"targets of shape {np.shape(targets)} do not match the stored views "
                             f"({views} views of {count} images): one target per view of each image.")
    if image_weight is not None:
        image_weight = _check_image_weight(image_weight, count, mixup=mixup, targets=targets)
    rng = np.random.default_rng(seed)
    if sampling == "balanced":
        per_class = np.bincount(labels, minlength=labels.max() + 1).astype("float64")
        weights = per_class[labels] ** -class_power
        rows = [rng.choice(count, size=count, p=weights / weights.sum()) for _ in range(epochs)]
    else:
        rows = [rng.permutation(count) for _ in range(epochs)]
    steps = count // batch_size
    if steps < 1:
        raise ValueError(f"batch_size ({batch_size}) must not exceed the number of images ({count}).")
    rows = np.concatenate([order[: steps * batch_size] for order in rows])
    picks = rng.integers(0, views, size=len(rows))
    table = tf.constant(np.asarray(stored))
    y = tf.constant(labels)

    def gather(view, row):
        return tf.cast(tf.gather_nd(table, tf.stack([view, row], axis=1)), tf.float32), tf.gather(y, row)

    def by_class(n_classes):  # class_weight as a vector, 1 for a class it lacks.
        return tf.constant([float((class_weight or {}).get(k, 1.0)) for k in range(n_classes)])

    if targets is not None:
        soft = tf.constant(np.asarray(targets, "float32"))
        weight = None if class_weight is None else by_class(soft.shape[-1])

        def teach(view, row):
            x, label = gather(view, row)
            target = tf.gather_nd(soft, tf.stack([view, row], axis=1))
            return (x, target) if weight is None else (x, target, tf.gather(weight, label))

        dataset = tf.data.Dataset.from_tensor_slices((picks, rows)).batch(batch_size).map(teach)
        return dataset.prefetch(tf.data.AUTOTUNE), steps
    if image_weight is not None:
        weight, own = by_class(int(labels.max()) + 1), tf.constant(image_weight)

        def weigh(view, row):
            x, label = gather(view, row)
            return x, label, tf.gather(weight, label) * tf.gather(own, row)

        dataset = tf.data.Dataset.from_tensor_slices((picks, rows)).batch(batch_size).map(weigh)
        return dataset.prefetch(tf.data.AUTOTUNE), steps
    if not mixup:
        dataset = tf.data.Dataset.from_tensor_slices((picks, rows)).batch(batch_size).map(gather)
        return dataset.prefetch(tf.data.AUTOTUNE), steps
    # Drawn after the draws above, so that the examples themselves are those of the run without mixup.
    partner = np.argsort(rng.random((len(rows) // batch_size, batch_size)), axis=1)  # A shuffle within each batch.
    partner = (partner + np.arange(len(partner))[:, None] * batch_size).ravel()
    lam = rng.beta(mixup, mixup, size=len(rows)).astype("float32")
    n_classes = 7
    weight = None if class_weight is None else by_class(n_classes)

    def mix(view, row, other_view, other_row, lam):
        (x, label), (x_other, label_other) = gather(view, row), gather(other_view, other_row)
        share = lam[:, None]
        targets = share * tf.one_hot(label, n_classes) + (1 - share) * tf.one_hot(label_other, n_classes)
        lam = tf.reshape(lam, [-1] + [1] * (x.shape.rank - 1))  # Maps (batch, h, w, c) or pooled (batch, c).
        features = lam * x + (1 - lam) * x_other
        if weight is None:
            return features, targets
        return features, targets, tf.linalg.matvec(targets, weight)  # The blend of the two classes' weights.

    dataset = tf.data.Dataset.from_tensor_slices((picks, rows, picks[partner], rows[partner], lam))
    return dataset.batch(batch_size).map(mix).prefetch(tf.data.AUTOTUNE), steps


def _check_image_weight(image_weight, count, *, mixup, targets):
    """``image_weight`` as float32, or a ValueError that says what is wrong with it."""
    import numpy as np

    if mixup or targets is not None:
        raise ValueError("image_weight with mixup or targets: weight the images of plain labels only.")
    image_weight = np.asarray(image_weight, dtype="float32")
    if image_weight.shape != (count,):
        raise ValueError(f"image_weight of shape {image_weight.shape} does not match the stored views' "
                         f"{count} images: one weight per image.")
    if not np.isfinite(image_weight).all():
        raise ValueError("image_weight must be finite: it holds NaN or infinity.")
    if (image_weight < 0).any():
        raise ValueError("image_weight must be 0 or more: a negative weight would push the loss up.")
    if not image_weight.any():
        raise ValueError("image_weight is all 0: not one image would count in the loss.")
    return image_weight


def _check_mixup(mixup):
    """Refuse a mixup parameter that is not a finite number of 0 or more (True, NaN, None, -1...)."""
    _check_non_negative("mixup", mixup, "the Beta distribution's parameter is 0 (no mixup) or more")


def _check_non_negative(name, value, meaning):
    """Raise ``ValueError("<name>=<value>: <meaning>.")`` unless ``value`` is a finite real number >= 0, not a bool."""
    import numbers

    if isinstance(value, bool) or not (isinstance(value, numbers.Real) and 0 <= value < float("inf")):  # Not NaN.
        raise ValueError(f"{name}={value!r}: {meaning}.")


BATCH_NORM = ("frozen", "trained")
"""How :func:`top_model` treats the BatchNormalization layers of the upper part: ``"frozen"`` keeps them in
inference mode with their ImageNet statistics (the usual advice for fine-tuning); ``"trained"`` normalises each
batch by its own statistics while training, updates the moving statistics and trains their scale and offset, so
the upper blocks adapt to dermoscopic images."""


def _trains(layer, batch_norm):
    """Whether ``layer`` of a trained upper part trains: all but BatchNormalization, which trains only when ``"trained"``."""
    import keras

    return batch_norm == "trained" or not isinstance(layer, keras.layers.BatchNormalization)


def top_model(upper, n_classes=7, *, dropout=0.3, n_features=None, batch_norm="frozen"):
    """The upper part of a backbone with a new :func:`skinlib.models.head`, trainable (BatchNorm as ``batch_norm`` says).

    Takes stored feature maps (input ``"stored"``); with ``batch_norm="frozen"``
    BatchNormalization stays in inference mode with its ImageNet statistics, as
    in fine-tuning; with ``"trained"`` it trains (:data:`BATCH_NORM`). With
    ``upper=None`` it is the head alone, on ``n_features`` pooled features
    (:func:`pool_views`).
    """
    import keras

    from skinlib import models

    if batch_norm not in BATCH_NORM:
        raise ValueError(f"batch_norm must be one of {BATCH_NORM}. Got {batch_norm!r} instead.")
    if upper is None:
        return models.head(n_features, n_classes, dropout=dropout)
    stored = keras.Input(shape=upper.input_shape[1:], name="stored")
    # BatchNorm's mode follows layer.trainable, set below: in Keras 3 a frozen BatchNormalization layer runs in
    # inference mode, while a training=False given to this call would not survive fit(), which passes its own.
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(upper(stored))
    top = models.head(int(pooled.shape[-1]), n_classes, dropout=dropout)
    upper.trainable = True
    for layer in upper.layers:
        layer.trainable = _trains(layer, batch_norm)
    return keras.Model(stored, top(pooled), name=f"{upper.name}_top")


def pool_views(upper, stored, *, batch_size=128):
    """The frozen ``upper`` part's globally pooled features of every stored view: shape (views, n, channels).

    With these, a head alone trains in seconds, which makes choices such as the
    class balancing cheap to compare over several seeds.
    """
    import keras
    import numpy as np

    import tensorflow as tf

    from skinlib import pipeline

    pooled = keras.Model(upper.inputs, keras.layers.GlobalAveragePooling2D()(upper.outputs[0]))
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # Each view's last batch retraces; the warning is noise here.
    try:
        return np.stack([pooled.predict(pipeline.evaluation_dataset(np.asarray(view), batch_size=batch_size),
                                        verbose=0) for view in stored]).astype("float32")
    finally:
        logger.setLevel(level)


LOSSES = ("cross_entropy", "focal", "logit_adjusted")
"""The training losses :func:`loss_function` knows."""


def loss_function(name, *, label_smoothing=0.0, gamma=2.0, prior=None, tau=1.0):
    """The training loss by name, on one-hot (or mixup's blended) labels and the model's probabilities.

    ``"cross_entropy"``; ``"focal"`` (Lin et al. 2017); ``"logit_adjusted"``
    (Menon et al. 2021): cross-entropy of the probabilities re-weighted by the
    class ``prior`` to the power ``tau``, i.e. of ``softmax(logits + tau * log
    prior)``. Training so, the model's own probabilities (used unchanged at
    prediction) favour no class for being frequent: the balancing sits in the
    loss, not in weights on the images.

    >>> import numpy as np
    >>> loss = loss_function("logit_adjusted", prior=[0.9, 0.1])
    >>> y, p = np.array([[0.0, 1.0]]), np.array([[0.5, 0.5]])
    >>> round(float(loss(y, p)[0]), 4)  # -log(0.1 / (0.9 + 0.1)): the rare class must earn its probability.
    2.3026
    """
    import keras

    if name == "cross_entropy":
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    if name == "focal":
        return keras.losses.CategoricalFocalCrossentropy(gamma=gamma, label_smoothing=label_smoothing)
    if name == "logit_adjusted":
        if prior is None:
            raise ValueError("loss='logit_adjusted' needs the class prior (the training split's class shares).")
        if label_smoothing:  # A target floor on every class, which prediction then divides by its share.
            raise ValueError("loss='logit_adjusted' takes no label smoothing: smoothing the adjusted targets leaves "
                             "each rare class a floor that, divided by its small share, outweighs the true class.")
        return _logit_adjusted(prior, tau)
    raise ValueError(f"loss must be one of {LOSSES}. Got {name!r} instead.")


def _logit_adjusted(prior, tau):
    """Cross-entropy of ``softmax(logits + tau * log prior)``, from the model's probabilities; one value per image."""
    import numpy as np
    from keras import ops

    shift = [tau * float(value) for value in np.log(np.asarray(prior, dtype="float64"))]

    def loss(y_true, y_pred):
        log_p = ops.log(ops.clip(y_pred, 1e-7, 1.0)) + ops.convert_to_tensor(shift, dtype=y_pred.dtype)
        return -ops.sum(y_true * (log_p - ops.logsumexp(log_p, axis=-1, keepdims=True)), axis=-1)

    return loss


def with_malignant_term(loss, weight, malignant=None):
    """``loss`` plus ``weight`` times the binary cross-entropy of P(malignant), one value per image.

    P(malignant) is the summed probability of the ``malignant`` class indices
    (None: akiec, bcc and mel, :data:`skinlib.metrics.MALIGNANT_INDEX`), the score that the
    malignant AUC and the checker's screening threshold read. Plain
    cross-entropy charges mistaking a melanoma for a nevus no more than for a
    basal cell carcinoma; this term charges a mistake more when it crosses the line
    between malignant and benign. Its target is the unsmoothed malignant label (with mixup, the blend's
    malignant share).

    >>> import numpy as np, keras
    >>> loss = with_malignant_term(keras.losses.CategoricalCrossentropy(), 1.0, malignant=(0,))
    >>> y, p = np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])
    >>> round(float(loss(y, p)[0]), 4)  # -log(0.5) twice: once as a class, once as malignant.
    1.3863
    """
    from keras import ops

    from skinlib.metrics import MALIGNANT_INDEX

    malignant = list(MALIGNANT_INDEX if malignant is None else malignant)
    per_image = getattr(loss, "call", loss)  # A Keras Loss object's call() keeps one value per image.

    def combined(y_true, y_pred):
        target = ops.sum(ops.take(y_true, malignant, axis=-1), axis=-1)
        score = ops.clip(ops.sum(ops.take(y_pred, malignant, axis=-1), axis=-1), 1e-7, 1.0 - 1e-7)
        binary = -(target * ops.log(score) + (1.0 - target) * ops.log(1.0 - score))
        return per_image(y_true, y_pred) + weight * binary

    return combined


def class_prior(labels, n_classes=7):
    """Each class's share of ``labels``, counting an absent class once (so its log is finite, as in smoke runs).

    >>> class_prior([0, 0, 0, 1], n_classes=3).round(2).tolist()
    [0.6, 0.2, 0.2]
    """
    import numpy as np

    counts = np.maximum(np.bincount(np.asarray(labels), minlength=n_classes), 1)
    return counts / counts.sum()


def train_top(upper, stored, labels, validation, *, name, epochs=10, batch_size=64, learning_rate=3e-4,
              sampling="shuffle", class_power=0.5, loss="cross_entropy", label_smoothing=0.1, patience=4, seed=0,
              head=None, verbose=True, tau=1.0, batch_norm="frozen", ema=0.0, malignant_weight=0.0, mixup=0.0,
              targets=None, image_weight=None):
    """Train the upper part of a backbone and a new head on stored views, keeping the best validation epoch.

    With ``validation=None`` (a refit on every labelled image, when nothing is
    left to choose an epoch on) it trains all ``epochs`` and keeps the last.

    Parameters
    ----------
    upper : keras.Model or None
        From :func:`split_backbone`; its layers are trained in place (BatchNorm
        stays frozen). None: train a head alone on pooled features.
    stored : ndarray of shape (views, n, h, w, c), or (views, n, c) with ``upper=None``
        Training views from :func:`cached_features` (or :func:`pool_views`).
    labels : ndarray of shape (n,)
    validation : tuple (stored maps, labels), or None
        One view of each validation image, shape (n_val, h, w, c). None: no
        scoring and no early stopping; the last epoch is kept (``patience``
        unused), and the run's ``validation_probabilities`` are None.
    name : str
    epochs : int, default=10
    learning_rate : float, default=3e-4
        Peak of a one-cycle schedule (warm-up over 30% of the steps, then cosine decay).
    sampling : {"shuffle", "balanced"}, default="shuffle"
        :func:`view_dataset`'s sampling.
    class_power : float, default=0.5
        With ``"shuffle"``: class weights ``(n / (7 count)) ** class_power`` in
        the loss (0: none); with ``"balanced"``: the sampling's power.
    loss : {"cross_entropy", "focal", "logit_adjusted"}, default="cross_entropy"
        ``"logit_adjusted"`` takes its prior from ``labels`` (the class shares); it needs ``class_power=0``,
        ``sampling="shuffle"`` and ``label_smoothing=0``.
    tau : float, default=1.0
        The power of the prior in the logit-adjusted loss (:func:`loss_function`).
    batch_norm : {"frozen", "trained"}, default="frozen"
        The upper part's BatchNormalization (:data:`BATCH_NORM`).
    label_smoothing : float, default=0.1
    patience : int, default=4
        Epochs without a better validation balanced accuracy before stopping.
    ema : float, default=0.0
        Above 0: the momentum of an exponential moving average of the trained
        weights, updated every step (Keras's ``use_ema``); each epoch is scored,
        and the best one kept, with the average in place of the weights
        (``keras.callbacks.SwapEMAWeights``). 0: the weights themselves.
    malignant_weight : float, default=0.0
        Above 0: the loss gains this times the binary cross-entropy of
        P(malignant) (:func:`with_malignant_term`); not with ``"logit_adjusted"``.
        0: the loss alone. :func:`train_and_save` records it (and ``ema``) when not 0.
    mixup : float, default=0.0
        Above 0: the Beta parameter of mixup on the stored maps
        (:func:`view_dataset`), class weights blended as the labels are.
        0: no mixup. :func:`train_and_save` records it when not 0. With it,
        the history's training ``loss`` and ``accuracy`` are on blended
        examples (accuracy against the larger part's class): not comparable
        with a run without mixup; the validation scores are.
    targets : ndarray of shape (views, n, 7), default=None
        Soft targets for the stored views (:func:`view_dataset`; a teacher's
        probabilities, for distillation) in place of the labels, which then
        only weight the examples (``sampling`` and ``class_power`` as without
        them) and score nothing; label smoothing applies to the targets.
        Not with ``mixup`` or ``"logit_adjusted"``.
    image_weight : ndarray of shape (n,), default=None
        Each training image's loss weight, times its class weight
        (:func:`view_dataset`): to weight images within a class. Not with
        ``mixup`` or ``targets``.
    head : keras.Model, default=None
        A head already trained on the frozen upper part's pooled features
        (the ``model`` of a :func:`train_top` run with ``upper=None``): its
        weights start the new head, so the first gradients reaching the upper
        blocks carry sense rather than a random head's noise (the two stages
        of transfer learning).

    Returns
    -------
    skinlib.train.Run
        ``model`` is the top model (stored maps in); the best epoch's weights
        are in ``upper`` and the head, so :func:`skinlib.models.classifier`
        of the backbone and ``run.model.get_layer("head")`` is the pixels-in model.
    """
    import time

    import keras
    import pandas as pd
    import tensorflow as tf

    from skinlib import train

    if loss == "logit_adjusted" and (class_power or sampling != "shuffle"):
        raise ValueError("loss='logit_adjusted' balances in the loss: use it with sampling='shuffle' and "
                         "class_power=0, not on top of class weights or balanced sampling.")
    if not 0 <= ema < 1:
        raise ValueError(f"ema={ema!r}: the moving average's momentum lies in [0, 1) (0: no average).")
    _check_non_negative("malignant_weight", malignant_weight, "a weight of the malignant term is 0 or more")
    _check_mixup(mixup)
    if targets is not None and loss == "logit_adjusted":
        raise ValueError("targets with loss='logit_adjusted': a teacher's probabilities carry its own balance; "
                         "distil with cross_entropy.")
    if validation is None and ema:
        raise ValueError("ema with validation=None: the moving average is kept by the epoch scored best on "
                         "validation; a refit without validation trains the weights themselves (ema=0).")
    if malignant_weight and loss == "logit_adjusted":
        raise ValueError("malignant_weight with loss='logit_adjusted': the term would read the unadjusted "
                         "probabilities and pull P(malignant) back toward the training shares.")
    train.set_seeds(seed)
    model = top_model(upper, n_features=stored.shape[-1], batch_norm=batch_norm)
    if head is not None:
        model.get_layer("head").set_weights(head.get_weights())
    weights = train.class_weights(labels, power=class_power) if sampling == "shuffle" and class_power else None
    data, steps = view_dataset(stored, labels, epochs=epochs, batch_size=batch_size, seed=seed, sampling=sampling,
                               class_power=class_power, mixup=mixup, class_weight=weights, targets=targets,
                               image_weight=image_weight)
    if mixup or targets is not None:
        weights = None  # Each example carries its weight (view_dataset).
    elif image_weight is not None:
        weights = None  # Each example carries its class's weight times its own (view_dataset).
        data = data.map(lambda x, y, w: (x, tf.one_hot(y, 7), w))
    else:
        data = data.map(lambda x, y: (x, tf.one_hot(y, 7)))
    rate = train.learning_rate_schedule("one_cycle", learning_rate, steps * epochs)
    prior = class_prior(labels) if loss == "logit_adjusted" else None
    optimizer = keras.optimizers.Adam(rate, use_ema=ema > 0, ema_momentum=ema)
    objective = loss_function(loss, label_smoothing=label_smoothing, prior=prior, tau=tau)
    if malignant_weight:
        objective = with_malignant_term(objective, malignant_weight)
    model.compile(optimizer=optimizer, loss=objective, metrics=["accuracy"])
    if validation is None:  # A refit: every epoch, the last one kept.
        scorer, watch = None, []
    else:
        scorer = train.validation_callback(*validation, verbose=verbose)
        stopper = keras.callbacks.EarlyStopping("val_balanced_accuracy", mode="max", patience=patience,
                                                restore_best_weights=True, verbose=0)
        # The swap goes first, so that the scorer scores the average and the stopper keeps it.
        swap = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []
        watch = [*swap, scorer, stopper]
    begin = time.perf_counter()
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # Predicting after each epoch retraces tf.functions: noise here.
    try:
        history = model.fit(data, epochs=epochs, steps_per_epoch=steps, class_weight=weights,
                            callbacks=watch, verbose=2 if verbose and scorer is None else 0, shuffle=False)
    finally:
        logger.setLevel(level)
    table = pd.DataFrame(history.history).rename_axis("epoch")
    table.index = table.index + 1
    best = len(table) if scorer is None else int(table["val_balanced_accuracy"].idxmax())
    return train.Run(name=name, model=model, history=table.round(5), seconds=time.perf_counter() - begin,
                     best_epoch=best, validation_probabilities=None if scorer is None else scorer.probabilities[best])


BALANCING = {
    "class weights, power 0.5": dict(sampling="shuffle", class_power=0.5),
    "class weights, power 1": dict(sampling="shuffle", class_power=1.0),
    "balanced sampling": dict(sampling="balanced", class_power=1.0),
    "focal loss": dict(sampling="shuffle", class_power=0.0, loss="focal"),
}
"""Chapter 03's class-balancing options: :func:`train_top` settings by name."""


def compare_heads(pooled, labels, validation, *, options=None, seeds=(0, 1, 2), epochs=30, learning_rate=1e-3,
                  label_smoothing=0.1, patience=6):
    """Train a head per balancing option and seed on pooled stored views, and score each on validation.

    A head trains in seconds on :func:`pool_views`' features, so options can be
    compared over several seeds before the upper blocks train with one of them.

    Parameters
    ----------
    pooled : ndarray of shape (views, n, channels)
    labels : ndarray of shape (n,)
    validation : tuple (pooled features of shape (n_val, channels), labels)
    options : dict, default=None
        Name to :func:`train_top` settings (:data:`BALANCING` by default); an
        option's own ``label_smoothing`` wins over the argument.
    seeds : iterable of int, default=(0, 1, 2)

    Returns
    -------
    heads : dict
        ``(option, seed)`` to its :class:`skinlib.train.Run` (best validation epoch).
    scores : pandas.DataFrame
        :func:`skinlib.metrics.classification_metrics` of each head, indexed by ``(option, seed)``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(70) % 7
    >>> pooled = (np.eye(7)[y] + np.random.default_rng(0).normal(0, 0.3, (2, 70, 7))).astype("float32")
    >>> heads, scores = compare_heads(pooled, y, (pooled[0], y), options={"none": dict(class_power=0.0)},
    ...                               seeds=(0, 1), epochs=20, learning_rate=0.05)
    >>> list(scores.index), float(scores.loc[("none", 0), "balanced_accuracy"]) > 1 / 7
    ([('none', 0), ('none', 1)], True)
    """
    import pandas as pd

    from skinlib import metrics

    heads, scores = {}, {}
    for option, settings in (BALANCING if options is None else options).items():
        for seed in seeds:
            heads[(option, seed)] = run = train_top(
                None, pooled, labels, validation, name=option, epochs=epochs, learning_rate=learning_rate,
                patience=patience, seed=seed, verbose=False, **{"label_smoothing": label_smoothing, **settings})
            scores[(option, seed)] = metrics.classification_metrics(validation[1], run.validation_probabilities)
    return heads, pd.DataFrame(scores).T


def predict_views(model, stored, *, batch_size=256):
    """Class probabilities of a top model for every stored view, averaged over the views (test-time augmentation).

    ``stored`` has shape (views, n, h, w, c); returns (n, classes), float32.
    """
    import numpy as np
    import tensorflow as tf

    from skinlib import pipeline

    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # Each view's last batch retraces; the warning is noise here.
    try:
        return np.mean([model.predict(pipeline.evaluation_dataset(np.asarray(view), batch_size=batch_size),
                                      verbose=0) for view in stored], axis=0)
    finally:
        logger.setLevel(level)


def train_and_save(name, base, upper, stored, labels, validation_views, validation_labels, *, folder, notebook,
                   extra=None, **options):
    """:func:`train_top`, then save the pixels-in classifier, its validation metrics and its TTA metrics.

    Parameters
    ----------
    name : str
        Run name: ``<name>.keras``, its history and its rows (``name`` and
        ``<name>_tta``) in the results table.
    base, upper : keras.Model
        The backbone and its upper part (:func:`split_backbone`).
    stored, labels
        Training views (:func:`cached_features`) and labels.
    validation_views : ndarray of shape (4, n_val, h, w, c)
        The four plain flips of each validation image (``jitter=0``): the first
        scores every epoch, all four give the TTA score.
    validation_labels : ndarray of shape (n_val,)
    folder, notebook : as in :func:`skinlib.train.save_run`
    **options
        Passed to :func:`train_top`.

    Returns
    -------
    experiment : skinlib.train.Experiment
        Its model takes pixels (``base`` with the trained head).
    tta : ndarray of shape (n_val, 7)
        Validation probabilities averaged over the four flips.
    """
    import dataclasses

    import numpy as np

    from skinlib import artefacts, metrics, train

    run = train_top(upper, stored, labels, (np.asarray(validation_views[0]), validation_labels), name=name, **options)
    top = run.model
    run = dataclasses.replace(run, model=_pixels_in(base, upper, top, name, options.get("batch_norm", "frozen")))
    scores = metrics.classification_metrics(validation_labels, run.validation_probabilities)
    size = "x".join(str(side) for side in base.input_shape[1:3])
    changed = {key: options[key] for key in ("ema", "malignant_weight", "mixup") if options.get(key)}  # Where not 0.
    train.save_run(run, scores, folder=folder, notebook=notebook,
                   extra={"input_size": size, "train_images": len(labels), "stage": "cached views", **changed,
                          **(extra or {})})
    tta = predict_views(top, validation_views)
    artefacts.record_metrics(f"{name}_tta", metrics.classification_metrics(validation_labels, tta), folder=folder,
                             notebook=notebook, extra={"stage": "test-time augmentation"})
    experiment = train.Experiment(run=run, metrics=scores, labels=np.asarray(validation_labels),
                                  probabilities=run.validation_probabilities)
    return experiment, tta


def _pixels_in(base, upper, top, name, batch_norm):
    """The backbone with a trained top model's head: the pixels-in classifier, its trained layers marked so."""
    from skinlib import models

    model = models.classifier(base, top.get_layer("head"), name=name)
    trained = {id(layer) for layer in upper.layers}
    base.trainable = True  # Mark what was trained, so the saved counts say so.
    for layer in base.layers:
        layer.trainable = id(layer) in trained and _trains(layer, batch_norm)
    return model


def refit(name, base, upper, stored, labels, **options):
    """:func:`train_top` without validation (all ``epochs``, the last kept): a recipe refitted on more images.

    For a recipe whose epochs and settings were chosen on validation, trained
    again on the training and validation images together, where no image is
    left to choose an epoch on. Nothing is saved and nothing is scored here:
    a model trained on the validation images has no validation score.

    Parameters
    ----------
    name : str
    base, upper : keras.Model
        The backbone and its upper part (:func:`split_backbone`).
    stored, labels
        The stored views (:func:`cached_features`) of every image it learns
        from, and their labels.
    **options
        Passed to :func:`train_top` (not ``ema``).

    Returns
    -------
    skinlib.train.Run
        Its model takes pixels (``base`` with the trained head);
        ``best_epoch`` is the last, ``validation_probabilities`` None.

    Examples
    --------
    The validation images need stored views made as the training images'
    were (the same jitter settings, their own seed), not the plain flips
    that score TTA.

    >>> base = models.backbone("efficientnet_lite0", input_shape=(150, 200, 3))  # doctest: +SKIP
    >>> lower, upper = split_backbone(base)  # doctest: +SKIP
    >>> settings = dict(views=4, jitter=1.0, zoom=0.7, surround=0.5)  # as for the training views
    >>> stored = cached_features(lower, x_train, seed=0, **settings)  # doctest: +SKIP
    >>> stored_more = cached_features(lower, x_val, seed=1, **settings)  # doctest: +SKIP
    >>> run = refit("03_refit", base, upper, np.concatenate([stored, stored_more], axis=1),
    ...             np.concatenate([y_train, y_val]), epochs=10, class_power=1.0)  # doctest: +SKIP
    """
    import dataclasses

    run = train_top(upper, stored, labels, None, name=name, **options)
    return dataclasses.replace(run, model=_pixels_in(base, upper, run.model, name, options.get("batch_norm", "frozen")))


def save_refit(source, runs, *, folder, details=None):
    """Save :func:`refit` runs of the validated run ``source`` as its refit: one model, or one that averages them.

    ``source`` is the run (or saved ensemble of seeds) whose recipe they repeat
    on more images; :func:`skinlib.artefacts.save_refit` ties the refit to it,
    and ``skinlib.final.choose(..., refit=True)`` then uses the refit where the
    rule chooses ``source``. Several runs are saved as one model that averages
    them, named ``<source>_refit``; a single run is saved as it is, so name it
    ``<source>_refit``. The record keeps each run's epochs, seconds and
    history (loss and accuracy on the images it learnt from), and
    ``details`` (what they were trained on: ``train_images``, ...).

    Returns
    -------
    str
        The refit's name, ``<source>_refit``.

    Examples
    --------
    >>> runs = [refit(f"03_views_seed{s}_refit", *build(), stored, y, seed=s) for s in range(3)]  # doctest: +SKIP
    >>> save_refit("03_ensemble", runs, folder=folder)  # doctest: +SKIP
    '03_ensemble_refit'
    """
    from skinlib import artefacts, models

    runs = list(runs)
    if not runs:
        raise ValueError(f"no refit runs to save for {source!r}.")
    name = artefacts.refit_name(source)
    model = runs[0].model if len(runs) == 1 else models.ensemble([run.model for run in runs], name=name)
    record = {"runs": {run.name: {"epochs": len(run.history), "seconds": round(run.seconds, 1),
                                  "history": run.history.to_dict("list")} for run in runs}, **(details or {})}
    return artefacts.save_refit(model, source, folder=folder, details=record)


def save_ensemble(name, experiments, tta, validation_labels, *, folder, notebook):
    """Save the seeds of one recipe as one model that averages them, with its validation rows.

    The model (:func:`skinlib.models.ensemble`) is an ordinary ``<name>.keras``:
    chapter 04 and the checker read it like any classifier. Its rows in the
    results table: ``name`` (the mean of the members' one-pass validation
    probabilities) and ``<name>_tta`` (the mean of their TTA probabilities),
    each naming its members, which chapter 04 then no longer weighs one by one
    (:func:`skinlib.final.candidates`). Once the ensemble and its rows are
    written, the members' own model files (``artefacts.MODEL_SUFFIXES``) are removed
    (their rows, histories and metrics stay): their weights live on inside it, and
    :func:`skinlib.models.members` gives each back as a model.

    Parameters
    ----------
    name : str
    experiments : dict of str to skinlib.train.Experiment
        The seeds, from :func:`train_and_save` (their models take pixels).
    tta : dict of str to ndarray
        Each seed's validation TTA probabilities, from :func:`train_and_save`.
    validation_labels : ndarray of shape (n_val,)
    folder, notebook : as in :func:`skinlib.train.save_run`

    Returns
    -------
    plain, tta : ndarray of shape (n_val, 7)
        The ensemble's validation probabilities, one pass and with TTA.

    Examples
    --------
    >>> plain, averaged = save_ensemble("03_efficientnet_lite0_ensemble", runs, tta, labels["val"],
    ...                                 folder=folder, notebook=notebook)  # doctest: +SKIP
    """
    from pathlib import Path

    import numpy as np

    from skinlib import artefacts, metrics, models

    model = models.ensemble([experiment.run.model for experiment in experiments.values()], name=name)
    artefacts.save_model_atomic(model, Path(folder) / f"{name}.keras")
    plain = np.mean([experiment.probabilities for experiment in experiments.values()], axis=0)
    averaged = np.mean([tta[member] for member in experiments], axis=0)
    listed = " + ".join(experiments)
    size = "x".join(str(side) for side in model.inputs[0].shape[1:3])
    details = {"params": int(model.count_params()),
               "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights))}
    for row, probabilities, stage in ((name, plain, "ensemble"), (f"{name}_tta", averaged, "ensemble with TTA")):
        artefacts.record_metrics(row, metrics.classification_metrics(validation_labels, probabilities), folder=folder,
                                 notebook=notebook, details=details,
                                 extra={"input_size": size, "stage": stage, "members": listed})
    for member in experiments:  # Last, once the ensemble and its rows are written: a crash before keeps them.
        for suffix in artefacts.MODEL_SUFFIXES:  # Inside the ensemble now; copies would double the folder's size.
            (Path(folder) / f"{member}{suffix}").unlink(missing_ok=True)
    return plain, averaged


def _images_per_second(step, batch, *, steps, repeats=1):
    """Images per second of ``step(batch)`` after one untimed warm-up step: the best of ``repeats`` timings.

    The best, not the mean: anything else running on the machine only ever slows a step down.
    """
    import time

    step(batch)
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        for _ in range(steps):
            step(batch)
        best = min(best, time.perf_counter() - begin)
    return round(steps * int(batch.shape[0]) / best, 1)


def _train_step(model):
    """A compiled optimiser step (Adam, cross-entropy) of ``model`` with BatchNorm frozen, for timing."""
    import keras
    import tensorflow as tf

    for layer in model.layers:
        layer.trainable = _trains(layer, "frozen")
    optimizer = keras.optimizers.Adam(1e-4)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    head = keras.layers.Dense(7)
    pool = keras.layers.GlobalAveragePooling2D()

    @tf.function
    def step(batch):
        labels = tf.zeros(tf.shape(batch)[0], tf.int32)
        with tf.GradientTape() as tape:
            value = loss(labels, head(pool(model(batch, training=False))))
        weights = model.trainable_weights + head.trainable_weights
        optimizer.apply_gradients(zip(tape.gradient(value, weights), weights))
        return value

    return step


def training_rates(base, *, batch_size=32, steps=4, repeats=1, cut=None):
    """Images per second of the four costs that decide the training design, on random pixels.

    ``forward``: inference of the whole backbone; ``train_full``: one optimiser
    step of the whole backbone (end-to-end fine-tuning); ``lower_forward``: the
    frozen lower part alone (storing one view); ``train_top``: one optimiser
    step of the upper part on stored maps. The steps change the weights of
    ``base``: pass a throwaway backbone (``weights=None`` times the same).
    Each rate is the best of ``repeats`` timings of ``steps`` steps.

    Returns
    -------
    dict
    """
    import numpy as np
    import tensorflow as tf

    size = tuple(int(side) for side in base.input_shape[1:3])
    pixels = tf.constant(np.random.default_rng(0).integers(0, 256, (batch_size, *size, 3)).astype("float32"))
    lower, upper = split_backbone(base, cut)
    lower_forward = tf.function(lambda batch: lower(batch, training=False))
    stored = lower_forward(pixels)
    timing = dict(steps=steps, repeats=repeats)
    forward = tf.function(lambda batch: base(batch, training=False))
    return {"forward": _images_per_second(forward, pixels, **timing),
            "lower_forward": _images_per_second(lower_forward, pixels, **timing),
            "train_top": _images_per_second(_train_step(upper), stored, **timing),
            "train_full": _images_per_second(_train_step(base), pixels, steps=max(1, steps // 2), repeats=repeats),
            "cut": cut or cut_layer(base), "stored_shape": "x".join(str(side) for side in stored.shape[1:])}

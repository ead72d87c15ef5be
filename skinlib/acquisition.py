"""Acquisition: colour constancy, and the shifts that other cameras and clinics put into images.

A model trained on the dermatoscopes of two clinics meets images from others:
a warmer or cooler light, a softer lens, stronger JPEG compression, the lesion
filmed closer. This module holds

- :class:`ShadesOfGray`, a Keras layer that removes the colour cast of the
  light (Shades of Gray colour constancy, Finlayson and Trezzi 2004, with
  p = 6 as in the ISIC challenge entries of Barata et al.), placed at the
  input of a model so that every caller, the lesion checker too, gets it;
- :data:`SHIFTS` and :func:`shift`: named, fixed-strength acquisition shifts
  for measuring robustness (chapter 04);
- :func:`random_acquisition`: the same shifts at random strengths, as
  training augmentation (:mod:`skinlib.features` applies it to cached views);
- :func:`field_mask`: the round field of a contact dermoscope, whose dark
  surround ``apply(surround=...)`` adds to an image.

The shifts take and return uint8-valued pixels of shape (n, height, width, 3).
"""

from __future__ import annotations

import functools

import numpy as np

SHIFTS = {
    "none": {},
    "warm light (+25% red, -20% blue)": {"temperature": 0.25},
    "cool light (-20% red, +25% blue)": {"temperature": -0.25},
    "darker (x0.7)": {"brightness": 0.7},
    "lower contrast (x0.7)": {"contrast": 0.7},
    "blur (Gaussian, sigma 1.5 px)": {"blur": 1.5},
    "JPEG quality 30": {"jpeg": 30},
    "closer (zoom 1.3x)": {"zoom": 1.3},
}
"""The acquisition shifts chapter 04 measures, each by name and strength."""


def _keras():
    import keras

    return keras


def shades_of_gray(pixels, power=6):
    """Shades of Gray colour constancy on a NumPy batch: divide each channel by its Minkowski-p mean.

    The light's colour is estimated per image as ``mean(channel ** p) ** (1/p)``
    and divided out; the result is scaled by the root mean square of the
    three estimates, so the image keeps its overall brightness. A colour cast
    that multiplies each channel by a constant is removed up to that overall
    brightness (the root mean square of the shifted estimates), rounding and
    pixels clipped at 0 or 255.

    >>> image = np.full((1, 2, 2, 3), (200, 100, 50), dtype="uint8")
    >>> shades_of_gray(image)[0, 0, 0].tolist()
    [132, 132, 132]
    """
    values = np.asarray(pixels, dtype="float32")
    illuminant = np.power(np.mean(np.power(values, power), axis=(1, 2), keepdims=True), 1 / power)
    gain = np.linalg.norm(illuminant, axis=-1, keepdims=True) / np.sqrt(3) / np.maximum(illuminant, 1e-6)
    return np.clip(np.rint(values * gain), 0, 255).astype("uint8")


@functools.cache
def shades_of_gray_layer_class():
    """The :class:`ShadesOfGray` Keras layer class (built lazily so importing skinlib needs no TensorFlow)."""
    keras = _keras()

    @keras.saving.register_keras_serializable(package="skinlib")
    class ShadesOfGray(keras.layers.Layer):
        """Shades of Gray colour constancy as the first layer of a model (pixels 0-255 in and out)."""

        def __init__(self, power=6, **kwargs):
            super().__init__(**kwargs)
            self.power = power

        def call(self, inputs):
            ops = keras.ops
            values = ops.maximum(ops.cast(inputs, "float32"), 0.0)
            scaled = values / 255.0  # Keeps x ** 6 inside float32's range.
            illuminant = ops.power(ops.mean(ops.power(scaled, self.power), axis=(1, 2), keepdims=True),
                                   1.0 / self.power)
            norm = ops.sqrt(ops.sum(ops.square(illuminant), axis=-1, keepdims=True) / 3.0)
            return ops.clip(values * norm / ops.maximum(illuminant, 1e-6), 0.0, 255.0)

        def get_config(self):
            return {**super().get_config(), "power": self.power}

    return ShadesOfGray


def ShadesOfGray(power=6, **kwargs):  # noqa: N802 (a layer factory named like the layer)
    """A :func:`shades_of_gray` Keras layer; its results match the NumPy function to rounding."""
    return shades_of_gray_layer_class()(power=power, **kwargs)


INTENSITY_MEAN, INTENSITY_STD = 161.0, 30.0
"""The median per-image mean and standard deviation of the training split's pixels after Shades of Gray, at
150x200 (:func:`intensity_targets` recomputes them): the brightness and contrast that :func:`standardize_intensity`
gives every image."""

INTENSITY_MAX_GAIN = 2.0
"""The most :func:`standardize_intensity` stretches or flattens an image's contrast (a near-blank image is not
blown up into noise)."""


def intensity_targets(pixels, batch_size=500):
    """The median per-image mean and standard deviation of a uint8 batch after :func:`shades_of_gray`.

    >>> image = np.full((1, 2, 2, 3), (200, 100, 50), dtype="uint8")
    >>> intensity_targets(image)
    (132.0, 0.0)
    """
    means, stds = [], []
    for start in range(0, len(pixels), batch_size):
        balanced = shades_of_gray(pixels[start:start + batch_size]).astype("float32")
        means.append(balanced.mean(axis=(1, 2, 3)))
        stds.append(balanced.std(axis=(1, 2, 3)))
    return float(np.median(np.concatenate(means))), float(np.median(np.concatenate(stds)))


def standardize_intensity(pixels, mean=INTENSITY_MEAN, std=INTENSITY_STD, max_gain=INTENSITY_MAX_GAIN):
    """Give each image of a batch the same brightness and contrast (NumPy; pixels 0-255 in, float out).

    Each image's pixels (all channels together) are moved to mean ``mean`` and
    scaled about it to standard deviation ``std``, the scale kept within
    ``1 / max_gain`` to ``max_gain``, then clipped to 0-255. A change of
    exposure (every pixel times a constant) or of contrast about the image's
    mean is undone, up to that limit and clipping; colour ratios are kept only
    approximately (one offset for all three channels).

    >>> image = np.array([[[[100] * 3, [160] * 3]]], dtype="float32")  # One image, two grey pixels.
    >>> standardize_intensity(image)[0, 0, :, 0].tolist()
    [131.0, 191.0]
    >>> standardize_intensity(image * 0.7)[0, 0, :, 0].tolist()  # Darker: the same result.
    [131.0, 191.0]
    """
    values = np.asarray(pixels, dtype="float32")
    centre = values.mean(axis=(1, 2, 3), keepdims=True)
    spread = values.std(axis=(1, 2, 3), keepdims=True)
    gain = np.clip(std / np.maximum(spread, 1e-6), 1 / max_gain, max_gain)
    return np.clip((values - centre) * gain + mean, 0.0, 255.0)


@functools.cache
def intensity_layer_class():
    """The :class:`IntensityStandardization` Keras layer class (built lazily, like :func:`shades_of_gray_layer_class`)."""
    keras = _keras()

    @keras.saving.register_keras_serializable(package="skinlib")
    class IntensityStandardization(keras.layers.Layer):
        """:func:`standardize_intensity` as a layer of a model (pixels 0-255 in and out)."""

        def __init__(self, mean=INTENSITY_MEAN, std=INTENSITY_STD, max_gain=INTENSITY_MAX_GAIN, **kwargs):
            super().__init__(**kwargs)
            self.mean, self.std, self.max_gain = float(mean), float(std), float(max_gain)

        def call(self, inputs):
            ops = keras.ops
            values = ops.cast(inputs, "float32")
            centre = ops.mean(values, axis=(1, 2, 3), keepdims=True)
            spread = ops.sqrt(ops.mean(ops.square(values - centre), axis=(1, 2, 3), keepdims=True))
            gain = ops.clip(self.std / ops.maximum(spread, 1e-6), 1.0 / self.max_gain, self.max_gain)
            return ops.clip((values - centre) * gain + self.mean, 0.0, 255.0)

        def get_config(self):
            return {**super().get_config(), "mean": self.mean, "std": self.std, "max_gain": self.max_gain}

    return IntensityStandardization


def IntensityStandardization(**kwargs):  # noqa: N802 (a layer factory named like the layer)
    """A :func:`standardize_intensity` Keras layer; its results match the NumPy function to float rounding."""
    return intensity_layer_class()(**kwargs)


CONSTANCY = {False: (), True: ("colour_constancy",), "shades_of_gray": ("colour_constancy",),
             "shades_of_gray+intensity": ("colour_constancy", "intensity_constancy")}
"""The options of a model's constancy front (``colour_constancy`` of :func:`skinlib.models.backbone`): the layers
it starts with, by name. ``True`` is Shades of Gray alone; ``"shades_of_gray+intensity"`` adds
:class:`IntensityStandardization` after it (tried as a scout, not adopted: ``benchmarks/TRIALS.md``)."""


def constancy(x, option):
    """Apply the constancy front ``option`` (a key of :data:`CONSTANCY`) to a Keras tensor of pixels.

    Every backbone builder calls this, so the layers' names and order are the same in every model.
    """
    if option not in CONSTANCY:
        raise ValueError(f"colour_constancy must be one of {list(CONSTANCY)}. Got {option!r} instead.")
    layers = {"colour_constancy": ShadesOfGray, "intensity_constancy": IntensityStandardization}
    for name in CONSTANCY[option]:
        x = layers[name](name=name)(x)
    return x


def register_layers():
    """Register skinlib's own layer classes with Keras, so that any saved model of this project loads."""
    shades_of_gray_layer_class()
    intensity_layer_class()


def _gaussian_kernel(sigma):
    radius = max(1, int(round(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype="float32")
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def _blur(images, sigma):
    """Separable Gaussian blur of a float batch (TensorFlow)."""
    import tensorflow as tf

    kernel = tf.constant(_gaussian_kernel(sigma))
    size = int(kernel.shape[0])
    rows = tf.tile(tf.reshape(kernel, (size, 1, 1, 1)), (1, 1, 3, 1))
    columns = tf.tile(tf.reshape(kernel, (1, size, 1, 1)), (1, 1, 3, 1))
    padded = tf.pad(images, [[0, 0], [size // 2] * 2, [size // 2] * 2, [0, 0]], mode="REFLECT")
    blurred = tf.nn.depthwise_conv2d(padded, rows, (1, 1, 1, 1), "VALID")
    return tf.nn.depthwise_conv2d(blurred, columns, (1, 1, 1, 1), "VALID")


def _zoom(images, factor):
    """Crop the centre 1/factor of each image and resize it back (a closer view)."""
    import tensorflow as tf

    height, width = int(images.shape[1]), int(images.shape[2])
    margin_y, margin_x = (1 - 1 / factor) / 2, (1 - 1 / factor) / 2
    boxes = tf.tile([[margin_y, margin_x, 1 - margin_y, 1 - margin_x]], (tf.shape(images)[0], 1))
    return tf.image.crop_and_resize(images, boxes, tf.range(tf.shape(images)[0]), (height, width))


def _as_jpeg(image, quality):
    """One float image (0-255) saved as JPEG at ``quality`` and decoded again, as float."""
    import tensorflow as tf

    encoded = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return tf.cast(tf.image.adjust_jpeg_quality(encoded, quality), tf.float32)


def _jpeg(images, quality):
    import tensorflow as tf

    return tf.map_fn(lambda image: _as_jpeg(image, quality), images)


FIELDS = ("circle", "ellipse")
"""The dermoscope fields :func:`field_mask` draws: a centred circle as tall as the image, or the inscribed ellipse."""


@functools.lru_cache(maxsize=None)
def field_mask(shape, kind="circle"):
    """A boolean mask of a dermoscope's bright field: a centred circle as tall as the image, or the inscribed ellipse.

    ``shape`` is (height, width). A pixel is inside when its centre lies inside the circle or ellipse.

    >>> mask = field_mask((150, 200), "circle")
    >>> bool(mask[75, 100]), bool(mask[75, 20]), bool(mask[0, 0]), bool(field_mask((150, 200), "ellipse")[75, 20])
    (True, False, False, True)
    """
    if kind not in FIELDS:
        raise ValueError(f"kind must be one of {list(FIELDS)}. Got {kind!r} instead.")
    height, width = shape
    rows, columns = np.mgrid[:height, :width] + 0.5
    half_width = height / 2 if kind == "circle" else width / 2
    mask = _squared_radius(rows, columns, height / 2, width / 2, height / 2, half_width) <= 1
    mask.setflags(write=False)  # Cached: shared by every caller.
    return mask


def _squared_radius(rows, columns, centre_y, centre_x, half_height, half_width):
    """Squared distance of pixel centres from an ellipse's centre, in its half-axes (1 on its edge); NumPy or TF."""
    return ((rows - centre_y) / half_height) ** 2 + ((columns - centre_x) / half_width) ** 2


def apply(pixels, *, temperature=0.0, brightness=1.0, contrast=1.0, blur=0.0, jpeg=None, zoom=1.0, surround=None):
    """Apply acquisition changes of fixed strength to a batch (uint8 or float pixels, 0-255); returns uint8.

    ``temperature`` > 0 warms the light (red up by ``1 + t``, blue down by ``1 / (1 + t)`` less one), < 0 cools it.
    ``surround`` ("circle" or "ellipse") sets every pixel outside that :func:`field_mask` to black, after the other
    changes and before JPEG.

    >>> image = np.full((1, 4, 4, 3), 100, dtype="uint8")
    >>> apply(image, temperature=0.25)[0, 0, 0].tolist(), apply(image, brightness=0.5)[0, 0, 0].tolist()
    ([125, 100, 80], [50, 50, 50])
    """
    import tensorflow as tf

    images = tf.cast(tf.convert_to_tensor(pixels), tf.float32)
    if zoom != 1.0:
        images = _zoom(images, zoom)
    if blur:
        images = _blur(images, blur)
    if temperature:
        gain = 1 + abs(temperature)
        scale = [gain, 1.0, 1 / gain] if temperature > 0 else [1 / gain, 1.0, gain]
        images = images * tf.constant(scale, tf.float32)
    if contrast != 1.0:
        mean = tf.reduce_mean(images, axis=(1, 2, 3), keepdims=True)
        images = (images - mean) * contrast + mean
    images = images * brightness
    if surround is not None:
        images = images * tf.constant(field_mask(tuple(images.shape[1:3]), surround)[None, :, :, None], tf.float32)
    if jpeg is not None:
        images = _jpeg(images, int(jpeg))
    return tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8).numpy()


def shift(pixels, name, *, batch_size=256, shifts=None):
    """Apply the named shift of ``shifts`` (default :data:`SHIFTS`) to a uint8 batch, in batches; returns uint8."""
    shifts = SHIFTS if shifts is None else shifts
    if name not in shifts:
        raise ValueError(f"shift must be one of {list(shifts)}. Got {name!r} instead.")
    if not shifts[name]:
        return np.asarray(pixels)
    return np.concatenate([apply(pixels[start:start + batch_size], **shifts[name])
                           for start in range(0, len(pixels), batch_size)])


def random_acquisition(images, seed, *, strength=1.0, jpeg=False, zoom=0.2, surround=0.0):
    """Random zoom, colour temperature, saturation, contrast, brightness, blur (JPEG, dark field) per image (TF).

    ``images`` is a float batch (0-255); ``seed`` a pair of integers (stateless
    random ops), so a view of an image is the same on every run. ``strength``
    scales every range (0: no change). Ranges at strength 1: zoom 1-1.2x with
    a random offset, colour temperature +-20%, saturation x0.7-1.3, contrast
    x0.8-1.2, brightness x0.8-1.2, and a blur of sigma 1 px on a third of the images.
    Each image is enlarged by a factor drawn from 1 to 1 + ``zoom`` x ``strength``
    (``zoom`` 0.2: 1-1.2x at strength 1; 0.7: 1-1.7x, which covers the 1.67x at
    which :func:`skinlib.images.cut_surround` shows a round field as tall as the image).
    ``jpeg=True`` (with ``strength`` above 0) also saves each image again as JPEG
    with probability 1/3, at a quality drawn from 30-90 (:data:`JPEG_QUALITIES`),
    as another camera or site might; its draws come from their own stream, so the
    other draws do not change. ``surround`` (0-1, with ``strength`` above 0) is
    the share of images shown inside a contact dermoscope's dark field, also
    from a stream of its own: an ellipse 0.85-1.2 times as tall as the image,
    from a circle to the image's aspect, its centre moved by up to 5% of each
    side, the outside dimmed to 0-15% of its brightness.
    """
    import tensorflow as tf

    if not zoom >= 0:
        raise ValueError(f"zoom must be 0 or more (the most enlargement beyond 1x). Got {zoom!r} instead.")
    if not 0 <= surround <= 1:
        raise ValueError(f"surround must be a share between 0 and 1. Got {surround!r} instead.")
    n = tf.shape(images)[0]
    height, width = int(images.shape[1]), int(images.shape[2])
    draws = tf.random.stateless_uniform((n, 8), seed=seed, minval=-1.0, maxval=1.0) * strength
    column = lambda index: tf.reshape(draws[:, index], (-1, 1, 1, 1))  # noqa: E731
    factor = 1.0 + zoom / 2 * (draws[:, 0] + strength)  # zoom / 2 is 0.1 exactly at the default 0.2.
    margin = (1 - 1 / factor) / 2
    top, left = margin * (1 + draws[:, 1]), margin * (1 + draws[:, 2])
    boxes = tf.stack([top, left, top + 1 / factor, left + 1 / factor], axis=1)
    images = tf.image.crop_and_resize(images, boxes, tf.range(n), (height, width))
    gain = 1.0 + 0.2 * column(3)
    images = images * tf.concat([gain, tf.ones_like(gain), 1.0 / gain], axis=-1)
    gray = tf.reduce_mean(images, axis=-1, keepdims=True)
    images = gray + (images - gray) * (1.0 + 0.3 * column(4))
    mean = tf.reduce_mean(images, axis=(1, 2, 3), keepdims=True)
    images = ((images - mean) * (1.0 + 0.2 * column(5)) + mean) * (1.0 + 0.2 * column(6))
    blurred = column(7) < -strength / 3
    images = tf.where(blurred, _blur(images, 1.0), images)
    images = tf.clip_by_value(images, 0.0, 255.0)
    if surround and strength:
        images = _random_field(images, tf.random.experimental.stateless_fold_in(seed, 2), surround)
    if jpeg and strength:
        images = _random_jpeg(images, tf.random.experimental.stateless_fold_in(seed, 1))
    return images


def _random_field(images, seed, share):
    """Show a ``share`` of a float batch inside a random dark dermoscope field (TensorFlow).

    Each chosen image keeps an ellipse whose height is 0.85-1.2 times the image's
    (above 1 it may still cut the sides, or the top or bottom when moved), from a
    circle to the image's own aspect, its centre moved by up to 5% of each side;
    outside, the image is dimmed to 0-15% of its brightness, with an edge 5% of
    the radius wide. Changing these ranges changes stored views: raise
    ``features.FEATURES_VERSION``.
    """
    import tensorflow as tf

    n = tf.shape(images)[0]
    height, width = int(images.shape[1]), int(images.shape[2])
    draws = tf.random.stateless_uniform((n, 6), seed=seed)
    column = lambda index: tf.reshape(draws[:, index], (-1, 1, 1, 1))  # noqa: E731
    half_height = height / 2 * (0.85 + 0.35 * column(1))
    half_width = half_height * (1 + column(2) * (width / height - 1))
    centre_y, centre_x = height * (0.5 + 0.1 * (column(3) - 0.5)), width * (0.5 + 0.1 * (column(4) - 0.5))
    rows = tf.reshape(tf.range(height, dtype=tf.float32) + 0.5, (1, -1, 1, 1))
    columns = tf.reshape(tf.range(width, dtype=tf.float32) + 0.5, (1, 1, -1, 1))
    radius = tf.sqrt(_squared_radius(rows, columns, centre_y, centre_x, half_height, half_width))
    inside = tf.clip_by_value((1 - radius) / 0.05 + 0.5, 0.0, 1.0)
    dimmed = images * (inside + (1 - inside) * 0.15 * column(5))
    return tf.where(column(0) < share, dimmed, images)


JPEG_QUALITIES = (30, 90)
"""Range of the JPEG quality (both ends included) that ``random_acquisition(..., jpeg=True)`` draws.
Changing it or the share of compressed images changes stored views: raise ``features.FEATURES_VERSION``."""


def jpeg_quality(uniform):
    """Map uniform draws in [0, 1) to whole JPEG qualities spread evenly over :data:`JPEG_QUALITIES`.

    >>> jpeg_quality(np.array([0.0, 0.5, 1 - 2 ** -24], dtype="float32")).numpy().tolist()  # 1 - 2**-24: below 1
    [30, 60, 90]
    """
    import tensorflow as tf

    low, high = JPEG_QUALITIES
    quality = tf.floor(low + tf.convert_to_tensor(uniform) * (high - low + 1))
    return tf.cast(tf.minimum(quality, high), tf.int32)  # float32 rounding can reach high + 1 just below 1.


def _random_jpeg(images, seed):
    """Save each image of a float batch (0-255) again as JPEG with probability 1/3, at a :func:`jpeg_quality`."""
    import tensorflow as tf

    draws = tf.random.stateless_uniform((tf.shape(images)[0], 2), seed=seed)
    qualities = jpeg_quality(draws[:, 1])

    def one(args):
        image, quality, chosen = args
        return tf.cond(chosen, lambda: _as_jpeg(image, quality), lambda: image)

    compressed = tf.map_fn(one, (images, qualities, draws[:, 0] < 1 / 3), fn_output_signature=tf.float32)
    return tf.ensure_shape(compressed, images.shape)  # map_fn and cond lose the static height and width.

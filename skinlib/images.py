"""Decode images safely, resize them, and cache the decoded pixels on disk.

:func:`read_image` is the one way an image becomes pixels in this project,
for training and for prediction alike, so both see exactly the same
preprocessing. :func:`load_images` decodes many images in parallel once and
keeps the result in a cache keyed by the image size and by the bytes of every
file, so a changed file invalidates it and a later notebook loads all 10,015
images in about a second.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from skinlib.artefacts import write_atomic

MAX_PIXELS = 80_000_000
"""Largest image accepted, in pixels (a 12-megapixel phone photo is 12,000,000)."""

MIN_SIDE = 32
"""Smallest width or height accepted, in pixels."""

DECODER_VERSION = 1
"""Bumped whenever decoding or resizing changes, so old caches are not reused."""

CACHE_ENV_VAR = "SKINLIB_CACHE"

class ImageError(ValueError):
    """An image cannot be used; the message names the file and the problem."""


def read_image(source, *, size=None, name=None):
    """Decode one image into RGB pixels, optionally resized.

    Parameters
    ----------
    source : str, Path, bytes, PIL.Image.Image or ndarray
        The image: a file path, the file's bytes, a PIL image, or an array of
        shape (height, width) or (height, width, 3 or 4).
    size : tuple of int (height, width), default=None
        Resize to this size (bilinear, antialiased). None keeps the size.
    name : str, default=None
        How to name the image in error messages (defaults to the path).

    Returns
    -------
    ndarray of shape (height, width, 3), dtype uint8
        RGB pixels. EXIF rotation is applied; grayscale, CMYK, palette and
        16-bit images are converted; transparency is composited on black.

    Raises
    ------
    ImageError
        Empty file, not an image, truncated or corrupt data, fewer than
        ``MIN_SIDE`` pixels on a side, or more than ``MAX_PIXELS`` pixels.

    Examples
    --------
    >>> pixels = read_image(np.zeros((150, 200, 3), dtype=np.uint8), size=(64, 64))
    >>> pixels.shape, pixels.dtype
    ((64, 64, 3), dtype('uint8'))
    """
    if isinstance(source, (str, os.PathLike)):
        name = name or str(source)
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise ImageError(f"{name}: no such file.") from None
        except OSError as error:
            raise ImageError(f"{name}: cannot be read: {error.strerror or error}.") from None
        image = _open(data, name)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        image = _open(bytes(source), name or "image bytes")
    elif isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = _from_array(source, name or "array")
    else:
        raise TypeError(f"read_image takes a path, bytes, a PIL image or an array. Got {type(source).__name__}.")
    name = name or "image"
    _check_size(image.size, name)
    try:
        image = ImageOps.exif_transpose(image)
        pixels = _to_rgb(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"{name}: the image data is truncated or corrupt ({error}).") from None
    if size is not None:
        pixels = resize(pixels, size)
    return pixels


_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"GIF8": "GIF", b"BM": "BMP", b"II*\x00": "TIFF",
               b"MM\x00*": "TIFF", b"RIFF": "WebP"}


def _open(data, name):
    """Open bytes as a PIL image, turning every failure into an ImageError."""
    if not data:
        raise ImageError(f"{name}: the file is empty (0 bytes).")
    kind = next((kind for magic, kind in _SIGNATURES.items() if data.startswith(magic)), None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError:
        if kind:
            raise ImageError(f"{name}: starts like a {kind} file but is truncated or corrupt.") from None
        raise ImageError(f"{name}: not a recognised image (JPEG, PNG, ...); it starts with {data[:8]!r}.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(pixels.group(1)) / 1e6:.0f} megapixels" if pixels else "too many pixels"
        raise ImageError(
            f"{name}: the image has {size}, over the limit of {MAX_PIXELS / 1e6:.0f} megapixels "
            "(a safeguard against decompression bombs); resize it first."
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{name}: the image is truncated or corrupt (header: {error}).") from None
    return image


def _check_size(size, name):
    """Refuse images that are too small to classify or too large to decode safely."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{name}: the image is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), "
            f"over the limit of {MAX_PIXELS / 1e6:.0f} megapixels (a safeguard against decompression bombs); "
            "resize it first."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name}: the image is {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed.")


def _from_array(array, name):
    """Turn an array of pixels into a PIL image, checking its shape and dtype."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: expected shape (height, width[, 3 or 4]). Got {array.shape}.")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number) or np.nanmin(array) < 0 or np.nanmax(array) > 255:
            raise ImageError(f"{name}: expected pixel values in [0, 255]. Got dtype {array.dtype}.")
        array = np.round(array).astype(np.uint8)
    return Image.fromarray(array)


def _to_rgb(image):
    """Convert any PIL mode to 8-bit RGB; transparent areas become black."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(image, dtype=np.float64)
        scale = 257.0 if wide.max(initial=0) > 255 else 1.0
        image = Image.fromarray(np.clip(wide / scale, 0, 255).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
    if image.mode == "P" or image.mode in ("LA", "PA", "RGBA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def resize(pixels, size):
    """Resize RGB pixels to ``size`` = (height, width) with antialiased bilinear filtering.

    >>> resize(np.zeros((150, 200, 3), dtype=np.uint8), (75, 100)).shape
    (75, 100, 3)
    """
    height, width = _check_target(size)
    if pixels.shape[:2] == (height, width):
        return pixels
    image = Image.fromarray(pixels).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


TRAINING_FRAME = (3, 4)
"""Height to width of every HAM10000 image (600x450, landscape): the frame every model here learnt from."""

FITS = ("stretch", "crop", "pad")


SURROUND_DARK = 40
"""Mean of R, G and B (0-255) below which a pixel counts as part of a dermoscope's dark surround."""

SURROUND_SHARE = 0.15
"""Cut a dark surround only when it covers more than this share of the image (``benchmarks/dark_surround.py``
counts the training images that reach it)."""

SURROUND_LOOK = 200
"""The surround is looked for on every n-th pixel, n chosen so the longer side has at most this many (the
training images' width)."""


def coarse_step(shape, longest=SURROUND_LOOK):
    """The n for looking at every n-th pixel of an image of ``shape``, so that its longer side keeps at most
    ``longest``: ``pixels[::n, ::n]`` then costs the same at any size, and is a view, not a copy.

    >>> coarse_step((3000, 4000, 3)), coarse_step((150, 200, 3))
    (20, 1)
    """
    return max(1, -(-max(shape[:2]) // longest))


def cut_surround(pixels, *, aspect=TRAINING_FRAME, dark=SURROUND_DARK, share=SURROUND_SHARE):
    """Cut a dermoscope's dark surround away: keep the largest box of ``aspect`` inside the bright field.

    The surround is the dark pixels joined to the four corners (a dark
    lesion or hair inside the field is not part of it). Only an image whose
    four corners are dark and whose surround covers more than ``share`` of it
    is cut: to the largest box of ``aspect`` inside the ellipse that fills
    the bounding box of the rows and columns the field spans (a round or oval
    field of view), centred in it, and only when that box is almost all
    field (98%), the field lies within that ellipse (95%; a dark half or a
    dark lesion reaching the edge is not a surround) and the box is at least
    :data:`MIN_SIDE` pixels on a side. Any other image comes back unchanged,
    the same array. The surround is looked for on every n-th pixel (at most
    :data:`SURROUND_LOOK` on the longer side), so any image size costs the
    same.

    >>> rows, columns = np.mgrid[:150, :200]
    >>> field = (rows - 74.5) ** 2 + (columns - 99.5) ** 2 <= 75 ** 2  # A circle as tall as the image.
    >>> pixels = np.where(field[..., None], 200, 0).astype(np.uint8).repeat(3, axis=-1)
    >>> cut_surround(pixels).shape
    (90, 120, 3)
    >>> plain = np.full((150, 200, 3), 200, dtype=np.uint8)
    >>> cut_surround(plain) is plain
    True
    """
    from scipy import ndimage

    height, width = pixels.shape[:2]
    step = coarse_step(pixels.shape)  # Every step-th pixel: any size and dtype, no copy.
    small = np.asarray(pixels[::step, ::step], dtype=np.float32)
    low = (small.reshape(*small.shape[:2], -1)[..., :3].mean(-1)) < dark
    look_height, look_width = low.shape
    k = max(2, min(look_height, look_width) // 16)
    corners = (low[:k, :k], low[:k, -k:], low[-k:, :k], low[-k:, -k:])
    if not all(corner.mean() > 0.5 for corner in corners):
        return pixels
    parts, _ = ndimage.label(low)
    touching = {parts[y, x] for y in (0, look_height - 1) for x in (0, look_width - 1)} - {0}
    outside = np.isin(parts, list(touching))
    if outside.mean() <= share:
        return pixels
    rows, columns = np.flatnonzero((~outside).mean(1) > 0.02), np.flatnonzero((~outside).mean(0) > 0.02)
    if not len(rows) or not len(columns):
        return pixels
    centre_y, centre_x = (rows[0] + rows[-1] + 1) / 2, (columns[0] + columns[-1] + 1) / 2
    semi_y, semi_x = (rows[-1] + 1 - rows[0]) / 2, (columns[-1] + 1 - columns[0]) / 2
    grid_y, grid_x = np.mgrid[:look_height, :look_width]
    ellipse = ((grid_y + 0.5 - centre_y) / semi_y) ** 2 + ((grid_x + 0.5 - centre_x) / semi_x) ** 2 <= 1
    if (~outside & ~ellipse).sum() > 0.05 * (~outside).sum():  # Not a round field: dark skin or a dark half.
        return pixels
    ratio = aspect[0] / aspect[1]
    half_x = 1 / np.sqrt(1 / semi_x ** 2 + ratio ** 2 / semi_y ** 2)  # Its corners lie on the ellipse.
    half_y = ratio * half_x
    box = [centre_y - half_y, centre_x - half_x, centre_y + half_y, centre_x + half_x]
    top, left = (int(np.ceil(side * step - 1e-6)) for side in box[:2])  # Inward, at the image's own size.
    bottom, right = (int(np.floor(side * step + 1e-6)) for side in box[2:])
    if bottom - top < MIN_SIDE or right - left < MIN_SIDE:
        return pixels
    look = [int(round(side)) for side in box]
    if look[2] <= look[0] or look[3] <= look[1]:
        return pixels
    if outside[look[0]:look[2], look[1]:look[3]].mean() > 0.02:  # A label in the surround, not a round field.
        return pixels
    return pixels[top:bottom, left:right]


def frame(pixels, *, surround=False, turn=True, fit="stretch", aspect=TRAINING_FRAME, tolerance=0.02):
    """Bring an image of any shape to the training images' frame, before :func:`resize`.

    With ``surround``, a dermoscope's dark surround is first cut away
    (:func:`cut_surround`). A portrait image is then turned a quarter turn
    to landscape when ``turn`` (a dermoscopic image has no up: training
    already flips and turns its images half a turn). An image whose height-to-width ratio still differs from
    ``aspect`` by more than ``tolerance`` (relative) is then left for
    :func:`resize` to stretch (``fit="stretch"``), cut to its centre
    (``"crop"``) or given black borders (``"pad"``, as a dermoscope's dark
    surround). An image already in the frame comes back unchanged, the same
    array.

    >>> tall = np.zeros((200, 150, 3), dtype=np.uint8)
    >>> frame(tall).shape, frame(tall, turn=False).shape
    ((150, 200, 3), (200, 150, 3))
    >>> square = np.full((150, 150, 3), 255, dtype=np.uint8)
    >>> frame(square, fit="crop").shape, frame(square, fit="pad").shape, frame(square).shape
    ((112, 150, 3), (150, 200, 3), (150, 150, 3))
    >>> int(frame(square, fit="pad")[:, :25].max()), int(frame(square, fit="pad")[:, 25:175].min())
    (0, 255)
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}. Got {fit!r} instead.")
    if surround:
        pixels = cut_surround(pixels, aspect=aspect)
    height, width = pixels.shape[:2]
    landscape = aspect[0] <= aspect[1]
    if turn and height != width and (height < width) != landscape:
        pixels = np.rot90(pixels)
        height, width = width, height
    target = aspect[0] / aspect[1]
    if fit == "stretch" or abs(height / width / target - 1) <= tolerance + 1e-9:  # 2% is within.
        return pixels
    if fit == "crop":  # Keep the largest centred window of the frame's shape.
        new_height, new_width = min(height, round(width * target)), min(width, round(height / target))
        top, left = (height - new_height) // 2, (width - new_width) // 2
        return pixels[top:top + new_height, left:left + new_width]
    new_height, new_width = max(height, round(width * target)), max(width, round(height / target))
    padded = np.zeros((new_height, new_width, *pixels.shape[2:]), dtype=pixels.dtype)
    top, left = (new_height - height) // 2, (new_width - width) // 2
    padded[top:top + height, left:left + width] = pixels
    return padded


def _check_target(size):
    """Validate a (height, width) target size."""
    try:
        height, width = (int(side) for side in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (height, width). Got {size!r} instead.") from None
    if height < 8 or width < 8 or height > 4096 or width > 4096:
        raise ValueError(f"size must be between 8 and 4096 pixels per side. Got {size!r} instead.")
    return height, width


def _try_read(path, size):
    """Return (pixels, None) or (None, reason) for one file."""
    try:
        return read_image(path, size=size), None
    except ImageError as error:
        return None, str(error)


def _map(function, items, *, progress, description, n_jobs=None):
    """Apply ``function`` to ``items`` on a thread pool, in order, with a progress bar."""
    from tqdm import tqdm

    workers = n_jobs or min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(function, items, chunksize=64)
        return list(tqdm(results, total=len(items), desc=description, disable=not progress, unit="img"))


def find_unreadable(paths, *, progress=False):
    """Return ``[(path, reason), ...]`` for every file that cannot be decoded."""
    paths = [str(path) for path in paths]
    results = _map(lambda path: _try_read(path, None)[1], paths, progress=progress, description="Checking images")
    return [(path, reason) for path, reason in zip(paths, results) if reason is not None]


def default_cache_dir():
    """Return the image cache folder: ``$SKINLIB_CACHE``, else ``~/.cache/skinlib``."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "skinlib"


def fingerprint(paths, size):
    """Return a key for the decoded array: the bytes of every file, their order and the size."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps({"size": list(size), "decoder": DECODER_VERSION}).encode())
    for path in paths:
        path = Path(path)
        digest.update(path.name.encode() + b"\0")
        try:
            digest.update(hashlib.blake2b(path.read_bytes(), digest_size=16).digest())
        except OSError:
            digest.update(b"<missing>")
    return digest.hexdigest()


def load_images(paths, *, size=(64, 64), cache=True, cache_dir=None, progress=True, n_jobs=None):
    """Decode and resize many images, once: later calls read a disk cache.

    Parameters
    ----------
    paths : sequence of str or Path
        Image files, in the order wanted for the rows of the result.
    size : tuple of int (height, width), default=(64, 64)
        Size of every image in the result.
    cache : bool, default=True
        Read and write the cache. The key covers the bytes of every file, their
        order and ``size``, so any change to the data builds a new cache.
    cache_dir : str or Path, default=None
        Where the cache lives; default :func:`default_cache_dir`.
    progress : bool, default=True
        Show a progress bar while decoding.
    n_jobs : int, default=None
        Decoding threads; default is the number of cores (at most 8).

    Returns
    -------
    ndarray of shape (len(paths), height, width, 3), dtype uint8

    Raises
    ------
    ImageError
        When any file cannot be decoded; the message lists every such file
        and its problem (decoding does not stop at the first bad file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (200, 150), "red").save(folder / "ISIC_0000001.jpg")
    >>> load_images([folder / "ISIC_0000001.jpg"], size=(32, 32), cache=False, progress=False).shape
    (1, 32, 32, 3)
    """
    paths = [str(path) for path in paths]
    size = _check_target(size)
    cache_file = None
    if cache:
        key = fingerprint(paths, size)
        cache_file = Path(cache_dir or default_cache_dir()) / f"images_{size[0]}x{size[1]}_n{len(paths)}_{key}.npy"
        cached = _read_cache(cache_file, (len(paths), *size, 3))
        if cached is not None:
            return cached
    results = _map(lambda path: _try_read(path, size), paths, progress=progress, description="Decoding images",
                   n_jobs=n_jobs)
    failures = [(path, reason) for path, (_, reason) in zip(paths, results) if reason is not None]
    if failures:
        shown = "\n".join(f"  {reason}" for _, reason in failures[:20])
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        raise ImageError(
            f"{len(failures)} of {len(paths)} image(s) could not be decoded:\n{shown}{more}\n"
            "Remove or replace these files, or drop their rows (`python -m skinlib check` lists every problem)."
        )
    array = np.stack([pixels for pixels, _ in results]) if results else np.zeros((0, *size, 3), np.uint8)
    if cache_file is not None:
        write_atomic(cache_file, lambda handle: np.save(handle, array, allow_pickle=False))
    return array


def _read_cache(cache_file, shape):
    """Return the cached array, or None when it is absent or unusable."""
    if not cache_file.is_file():
        return None
    try:
        array = np.load(cache_file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        warnings.warn(f"{cache_file}: unreadable image cache ({error}); rebuilding it.", stacklevel=3)
        return None
    if array.shape != shape or array.dtype != np.uint8:
        warnings.warn(f"{cache_file}: cache holds {array.shape}, expected {shape}; rebuilding it.", stacklevel=3)
        return None
    return array

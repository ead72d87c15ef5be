"""skinlib.images: safe decoding of awkward files, and the disk cache."""

import io
import struct

import numpy as np
import pytest
from PIL import Image

from skinlib import images
from tests.conftest import jpeg_bytes, load_benchmark


def save(image, folder, name, **options):
    path = folder / name
    image.save(path, **options)
    return path


def huge_jpeg_header(width=20000, height=20000):
    """A real small JPEG whose frame header claims width x height (no pixels allocated)."""
    data = bytearray(jpeg_bytes(size=(64, 48)))
    marker = data.index(b"\xff\xc0")  # Start of frame, baseline.
    data[marker + 5:marker + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"this is not an image at all", "not a recognised image"),
        (jpeg_bytes()[:-2000], "truncated or corrupt"),
        (jpeg_bytes()[:200], "truncated or corrupt"),
        (jpeg_bytes()[:20] + b"\x00" * 500 + jpeg_bytes()[520:], "truncated or corrupt"),
        (huge_jpeg_header(), "400 megapixels, over the limit of 80"),
        (huge_jpeg_header(10000, 8500), "10000x8500 pixels .85 megapixels., over the limit"),
        (jpeg_bytes(size=(8, 8)), "8x8 pixels; at least 32x32"),
    ],
    ids=["empty", "not-an-image", "truncated", "header-only", "corrupt", "huge", "over-limit", "tiny"],
)
def test_bad_files_get_a_clear_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "ISIC_0000001.jpg"
    path.write_bytes(content)
    with pytest.raises(images.ImageError, match=message) as caught:
        images.read_image(path, size=(64, 64))
    assert str(caught.value).startswith(str(path))
    with pytest.raises(images.ImageError, match=message):
        images.read_image(content, name="upload.jpg")


def test_missing_file(tmp_path):
    with pytest.raises(images.ImageError, match="no such file"):
        images.read_image(tmp_path / "absent.jpg")


def test_png_with_alpha_is_composited_on_black(tmp_path):
    pixels = np.zeros((40, 40, 4), dtype=np.uint8)
    pixels[..., 0] = 255
    pixels[:20, :, 3] = 255  # Top half opaque red, bottom half transparent.
    path = save(Image.fromarray(pixels, "RGBA"), tmp_path, "alpha.png")
    result = images.read_image(path)
    assert result.shape == (40, 40, 3)
    assert tuple(result[0, 0]) == (255, 0, 0) and tuple(result[-1, -1]) == (0, 0, 0)


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "I;16", "1"])
def test_other_colour_modes_become_rgb(tmp_path, mode):
    base = Image.fromarray(np.linspace(0, 255, 64 * 48, dtype=np.uint8).reshape(48, 64)).convert("RGB")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257)
        name = "wide.png"
    else:
        image = base.convert(mode)
        name = "cmyk.jpg" if mode == "CMYK" else f"{mode}.png"
    path = save(image, tmp_path, name)
    result = images.read_image(path, size=(32, 32))
    assert result.shape == (32, 32, 3) and result.dtype == np.uint8
    assert result.max() > 100  # Contrast survives the conversion.


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (200, 100), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
    path = save(image, tmp_path, "rotated.jpg", exif=exif.tobytes())
    assert images.read_image(path).shape == (200, 100, 3)


def test_arrays_and_pil_images_are_accepted():
    gray = np.full((50, 60), 128, dtype=np.uint8)
    assert images.read_image(gray).shape == (50, 60, 3)
    assert images.read_image(Image.new("RGB", (60, 50))).shape == (50, 60, 3)
    with pytest.raises(images.ImageError, match="expected shape"):
        images.read_image(np.zeros((50, 60, 2), dtype=np.uint8))
    with pytest.raises(TypeError, match="read_image takes"):
        images.read_image(42)


def test_bad_target_size():
    with pytest.raises(ValueError, match=r"size must be \(height, width\)"):
        images.resize(np.zeros((40, 40, 3), np.uint8), 64)


def write_images(folder, count):
    paths = []
    for index in range(count):
        path = folder / f"ISIC_{index:07d}.jpg"
        path.write_bytes(jpeg_bytes(seed=index))
        paths.append(path)
    return paths


def test_load_images_lists_every_bad_file(tmp_path):
    paths = write_images(tmp_path, 6)
    paths[1].write_bytes(b"")
    paths[4].write_bytes(b"plain text, not an image")
    with pytest.raises(images.ImageError) as caught:
        images.load_images(paths, size=(32, 32), progress=False)
    message = str(caught.value)
    assert message.startswith("2 of 6 image(s) could not be decoded")
    assert "ISIC_0000001.jpg: the file is empty" in message and "ISIC_0000004.jpg: not a recognised" in message


def test_cache_is_reused_and_invalidated_by_a_changed_file(tmp_path, monkeypatch):
    paths = write_images(tmp_path, 5)
    decoded = []
    original = images._try_read
    monkeypatch.setattr(images, "_try_read", lambda path, size: decoded.append(path) or original(path, size))
    first = images.load_images(paths, size=(32, 32), progress=False)
    assert len(decoded) == 5
    second = images.load_images(paths, size=(32, 32), progress=False)
    assert len(decoded) == 5 and np.array_equal(first, second)  # Served from the cache.
    images.load_images(paths, size=(48, 32), progress=False)
    assert len(decoded) == 10  # Another size is another cache.
    paths[2].write_bytes(jpeg_bytes(seed=99, color=(20, 200, 20)))  # Same name, new content.
    third = images.load_images(paths, size=(32, 32), progress=False)
    assert len(decoded) == 15
    assert not np.array_equal(first[2], third[2]) and np.array_equal(first[0], third[0])
    assert len(list(images.default_cache_dir().glob("*.npy"))) == 3


def test_damaged_cache_is_rebuilt_with_a_warning(tmp_path):
    paths = write_images(tmp_path, 3)
    first = images.load_images(paths, size=(32, 32), progress=False)
    (cache_file,) = images.default_cache_dir().glob("*.npy")
    cache_file.write_bytes(b"not numpy")
    with pytest.warns(UserWarning, match="unreadable image cache"):
        again = images.load_images(paths, size=(32, 32), progress=False)
    assert np.array_equal(first, again)


def test_all_real_images_load_through_the_manifest(real_metadata):
    from skinlib import split

    table = split.apply_split(real_metadata)
    array = images.load_images(table["image_path"], size=(32, 32), progress=False)
    assert array.shape == (10015, 32, 32, 3) and array.dtype == np.uint8
    assert 40 < array.mean() < 220 and array.std() > 10
    assert (table["split"].value_counts() > 1400).all()


def test_decoding_matches_pillow_directly(real_metadata):
    path = real_metadata["image_path"].iloc[0]
    expected = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(images.read_image(path), expected)
    assert images.read_image(io.BytesIO(open(path, "rb").read()).getvalue()).shape == (150, 200, 3)


def test_frame_crops_and_pads_around_the_centre_and_leaves_the_training_frame_alone():
    square = np.arange(100 * 100 * 3, dtype=np.uint32).reshape(100, 100, 3).astype(np.uint8)
    assert np.array_equal(images.frame(square, fit="crop"), square[12:87])
    padded = images.frame(square, fit="pad")
    assert padded.shape == (100, 133, 3) and np.array_equal(padded[:, 16:116], square)
    assert padded[:, :16].max() == 0 and padded[:, 116:].max() == 0
    tall = np.zeros((300, 100, 3), np.uint8)  # Turned to 100x300, then cut or padded to 4:3.
    assert images.frame(tall, fit="crop").shape == (100, 133, 3)
    assert images.frame(tall, fit="pad").shape == (225, 300, 3)
    near = np.zeros((450, 612, 3), np.uint8)  # 2% from 4:3: the same array back, whatever the fit.
    assert all(images.frame(near, fit=fit) is near for fit in images.FITS)
    with pytest.raises(ValueError, match="fit must be one of"):
        images.frame(square, fit="zoom")


def test_framing_benchmark_cuts_each_shape_from_the_training_frame():
    module = load_benchmark("framing")
    pixels = np.random.default_rng(0).integers(0, 256, (2, 150, 200, 3), dtype=np.uint8)
    shapes = {source: cut(pixels[0]).shape[:2] for source, cut in module.SOURCES.items()}
    assert list(shapes.values()) == [(150, 200), (200, 150), (150, 150), (112, 200)]
    turned = module.framed(pixels, "3:4 portrait (turned)", "turn, then stretch", (150, 200))
    assert np.array_equal(turned, pixels[:, ::-1, ::-1])  # A quarter turn there and one more: a half turn.
    padded = module.framed(pixels, "1:1 square (centre)", "turn, then pad", (150, 200))
    assert np.array_equal(padded[:, :, 25:175], pixels[:, :, 25:175]) and padded[:, :, :25].max() == 0
    stretched = module.framed(pixels, "3:4 portrait (turned)", "stretch (before this benchmark)", (150, 200))
    assert np.array_equal(stretched[0], images.resize(np.rot90(pixels[0]), (150, 200)))


def _field(height, width, semi_y, semi_x, *, outside=0, inside=190):
    """An image with a bright elliptical field of view (semi-axes in pixels) in a dark surround."""
    rows, columns = np.mgrid[:height, :width]
    inner = ((rows + 0.5 - height / 2) / semi_y) ** 2 + ((columns + 0.5 - width / 2) / semi_x) ** 2 <= 1
    return np.where(inner[..., None], inside, outside).astype(np.uint8).repeat(3, axis=-1), inner


@pytest.mark.parametrize("height, width, semi_y, semi_x", [(150, 200, 75, 75), (150, 200, 75, 100),
                                                           (400, 300, 150, 140), (300, 300, 150, 150),
                                                           (900, 1200, 450, 450)])
def test_cut_surround_keeps_a_box_of_the_training_frame_inside_the_field(height, width, semi_y, semi_x):
    pixels, inner = _field(height, width, semi_y, semi_x)
    pixels[height // 2 - 10:height // 2 + 10, width // 2 - 10:width // 2 + 10] = 20  # A dark lesion in the centre.
    cut = images.cut_surround(pixels)
    box_height, box_width = cut.shape[:2]
    offset = cut.ctypes.data - pixels.ctypes.data  # The cut is a view: where does it start?
    top, left = offset // pixels.strides[0], offset % pixels.strides[0] // pixels.strides[1]
    assert abs(box_height / box_width - 0.75) < 0.03
    assert inner[top:top + box_height, left:left + box_width].all()  # Inside the field, no surround left.
    assert abs(top + box_height / 2 - height / 2) <= 1 and abs(left + box_width / 2 - width / 2) <= 1
    half_x = 1 / np.sqrt(1 / semi_x ** 2 + 0.75 ** 2 / semi_y ** 2)  # The largest 4:3 box the ellipse holds.
    assert box_height * box_width >= 0.9 * (2 * half_x) * (1.5 * half_x)


def test_cut_surround_leaves_other_images_alone():
    plain = np.full((150, 200, 3), 180, np.uint8)
    lesion = plain.copy()
    lesion[30:120, 40:160] = 10  # A very dark lesion, but the corners are bright.
    mild, _ = _field(150, 200, 92, 123)  # Only dark corners, like the training images: about 8% dark.
    tiny, _ = _field(150, 200, 14, 14)  # Too little field to cut to.
    big_lesion = mild.copy()
    big_lesion[25:125, 40:160] = 15  # Dark corners and a dark lesion: 40% dark, but the surround is the corners.
    labelled, _ = _field(150, 200, 75, 75)
    labelled[30:120, 3:15] = 230  # A bright label in the black: the field's box would take in the surround.
    edge_lesion = mild.copy()
    edge_lesion[:, 130:] = 15  # A dark lesion reaching the edge joins the dark corners: still not a round field.
    dark_half = np.full((150, 200, 3), 180, np.uint8)
    dark_half[:75] = 10  # A dark background above the skin.
    underexposed = np.full((150, 200, 3), 30, np.uint8)
    underexposed[50:100, 60:140] = 120  # Dark skin with one brighter patch.
    for pixels in (plain, lesion, mild, tiny, big_lesion, labelled, edge_lesion, dark_half, underexposed,
                   plain[..., 0]):
        assert images.cut_surround(pixels) is pixels
    field, _ = _field(600, 800, 300, 300)  # Larger than the look-up copy, in other types: no crash, the same box.
    box = images.cut_surround(field).shape[:2]
    assert images.cut_surround(field.astype(np.float32)).shape[:2] == box
    assert images.cut_surround(field[..., :1]).shape[:2] == box
    assert (mild.mean(-1) < images.SURROUND_DARK).mean() < images.SURROUND_SHARE


def test_dark_surround_benchmark_and_the_checkers_step_find_the_same_box():
    module = load_benchmark("dark_surround")
    pixels = np.full((150, 200, 3), 190, np.uint8)
    for kind in ("circle", "ellipse"):
        dark = module.CONDITIONS[f"dark {kind}"](pixels)
        assert 0.2 < (dark.mean(-1) == 0).mean() < 0.45  # About 41% and 21% of the image: a real surround.
        top, left, height, width = module.inner_box((150, 200), kind)
        assert (dark[top:top + height, left:left + width] == 190).all()  # The known box is inside the field.
        found = images.cut_surround(dark)
        assert abs(found.shape[0] - height) <= 2 and abs(found.shape[1] - width) <= 2

"""Shared fixtures: the real data set (from SKINLIB_DATA) and small data sets made on the fly."""

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinlib import data

HEADER = "lesion_id,image_id,dx,dx_type,age,sex,localization"


def load_benchmark(name):
    """Import ``benchmarks/NAME.py`` (not a package) as a module, for tests of its functions."""
    import importlib.util

    from skinlib import reproduce

    path = reproduce.repo_root() / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Give every test its own image cache so tests never share or pollute one."""
    monkeypatch.setenv("SKINLIB_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def real_data_dir():
    """The shared HAM10000 folder; the tests that need it are skipped without it."""
    folder = os.environ.get(data.ENV_VAR)
    if not folder or not Path(folder).is_dir():
        pytest.skip(f"{data.ENV_VAR} does not point at HAM10000 (CI sets it to ../shared/data/ham10000)")
    return Path(folder)


@pytest.fixture(scope="session")
def real_metadata(real_data_dir):
    """The real metadata with image paths, loaded once per test session."""
    return data.load_metadata(real_data_dir)


def jpeg_bytes(size=(200, 150), color=(180, 120, 90), seed=0):
    """Return a small JPEG with some texture, as bytes."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(color) + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make_data_set(folder, rows=None, *, layout="flat", masks=True):
    """Write a tiny HAM10000-like data set and return its folder.

    ``rows`` are (lesion_id, image_id, dx) triples; by default 14 images of 7
    lesions, one lesion per class. ``layout`` is "flat" (images/), "kaggle"
    (two part folders, plus Kaggle's duplicate lower-case copy) or
    "dataverse" (tab-separated metadata, part folders, masks folder).
    """
    folder = Path(folder)
    if rows is None:
        rows = [(f"HAM_{i // 2:07d}", f"ISIC_{i:07d}", data.CLASSES[i // 2]) for i in range(14)]
    folder.mkdir(parents=True, exist_ok=True)
    separator = "\t" if layout == "dataverse" else ","
    lines = [HEADER.replace(",", separator)]
    for number, (lesion, image, dx) in enumerate(rows):
        lines.append(separator.join([lesion, image, dx, "histo", str(30 + number), "female", "back"]))
        part = "images" if layout == "flat" else f"HAM10000_images_part_{1 + number % 2}"
        (folder / part).mkdir(exist_ok=True)
        (folder / part / f"{image}.jpg").write_bytes(jpeg_bytes(seed=number))
        if layout == "kaggle":
            (folder / part.lower()).mkdir(exist_ok=True)
            (folder / part.lower() / f"{image}.jpg").write_bytes(jpeg_bytes(seed=number))
        if masks:
            (folder / "masks").mkdir(exist_ok=True)
            Image.new("L", (200, 150), 255).save(folder / "masks" / f"{image}_segmentation.png")
    name = "HAM10000_metadata.tab" if layout == "dataverse" else "HAM10000_metadata.csv"
    (folder / name).write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def tiny_data(tmp_path):
    """A 14-image data set in the flat layout."""
    return make_data_set(tmp_path / "ham")


def read_table(text):
    """Parse metadata text the way skinlib does (for error tests)."""
    return data.read_metadata(io.StringIO(text))


__all__ = ["HEADER", "jpeg_bytes", "make_data_set", "read_table", "pd"]

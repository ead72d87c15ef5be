"""Find the HAM10000 data set on disk and read its metadata into a tidy table.

The data set is looked for, in order, in the folder given by the caller, in the
``SKINLIB_DATA`` environment variable, and in ``data/ham10000/`` inside the
repository. Every common layout works: a flat ``images/`` folder, Kaggle's
``HAM10000_images_part_1/`` and ``HAM10000_images_part_2/``, or the unpacked
Harvard Dataverse archives; images are found recursively by their ISIC id.

Problems with the data are reported, never dropped silently: structural
problems (missing columns, unknown labels, duplicate ids) raise
:class:`DataError` naming the file, and :func:`check_data` lists everything
else (rows without an image, images without a row, unreadable images).
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib import repo_root

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
"""The seven diagnoses, in the order used for class indices everywhere."""

CLASS_NAMES = {
    "akiec": "Actinic keratosis / Bowen's disease",
    "bcc": "Basal cell carcinoma",
    "bkl": "Benign keratosis-like lesion",
    "df": "Dermatofibroma",
    "mel": "Melanoma",
    "nv": "Melanocytic nevus",
    "vasc": "Vascular lesion",
}
"""Plain-language names of the diagnoses."""

MALIGNANT = ("akiec", "bcc", "mel")
"""Diagnoses counted as malignant (or pre-malignant) in the binary view."""

SEXES = ("male", "female", "unknown")
"""Values of the ``sex`` column; a missing value counts as "unknown"."""

SITES = ("abdomen", "acral", "back", "chest", "ear", "face", "foot", "genital", "hand", "lower extremity", "neck",
         "scalp", "trunk", "unknown", "upper extremity")
"""Values of the ``localization`` column (anatomical site); a missing value counts as "unknown"."""

REQUIRED_COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")
"""Columns of ``HAM10000_metadata.csv``."""

ENV_VAR = "SKINLIB_DATA"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_IMAGE_NAME = re.compile(r"^(ISIC_\d{7})\.(jpe?g|png)$", re.IGNORECASE)
_MASK_NAME = re.compile(r"^(ISIC_\d{7})_segmentation\.png$", re.IGNORECASE)
_IMAGE_ID = re.compile(r"^ISIC_\d{7}$")
_METADATA_NAME = re.compile(r"^HAM10000_metadata(\.csv|\.tab|\.tsv)?$", re.IGNORECASE)
_MISSING_MARKERS = ("unknown", "")


class DataError(ValueError):
    """The data set on disk breaks a rule; the message names the file and the rule."""


def default_data_dir():
    """Return ``data/ham10000`` inside the repository, where downloads go by default."""
    return repo_root() / "data" / "ham10000"


def find_data_dir(path=None):
    """Return the folder that holds HAM10000.

    Parameters
    ----------
    path : str or Path, default=None
        Folder to use. When None, the ``SKINLIB_DATA`` environment variable is
        used, else ``data/ham10000`` inside the repository.

    Returns
    -------
    Path
        A folder that contains a HAM10000 metadata file somewhere below it.

    Raises
    ------
    FileNotFoundError
        When the folder does not exist or holds no metadata file; the message
        says where it looked and how to get the data.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx\\n")
    >>> find_data_dir(folder) == folder
    True
    """
    if path is not None:
        folder, origin = Path(path).expanduser(), "the folder given"
    elif os.environ.get(ENV_VAR):
        folder, origin = Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"
    else:
        folder, origin = default_data_dir(), "the default location"
    hint = (
        f"Set {ENV_VAR} to the folder that holds HAM10000_metadata.csv and the images, "
        "or run `python -m skinlib download` to fetch HAM10000 from Harvard Dataverse."
    )
    if not folder.is_dir():
        raise FileNotFoundError(f"HAM10000 not found: {folder} ({origin}) is not a folder. {hint}")
    try:
        find_metadata_file(folder)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error} {hint}") from None
    return folder


def find_metadata_file(data_dir):
    """Return the HAM10000 metadata file under ``data_dir`` (CSV preferred, shallowest first)."""
    data_dir = Path(data_dir)
    found = [p for p in _walk_files(data_dir, max_depth=3) if _METADATA_NAME.match(p.name)]
    if not found:
        raise FileNotFoundError(f"No HAM10000_metadata.csv (or .tab) found in {data_dir} or its subfolders.")
    found.sort(key=lambda p: (p.suffix.lower() != ".csv", len(p.parts), str(p)))
    return found[0]


def _walk_files(root, max_depth=None):
    """Yield every file below ``root``, in a stable (sorted) order."""
    root = Path(root)
    for folder, subfolders, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        subfolders.sort()
        if max_depth is not None and depth >= max_depth:
            subfolders.clear()
        for name in sorted(files):
            yield Path(folder) / name


@dataclasses.dataclass
class FileIndex:
    """Images and masks found on disk, keyed by ISIC image id."""

    images: dict
    masks: dict
    duplicates: list


def index_files(data_dir):
    """Find every image and mask below ``data_dir``, keyed by ISIC id.

    When an image is present twice (Kaggle's copy of HAM10000 ships every
    image in two folders), the first path in sorted order is used and the
    others are listed in ``duplicates``.
    """
    images, masks, duplicates = {}, {}, []
    for path in _walk_files(data_dir):
        image_match, mask_match = _IMAGE_NAME.match(path.name), _MASK_NAME.match(path.name)
        table, match = (images, image_match) if image_match else (masks, mask_match)
        if match is None:
            continue
        image_id = "ISIC_" + match.group(1)[5:]
        if image_id in table:
            duplicates.append(path)
        else:
            table[image_id] = path
    return FileIndex(images=images, masks=masks, duplicates=duplicates)


def read_metadata(path):
    """Read and validate a HAM10000 metadata file into a tidy DataFrame.

    Parameters
    ----------
    path : str or Path
        ``HAM10000_metadata.csv`` or an open text file; comma- or
        tab-separated (Harvard Dataverse's ``.tab``), told apart by the header.

    Returns
    -------
    DataFrame
        One row per image with the original columns, ``dx`` as an ordered
        categorical over :data:`CLASSES`, and added columns ``label`` (class
        index), ``dx_name`` (plain name) and ``malignant`` (bool). Missing
        values ('unknown' sex or site, empty age) become NaN.

    Raises
    ------
    DataError
        Unreadable file, missing columns, unknown diagnosis labels, malformed
        or duplicate image ids, or a lesion recorded with two diagnoses.

    Examples
    --------
    >>> import io
    >>> text = ("lesion_id,image_id,dx,dx_type,age,sex,localization\\n"
    ...         "HAM_0000001,ISIC_0000001,mel,histo,55,male,back\\n")
    >>> table = read_metadata(io.StringIO(text))
    >>> table.loc[0, "dx_name"], bool(table.loc[0, "malignant"])
    ('Melanoma', True)
    """
    name = getattr(path, "name", None) or str(path)
    try:
        text = path.read() if hasattr(path, "read") else Path(path).read_text(encoding="utf-8-sig")
        header = text.split("\n", 1)[0]
        separator = "\t" if header.count("\t") > header.count(",") else ","  # Dataverse's .tab or a CSV.
        table = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        raise DataError(f"{name}: could not be read as a metadata table: {error}") from None
    table.columns = [column.strip().strip('"') for column in table.columns]
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise DataError(
            f"{name}: missing required column(s) {missing}. Found {list(table.columns)}; "
            f"HAM10000 metadata has {list(REQUIRED_COLUMNS)}."
        )
    for column in table.columns:
        table[column] = table[column].str.strip().str.strip('"')
    _check_values(table, name)
    return _tidy(table)


def _rows(mask):
    """Describe the 1-based data rows where ``mask`` is true, at most ten of them."""
    rows = (np.flatnonzero(np.asarray(mask)) + 2).tolist()  # +2: header line and 1-based.
    shown = ", ".join(map(str, rows[:10]))
    return f"line(s) {shown}" + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def _check_values(table, name):
    """Raise DataError on labels, ids or lesions that break the data set's rules."""
    unknown = ~table["dx"].isin(CLASSES)
    if unknown.any():
        labels = sorted(set(table.loc[unknown, "dx"]))
        raise DataError(
            f"{name}: unknown diagnosis label(s) {labels} in column 'dx' at {_rows(unknown)}; "
            f"expected one of {list(CLASSES)}."
        )
    malformed = ~table["image_id"].str.match(_IMAGE_ID)
    if malformed.any():
        raise DataError(
            f"{name}: malformed image_id(s) {sorted(set(table.loc[malformed, 'image_id']))[:5]} at "
            f"{_rows(malformed)}; expected ISIC_ followed by 7 digits."
        )
    no_lesion = table["lesion_id"] == ""
    if no_lesion.any():
        raise DataError(f"{name}: empty lesion_id at {_rows(no_lesion)}; every image needs its lesion.")
    duplicated = table["image_id"].duplicated(keep=False)
    if duplicated.any():
        raise DataError(
            f"{name}: duplicate image_id(s) {sorted(set(table.loc[duplicated, 'image_id']))[:10]} "
            f"at {_rows(duplicated)}; each image must appear once."
        )
    labels_per_lesion = table.groupby("lesion_id")["dx"].nunique()
    mixed = labels_per_lesion[labels_per_lesion > 1]
    if len(mixed):
        raise DataError(
            f"{name}: lesion(s) {list(mixed.index[:5])} carry more than one diagnosis; "
            "a lesion must have a single dx for the grouped split."
        )


def _tidy(table):
    """Type the columns and add label, dx_name and malignant."""
    table = table.copy()
    age = table["age"].replace({marker: np.nan for marker in _MISSING_MARKERS})
    table["age"] = pd.to_numeric(age, errors="coerce")
    for column in ("sex", "localization", "dx_type"):
        table[column] = table[column].replace({marker: np.nan for marker in _MISSING_MARKERS})
    table["dx"] = pd.Categorical(table["dx"], categories=CLASSES, ordered=True)
    table["label"] = table["dx"].cat.codes.astype("int64")
    table["dx_name"] = table["dx"].map(CLASS_NAMES).astype(str)
    table["malignant"] = table["dx"].isin(MALIGNANT)
    columns = ["image_id", "lesion_id", "dx", "label", "dx_name", "malignant", "dx_type", "age", "sex", "localization"]
    return table[columns + [c for c in table.columns if c not in columns]].reset_index(drop=True)


@dataclasses.dataclass
class DataReport:
    """What :func:`check_data` found: counts and every problem, by file."""

    data_dir: Path
    metadata_file: Path
    n_rows: int
    n_images: int
    n_masks: int
    missing_images: list = dataclasses.field(default_factory=list)
    orphan_images: list = dataclasses.field(default_factory=list)
    duplicate_files: list = dataclasses.field(default_factory=list)
    unreadable: list = dataclasses.field(default_factory=list)
    missing_values: dict = dataclasses.field(default_factory=dict)

    @property
    def ok(self):
        """True when every row has a readable image."""
        return not self.missing_images and not self.unreadable

    def __str__(self):
        lines = [
            f"Data folder: {self.data_dir}",
            f"Metadata: {self.metadata_file.name}, {self.n_rows} rows",
            f"Images found: {self.n_images}; masks found: {self.n_masks}",
            f"Missing values: {self.missing_values}",
        ]
        problems = [
            ("Rows without an image", self.missing_images),
            ("Images without a metadata row (ignored)", self.orphan_images),
            ("Duplicate copies of an image (first copy used)", self.duplicate_files),
            ("Unreadable images", [f"{path}: {reason}" for path, reason in self.unreadable]),
        ]
        for title, items in problems:
            if items:
                lines.append(f"{title}: {len(items)}")
                lines.extend(f"  {item}" for item in items[:10])
                if len(items) > 10:
                    lines.append(f"  ... and {len(items) - 10} more")
        lines.append("OK: every row has a readable image." if self.ok else "NOT OK: see the problems above.")
        return "\n".join(lines)


def load_metadata(data_dir=None, *, missing_images="raise"):
    """Read HAM10000's metadata with each row's image and mask path.

    Parameters
    ----------
    data_dir : str or Path, default=None
        The data folder; see :func:`find_data_dir`.
    missing_images : {"raise", "skip"}, default="raise"
        What to do with metadata rows whose image file is not on disk:
        raise a :class:`DataError` listing them, or drop them with a warning
        that lists them.

    Returns
    -------
    DataFrame
        :func:`read_metadata`'s table plus ``image_path`` and ``mask_path``
        (NaN where a mask is absent), sorted by ``image_id``.

    Examples
    --------
    >>> metadata = load_metadata()  # doctest: +SKIP
    >>> metadata["dx"].value_counts()["nv"]  # doctest: +SKIP
    6705
    """
    if missing_images not in ("raise", "skip"):
        raise ValueError(f"missing_images must be 'raise' or 'skip'. Got {missing_images!r} instead.")
    table, _, metadata_file, _ = _load_with_index(data_dir)
    missing = table["image_path"].isna()
    if missing.any():
        ids = table.loc[missing, "image_id"].tolist()
        message = (
            f"{metadata_file}: {len(ids)} row(s) have no image file under {metadata_file.parent}: "
            f"{ids[:10]}{' ...' if len(ids) > 10 else ''}"
        )
        if missing_images == "raise":
            raise DataError(message + ". Pass missing_images='skip' to drop them, or restore the files.")
        warnings.warn(message + ". These rows were dropped.", stacklevel=2)
        table = table.loc[~missing].reset_index(drop=True)
    return table


def _load_with_index(data_dir):
    """Read the metadata, index the files, and join the paths."""
    data_dir = find_data_dir(data_dir)
    metadata_file = find_metadata_file(data_dir)
    table = read_metadata(metadata_file)
    index = index_files(data_dir)
    table["image_path"] = table["image_id"].map(lambda i: str(index.images[i]) if i in index.images else np.nan)
    table["mask_path"] = table["image_id"].map(lambda i: str(index.masks[i]) if i in index.masks else np.nan)
    table = table.sort_values("image_id").reset_index(drop=True)
    return table, index, metadata_file, data_dir


def check_data(data_dir=None, *, decode=True, progress=False):
    """Check the data set and report every problem without stopping at the first.

    Parameters
    ----------
    data_dir : str or Path, default=None
        The data folder; see :func:`find_data_dir`.
    decode : bool, default=True
        Also decode every image to find corrupt, truncated or unsupported files.
    progress : bool, default=False
        Show a progress bar while decoding.

    Returns
    -------
    DataReport
        Counts and lists of problems; ``report.ok`` is True when every row
        has a readable image. Structural problems still raise DataError.
    """
    table, index, metadata_file, data_dir = _load_with_index(data_dir)
    known = set(table["image_id"])
    report = DataReport(
        data_dir=data_dir,
        metadata_file=metadata_file,
        n_rows=len(table),
        n_images=len(index.images),
        n_masks=len(index.masks),
        missing_images=table.loc[table["image_path"].isna(), "image_id"].tolist(),
        orphan_images=[str(path) for image_id, path in sorted(index.images.items()) if image_id not in known],
        duplicate_files=[str(path) for path in index.duplicates],
        missing_values={c: int(table[c].isna().sum()) for c in ("age", "sex", "localization") if table[c].isna().any()},
    )
    if decode:
        from skinlib import images

        paths = table["image_path"].dropna().tolist()
        report.unreadable = images.find_unreadable(paths, progress=progress)
    return report

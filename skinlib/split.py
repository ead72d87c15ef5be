"""The train/validation/test split: grouped by lesion, stratified by diagnosis.

Several HAM10000 images can show the same lesion, so a random split by image
would put near-copies of one lesion on both sides and flatter every model.
:func:`make_split` keeps all images of a lesion in one split, keeps the class
mix about the same in each, and is seeded. The result is committed as a CSV
manifest (:data:`MANIFEST_PATH`) that every notebook and rerun reads, so the
test images are the same for everyone.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib.artefacts import write_atomic
from skinlib.data import CLASSES, DataError

MANIFEST_PATH = Path(__file__).resolve().parent / "splits" / "ham10000_split.csv"
"""The committed split manifest: image_id, lesion_id, dx, split."""

SPLITS = ("train", "val", "test")
SEED = 2018
N_FOLDS = 20
"""The data is cut into 20 lesion-grouped, stratified folds of about 5% each."""
VAL_FOLDS = (0, 1, 2)
TEST_FOLDS = (3, 4, 5)
MANIFEST_COLUMNS = ["image_id", "lesion_id", "dx", "split"]


def make_split(metadata, *, seed=SEED):
    """Assign every image to train (70%), val (15%) or test (15%), grouped by lesion.

    Uses scikit-learn's ``StratifiedGroupKFold`` with 20 shuffled folds of
    about 5% each: three folds become validation, three test, the rest
    training. The rows are sorted by ``image_id`` first, so the result does
    not depend on the order of the metadata file.

    Parameters
    ----------
    metadata : DataFrame
        At least ``image_id``, ``lesion_id`` and ``dx``.
    seed : int, default=2018
        Seed of the fold shuffle.

    Returns
    -------
    DataFrame
        Columns image_id, lesion_id, dx, split; one row per image, sorted by
        image_id.

    Examples
    --------
    >>> table = pd.DataFrame({
    ...     "image_id": [f"ISIC_{i:07d}" for i in range(400)],
    ...     "lesion_id": [f"HAM_{i // 2:07d}" for i in range(400)],
    ...     "dx": ["nv", "mel"] * 100 + ["bcc", "nv"] * 100})
    >>> manifest = make_split(table)
    >>> manifest["split"].value_counts().to_dict()["train"] > 250
    True
    """
    from sklearn.model_selection import StratifiedGroupKFold

    for column in ("image_id", "lesion_id", "dx"):
        if column not in metadata.columns:
            raise ValueError(f"make_split needs columns image_id, lesion_id and dx; '{column}' is missing.")
    table = metadata[["image_id", "lesion_id", "dx"]].astype(str).sort_values("image_id").reset_index(drop=True)
    if table["lesion_id"].nunique() < N_FOLDS:
        raise ValueError(
            f"make_split needs at least {N_FOLDS} lesions (it cuts {N_FOLDS} lesion-grouped folds). "
            f"Got {table['lesion_id'].nunique()} instead."
        )
    folds = StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed)
    fold_of_row = np.empty(len(table), dtype=int)
    for fold, (_, held_out) in enumerate(folds.split(table, table["dx"], groups=table["lesion_id"])):
        fold_of_row[held_out] = fold
    split = np.full(len(table), "train", dtype=object)
    split[np.isin(fold_of_row, VAL_FOLDS)] = "val"
    split[np.isin(fold_of_row, TEST_FOLDS)] = "test"
    table["split"] = split
    check_split(table)
    return table


def check_split(manifest):
    """Raise DataError unless every lesion lies in exactly one split and splits are known.

    >>> check_split(pd.DataFrame({"image_id": ["ISIC_0000001", "ISIC_0000002"],
    ...     "lesion_id": ["HAM_1", "HAM_1"], "dx": ["nv", "nv"], "split": ["train", "test"]}))
    Traceback (most recent call last):
    ...
    skinlib.data.DataError: 1 lesion(s) appear in more than one split, e.g. ['HAM_1'].
    """
    unknown = sorted(set(manifest["split"]) - set(SPLITS))
    if unknown:
        raise DataError(f"unknown split name(s) {unknown}; expected {list(SPLITS)}.")
    splits_per_lesion = manifest.groupby("lesion_id")["split"].nunique()
    crossing = splits_per_lesion[splits_per_lesion > 1]
    if len(crossing):
        raise DataError(f"{len(crossing)} lesion(s) appear in more than one split, e.g. {list(crossing.index[:5])}.")
    if manifest["image_id"].duplicated().any():
        raise DataError("the split lists some image_id more than once.")


def manifest_to_csv(manifest):
    """Return the manifest as CSV text, exactly as it is committed."""
    buffer = io.StringIO()
    manifest[MANIFEST_COLUMNS].to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def matches_manifest(manifest, path=MANIFEST_PATH):
    """Whether ``manifest`` is, byte for byte, the manifest file at ``path`` (by default the committed one)."""
    path = Path(path)
    return path.is_file() and path.read_text() == manifest_to_csv(manifest)


def save_manifest(manifest, path=MANIFEST_PATH):
    """Write the manifest atomically (a crash leaves the previous file in place)."""
    check_split(manifest)
    text = manifest_to_csv(manifest).encode()
    write_atomic(path, lambda handle: handle.write(text))
    return Path(path)


def load_manifest(path=MANIFEST_PATH):
    """Read a split manifest and check it.

    >>> manifest = load_manifest()
    >>> sorted(manifest["split"].unique())
    ['test', 'train', 'val']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no split manifest. Make one with `python -m skinlib split --write`.")
    manifest = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [column for column in MANIFEST_COLUMNS if column not in manifest.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; a manifest has {MANIFEST_COLUMNS}.")
    try:
        check_split(manifest)
    except DataError as error:
        raise DataError(f"{path}: {error}") from None
    return manifest


def apply_split(metadata, manifest=None):
    """Add the manifest's ``split`` column to the metadata, checking that both agree.

    Parameters
    ----------
    metadata : DataFrame
        From :func:`skinlib.data.load_metadata`.
    manifest : DataFrame, default=None
        Default: the committed manifest, :func:`load_manifest`.

    Returns
    -------
    DataFrame
        ``metadata`` with a ``split`` column, same rows and order.

    Raises
    ------
    DataError
        When an image is missing from the manifest, or the manifest's lesion
        or diagnosis for an image differs from the metadata's.
    """
    manifest = load_manifest() if manifest is None else manifest
    known = manifest.set_index("image_id")
    absent = ~metadata["image_id"].isin(known.index)
    if absent.any():
        ids = metadata.loc[absent, "image_id"].tolist()
        raise DataError(
            f"{len(ids)} image(s) are not in the split manifest, e.g. {ids[:5]}; this manifest was made for "
            "the 10,015 HAM10000 images. For other data, make a new split with skinlib.split.make_split."
        )
    joined = known.loc[metadata["image_id"]]
    for column in ("lesion_id", "dx"):
        differs = joined[column].to_numpy() != metadata[column].astype(str).to_numpy()
        if differs.any():
            ids = metadata.loc[differs, "image_id"].tolist()
            raise DataError(f"the manifest's {column} differs from the metadata for {len(ids)} image(s), "
                            f"e.g. {ids[:5]}.")
    result = metadata.copy()
    result["split"] = pd.Categorical(joined["split"].to_numpy(), categories=SPLITS)
    return result


def split_summary(manifest):
    """Return a table of images per class and split, with lesion counts and percentages.

    >>> int(split_summary(load_manifest()).loc["total", "images"])
    10015
    """
    counts = pd.crosstab(manifest["dx"], manifest["split"]).reindex(index=list(CLASSES), columns=list(SPLITS))
    counts = counts.fillna(0).astype(int)
    counts.loc["total"] = counts.sum()
    counts["images"] = counts.sum(axis=1)
    lesions = manifest.groupby("split")["lesion_id"].nunique().reindex(list(SPLITS))
    counts.loc["lesions"] = [*lesions.tolist(), manifest["lesion_id"].nunique()]
    counts.loc["share %"] = (100 * counts.loc["total"] / len(manifest)).round(1)
    return counts


@dataclasses.dataclass
class SplitImages:
    """One split's rows of metadata, decoded images (uint8) and class indices."""

    table: pd.DataFrame
    images: np.ndarray
    labels: np.ndarray


def load_split_images(size=(64, 64), *, splits=("train", "val"), per_split=None, seed=0, data_dir=None,
                      progress=True):
    """Decoded images and labels of the named splits, from the committed manifest and the image cache.

    Parameters
    ----------
    size : tuple of int (height, width), default=(64, 64)
    splits : sequence of str, default=("train", "val")
        Which splits to load; chapters before the final evaluation never load "test".
    per_split : int, default=None
        At most this many images per split, drawn at random but stratified by
        diagnosis (for smoke runs); None loads everything.
    seed : int, default=0
    data_dir : str or Path, default=None
    progress : bool, default=True

    Returns
    -------
    dict of str to SplitImages
    """
    from skinlib.data import load_metadata
    from skinlib.images import load_images

    metadata = apply_split(load_metadata(data_dir))
    result = {}
    for name in splits:
        if name not in SPLITS:
            raise ValueError(f"splits must be among {list(SPLITS)}. Got {name!r} instead.")
        table = metadata[metadata["split"] == name]
        if per_split is not None and per_split < len(table):
            table = table.groupby("dx", observed=True).sample(frac=per_split / len(table), random_state=seed)
            table = table.sort_values("image_id")
        table = table.reset_index(drop=True)
        pixels = load_images(table["image_path"], size=size, progress=progress)
        result[name] = SplitImages(table=table, images=pixels, labels=table["label"].to_numpy())
    return result


def lesion_share(table, share, *, seed=0):
    """Rows of the images of a share of the lesions, drawn per diagnosis: for training on less data.

    Within each diagnosis the lesions are put in a seeded random order and the first ``round(share * count)`` (at
    least one) are kept, with all of their images. With one seed the shares are nested: the lesions of a quarter
    are among those of a half, so a curve over shares adds data rather than drawing new data at each point.

    Parameters
    ----------
    table : DataFrame
        One row per image, with columns ``lesion_id`` and ``dx`` (a split's ``SplitImages.table``).
    share : float
        In (0, 1]; 1 keeps every row.
    seed : int, default=0

    Returns
    -------
    ndarray of int
        Positions of the kept rows in ``table``, in its order.

    >>> table = pd.DataFrame({"lesion_id": ["a", "a", "b", "c", "d", "e"], "dx": ["nv"] * 4 + ["mel"] * 2})
    >>> lesion_share(table, 1.0).tolist()
    [0, 1, 2, 3, 4, 5]
    >>> half = lesion_share(table, 0.5, seed=1)
    >>> len(set(table["lesion_id"].iloc[half])), sorted(set(table["dx"].iloc[half]))
    (3, ['mel', 'nv'])
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1]. Got {share!r} instead.")
    for column in ("lesion_id", "dx"):
        if column not in table.columns:
            raise ValueError(f"lesion_share needs columns lesion_id and dx; '{column}' is missing.")
    lesions = table.drop_duplicates("lesion_id")[["lesion_id", "dx"]].sort_values("lesion_id")
    rng = np.random.default_rng(seed)
    kept = []
    for _, group in lesions.groupby("dx", observed=True, sort=True):
        order = group["lesion_id"].to_numpy()[rng.permutation(len(group))]
        kept.extend(order[: max(1, round(share * len(group)))])
    return np.flatnonzero(table["lesion_id"].isin(kept).to_numpy())

"""Tables and plots for exploring HAM10000 (used by notebook 01 and the main notebook).

Every function takes the metadata table from :func:`skinlib.data.load_metadata`
(or arrays) and returns a DataFrame or a matplotlib Figure; nothing is printed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib import repo_root
from skinlib.artefacts import write_atomic
from skinlib.data import CLASS_NAMES, CLASSES, MALIGNANT
from skinlib.images import read_image

# A name that notebooks 01 and 03 still read from this module; it lives in skinlib.artefacts. Remove this line once
# the notebooks import it from there.
from skinlib.artefacts import figure_dir  # noqa: F401

MALIGNANT_COLOUR, BENIGN_COLOUR = "#c0392b", "#2e86c1"


def class_colours():
    """Return one colour per class: reds for malignant classes, blues for benign ones."""
    reds, blues = iter(["#c0392b", "#e67e22", "#8e44ad"]), iter(["#2e86c1", "#17a589", "#7f8c8d", "#2c3e50"])
    return {dx: next(reds) if dx in MALIGNANT else next(blues) for dx in CLASSES}


def save_figure(figure, name, *, folder):
    """Save a figure as PNG atomically and return its path relative to the repository."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    path = Path(folder) / f"{name}.png"
    write_atomic(path, lambda handle: handle.write(buffer.getvalue()))
    return path.relative_to(repo_root()).as_posix() if path.is_relative_to(repo_root()) else path.name


def class_table(metadata):
    """Images, share, lesions and images per lesion for each diagnosis, with a total row.

    >>> table = pd.DataFrame({"dx": ["nv", "nv", "mel"], "lesion_id": ["a", "a", "b"]})
    >>> class_table(table).loc["nv", ["images", "lesions"]].tolist()
    [2, 1]
    """
    grouped = metadata.groupby(metadata["dx"].astype(str))
    table = pd.DataFrame({"images": grouped.size(), "lesions": grouped["lesion_id"].nunique()})
    table = table.reindex([dx for dx in CLASSES if dx in table.index])
    table.insert(0, "name", [CLASS_NAMES[dx] for dx in table.index])
    table.insert(1, "malignant", ["yes" if dx in MALIGNANT else "no" for dx in table.index])
    table.loc["total"] = ["", "", table["images"].sum(), metadata["lesion_id"].nunique()]
    table["share %"] = (100 * table["images"] / len(metadata)).astype(float).round(1)
    table["images per lesion"] = (table["images"] / table["lesions"]).astype(float).round(2)
    return table.rename_axis("dx")


def plot_class_distribution(metadata):
    """Horizontal bars of images per class with counts and percentages, malignant classes in red."""
    import matplotlib.pyplot as plt

    counts = metadata["dx"].astype(str).value_counts().reindex(CLASSES).sort_values()
    figure, axis = plt.subplots(figsize=(8, 3.4))
    colours = [MALIGNANT_COLOUR if dx in MALIGNANT else BENIGN_COLOUR for dx in counts.index]
    bars = axis.barh([f"{CLASS_NAMES[dx]} ({dx})" for dx in counts.index], counts.values, color=colours)
    for bar, count in zip(bars, counts.values):
        axis.annotate(f" {count} ({100 * count / counts.sum():.1f}%)", (count, bar.get_y() + bar.get_height() / 2),
                      va="center", fontsize=8)
    axis.set_xlabel("images")
    axis.set_xlim(0, counts.max() * 1.25)
    axis.set_title("Images per diagnosis (red: malignant)")
    return figure


def images_per_lesion(metadata):
    """How many lesions have 1, 2, 3, ... images.

    >>> images_per_lesion(pd.DataFrame({"lesion_id": ["a", "a", "b"]})).to_dict()
    {1: 1, 2: 1}
    """
    return metadata["lesion_id"].value_counts().value_counts().sort_index().rename_axis("images").rename("lesions")


def share_table(metadata, row, column="dx", *, normalize="columns"):
    """Cross-tabulate two columns as percentages (missing values shown as 'missing')."""
    rows = metadata[row].astype(object).fillna("missing")
    columns = metadata[column].astype(str)
    table = pd.crosstab(rows, columns, normalize=normalize) * 100
    return table.reindex(columns=[c for c in CLASSES if c in table.columns] or table.columns).round(1)


def plot_heat_table(table, *, title, fmt=".0f", cmap="Blues"):
    """Draw a table of numbers as an annotated heat map."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    figure, axis = plt.subplots(figsize=(1.0 + 0.8 * table.shape[1], 0.8 + 0.32 * table.shape[0]))
    sns.heatmap(table, annot=True, fmt=fmt, cmap=cmap, cbar=False, ax=axis, annot_kws={"fontsize": 8})
    axis.set_title(title)
    axis.set_xlabel("")
    axis.set_ylabel("")
    return figure


def plot_age_by_class(metadata):
    """Box plots of patient age per diagnosis."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    figure, axis = plt.subplots(figsize=(8, 3.4))
    table = metadata.assign(dx=metadata["dx"].astype(str))
    sns.boxplot(data=table, x="dx", y="age", order=list(CLASSES), hue="dx", palette=class_colours(), ax=axis,
                legend=False, fliersize=2)
    axis.set_title("Age by diagnosis")
    axis.set_xlabel("")
    return figure


def sample_rows(metadata, *, per_class=6, seed=0):
    """Pick ``per_class`` random rows of each diagnosis (seeded), in class order."""
    picks = [group.sample(min(per_class, len(group)), random_state=seed)
             for _, group in metadata.groupby(metadata["dx"].astype(str), sort=False)]
    table = pd.concat(picks)
    return table.assign(order=table["dx"].astype(str).map(CLASSES.index)).sort_values("order", kind="stable")


def plot_image_grid(pixels, titles, *, columns, row_labels=None, size=1.6):
    """Show images in a grid with a title under each and optional row labels."""
    import matplotlib.pyplot as plt

    rows = int(np.ceil(len(pixels) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size * 0.85), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_frame_on(False)
        if index < len(pixels):
            axis.imshow(pixels[index])
            axis.set_xlabel(titles[index], fontsize=7)
        if row_labels is not None and index % columns == 0 and index // columns < len(row_labels):
            axis.set_ylabel(row_labels[index // columns], fontsize=9)
    figure.tight_layout()
    return figure


def plot_samples(metadata, *, per_class=6, seed=0):
    """A grid of real images: one row per diagnosis, ``per_class`` images each."""
    rows = sample_rows(metadata, per_class=per_class, seed=seed)
    pixels = [read_image(path) for path in rows["image_path"]]
    titles = [f"{image_id}" for image_id in rows["image_id"]]
    labels = [dx for dx in CLASSES if dx in set(rows["dx"].astype(str))]
    return plot_image_grid(pixels, titles, columns=per_class, row_labels=labels)


def read_mask(path):
    """Read a lesion mask as a boolean array (True inside the lesion)."""
    from PIL import Image

    with Image.open(path) as mask:
        return np.asarray(mask.convert("L")) > 127


def overlay_mask(pixels, mask, *, colour=(0, 255, 0)):
    """Draw the outline of ``mask`` on a copy of ``pixels``.

    >>> overlay_mask(np.zeros((4, 4, 3), np.uint8), np.eye(4, dtype=bool)).shape
    (4, 4, 3)
    """
    inside = mask.astype(bool)
    edge = inside & ~(np.roll(inside, 1, 0) & np.roll(inside, -1, 0) & np.roll(inside, 1, 1) & np.roll(inside, -1, 1))
    result = pixels.copy()
    result[edge] = colour
    return result


def plot_mask_overlays(metadata, *, per_class=1, seed=0):
    """Real images of each diagnosis with their lesion masks outlined in green, four to a row (large enough to see
    the outline against the lesion's edge)."""
    rows = sample_rows(metadata.dropna(subset=["mask_path"]), per_class=per_class, seed=seed)
    pixels = [overlay_mask(read_image(image), read_mask(mask))
              for image, mask in zip(rows["image_path"], rows["mask_path"])]
    titles = [f"{dx}: {image_id}" for dx, image_id in zip(rows["dx"].astype(str), rows["image_id"])]
    return plot_image_grid(pixels, titles, columns=min(len(pixels), 4), size=3.2)


def mask_area_share(mask_paths):
    """Share of each image covered by the lesion (0 to 1), from the masks."""
    return np.array([read_mask(path).mean() for path in mask_paths])


def plot_by_class(values, metadata, *, ylabel, title):
    """Box plots of one number per image, grouped by diagnosis."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    table = pd.DataFrame({"value": values, "dx": metadata["dx"].astype(str).to_numpy()})
    figure, axis = plt.subplots(figsize=(8, 3.2))
    sns.boxplot(data=table, x="dx", y="value", order=[c for c in CLASSES if c in set(table["dx"])], hue="dx",
                palette=class_colours(), ax=axis, legend=False, fliersize=2)
    axis.set_ylabel(ylabel)
    axis.set_xlabel("")
    axis.set_title(title)
    return figure


def colour_statistics(pixels, metadata):
    """Mean red, green, blue and brightness per image, plus class, as a table.

    >>> stats = colour_statistics(np.full((2, 4, 4, 3), 100, np.uint8), pd.DataFrame({"dx": ["nv", "mel"]}))
    >>> stats["brightness"].tolist()
    [100.0, 100.0]
    """
    means = pixels.reshape(len(pixels), -1, 3).mean(axis=1)
    table = pd.DataFrame(means, columns=["red", "green", "blue"])
    table["brightness"] = means @ np.array([0.299, 0.587, 0.114])
    table["dx"] = pd.Categorical(metadata["dx"].astype(str).to_numpy(), categories=CLASSES)
    return table.round(1)


def plot_mean_colours(statistics):
    """One swatch per class showing its average colour, with the RGB values."""
    import matplotlib.pyplot as plt

    means = statistics.groupby("dx", observed=True)[["red", "green", "blue"]].mean()
    figure, axes = plt.subplots(1, len(means), figsize=(1.3 * len(means), 1.7))
    for axis, (dx, row) in zip(np.atleast_1d(axes), means.iterrows()):
        axis.imshow(np.full((10, 10, 3), row.to_numpy() / 255))
        axis.set_title(dx, fontsize=9)
        axis.set_xlabel(" ".join(f"{v:.0f}" for v in row), fontsize=7)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle("Average colour per diagnosis (R G B)", fontsize=10)
    return figure


def image_sizes(paths):
    """Count images by (width, height), reading only the file headers."""
    from PIL import Image

    sizes = defaultdict(int)
    for path in paths:
        with Image.open(path) as image:
            sizes[image.size] += 1
    return pd.Series(sizes, name="images").rename_axis(["width", "height"])


def duplicate_files(paths):
    """Return groups of byte-identical files (lists of paths), found by hashing every file."""
    groups = defaultdict(list)
    for path in paths:
        groups[hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()].append(path)
    return [sorted(group) for group in groups.values() if len(group) > 1]

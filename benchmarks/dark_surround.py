"""What does a dermoscope's dark circular surround cost the checker, and would cutting it away win it back?

Only about 3% of the training images have four dark corners (the check is printed first), but many contact
dermoscopes and other archives show the skin inside a black circle or ellipse. Each validation image gets such
a surround (everything outside a centred circle as tall as the image, or outside the ellipse that touches all
four sides, set to black), and is scored by the checker itself (:class:`skinlib.predict.Checker`: the shipped
model with the procedure, TTA or one pass, and temperature chapter 04 chose), as it is and after cutting the image to
the largest 4:3 box inside the bright region, resized back: once with the region's geometry known, and once as
:func:`skinlib.images.cut_surround` finds it (the checker's own step; it also counts the images it cuts, of the
untouched validation and training images too).

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/dark_surround.py --out benchmarks/results/dark_surround.json

About 18 minutes on 2 cores for a model with TTA (an AMD EPYC without AVX-512), about 3.5 minutes for the
one-pass single model shipped before the ensemble (an AMD EPYC with AVX-512); 1,018 s for the
batch-64 three-seed ensemble with TTA (twelve passes), 317 s for the batch-32 ensemble in one pass shipped after it
(an Intel Xeon with AVX-512). The test split is never read.
"""

import sys
import time
from pathlib import Path

import numpy as np

from skinlib import images, split
from skinlib.acquisition import field_mask
from skinlib.predict import Checker

sys.path.insert(0, str(Path(__file__).resolve().parent))

from framing import arguments, score, write_record  # noqa: E402


def inner_box(shape, kind):
    """The largest centred 4:3 box inside that region: (top, left, height, width).

    >>> inner_box((150, 200), "circle"), inner_box((150, 200), "ellipse")
    ((30, 40, 90, 120), (22, 29, 106, 141))
    """
    height, width = shape
    if kind == "circle":  # A 4:3 box's diagonal is 5/3 of its height: the circle's diameter, the image's height.
        box_height, box_width = int(height * 3 / 5), int(height * 4 / 5)
    else:  # The largest box of the ellipse's own shape inside it: each side divided by the square root of 2.
        box_height, box_width = int(height / np.sqrt(2)), int(width / np.sqrt(2))
    return (height - box_height) // 2, (width - box_width) // 2, box_height, box_width


CONDITIONS = {
    "as taken": lambda x: x,
    "dark circle": lambda x: x * field_mask(x.shape[:2], "circle")[..., None],
    "dark ellipse": lambda x: x * field_mask(x.shape[:2], "ellipse")[..., None],
}


def cut(pixels, kind):
    """Cut each image to the inner box of ``kind``'s bright region and resize it back to its size."""
    top, left, height, width = inner_box(pixels.shape[1:3], kind)
    return np.stack([images.resize(x[top:top + height, left:left + width], pixels.shape[1:3]) for x in pixels])


def main():
    args = arguments(__doc__)
    started = time.perf_counter()
    checker = Checker(backend="keras")
    loaded = split.load_split_images(checker.size, splits=("train", "val"), progress=False)
    corners = loaded["train"].images.mean(-1)
    dark = np.stack([corners[:, :12, :12], corners[:, :12, -12:], corners[:, -12:, :12],
                     corners[:, -12:, -12:]]).mean((2, 3)) < 40
    share = float(dark.all(0).mean())
    print(f"training images with four dark corners (12x12 mean < 40): {share:.3f}", flush=True)
    pixels, labels = loaded["val"].images[:args.limit], loaded["val"].labels[:args.limit]
    batches = {name: np.stack([change(x) for x in pixels]) for name, change in CONDITIONS.items()}
    batches["dark circle, cut to its inner box"] = cut(batches["dark circle"], "circle")
    batches["dark ellipse, cut to its inner box"] = cut(batches["dark ellipse"], "ellipse")
    batches["as taken, cut to the circle's inner box"] = cut(batches["as taken"], "circle")
    found, cut_ids = {}, {}  # What images.cut_surround, which finds the field itself, makes of each image.
    for name in CONDITIONS:
        pairs = [(x, images.cut_surround(x)) for x in batches[name]]  # The same array back when not cut.
        was_cut = [k is not x for x, k in pairs]
        found[name] = int(sum(was_cut))
        batches[f"{name}, surround found and cut"] = np.stack([images.resize(k, checker.size) for _, k in pairs])
        if name == "as taken":
            cut_ids["val"] = [i for i, cut_here in zip(loaded["val"].table["image_id"], was_cut) if cut_here]
    cut_ids["train"] = [image_id for image_id, x in zip(loaded["train"].table["image_id"], loaded["train"].images)
                        if images.cut_surround(x) is not x]
    print(f"images cut by cut_surround: {found}; untouched images cut: {cut_ids}", flush=True)
    scores = {}
    for name, batch in batches.items():
        begin = time.perf_counter()
        scores[name] = score(checker, labels, batch)
        scores[name]["balanced_accuracy_change"] = round(
            scores[name]["balanced_accuracy"] - scores["as taken"]["balanced_accuracy"], 4)
        print(f"{name}: {scores[name]} ({time.perf_counter() - begin:.0f} s)", flush=True)
    write_record(args, "dark_surround.py", checker, labels, started, train_four_dark_corners=round(share, 4),
                 cut_by_cut_surround={**found, "train": len(cut_ids["train"]),
                                      "train_images": len(loaded["train"].images)},
                 untouched_images_cut=cut_ids, scores=scores)


if __name__ == "__main__":
    main()

"""Do the explanations look at the lesion? Grad-CAM and LIME scored against the dermatologists' masks.

Each explanation of :mod:`skinlib.explain` is compared with the lesion mask: the share of it on the lesion, the
pointing game (is its hottest pixel on the lesion?) and the share in the image's outer frame, each against two
baselines that know nothing about the image: a uniform map (the lesion's share of the image) and a centred
Gaussian (dermoscopic images are taken with the lesion in the middle). Chapter 04 uses these.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skinlib.data import CLASSES
from skinlib.explain import grad_cam, lime_explanation


def mask_scores(heat, mask):
    """How well a heat map agrees with the lesion mask.

    Parameters
    ----------
    heat : array-like of shape (height, width)
    mask : array-like of bool, same shape
        True on the lesion.

    Returns
    -------
    dict
        ``inside`` (the share of the heat map's mass inside the lesion; NaN
        for an empty map) and ``hit`` (the pointing game: is its hottest
        pixel on the lesion?).

    Examples
    --------
    >>> heat = np.zeros((4, 4)); heat[0, 0] = 1.0; heat[3, 3] = 3.0
    >>> mask = np.zeros((4, 4), bool); mask[3, 3] = True
    >>> mask_scores(heat, mask)
    {'inside': 0.75, 'hit': True}
    """
    heat, mask = np.asarray(heat, "float64"), np.asarray(mask, bool)
    if heat.shape != mask.shape:
        raise ValueError(f"heat map {heat.shape} and mask {mask.shape} differ in shape.")
    total = heat.sum()
    inside = float(heat[mask].sum() / total) if total > 0 else float("nan")
    return {"inside": inside, "hit": bool(mask.flat[int(np.argmax(heat))])}


def read_mask_at(path, size):
    """A lesion mask as a boolean array at ``size`` (height, width), resized with nearest neighbours.

    Parameters
    ----------
    path : str or Path
        A HAM10000 segmentation mask (white on the lesion).
    size : tuple (height, width)

    Returns
    -------
    ndarray of bool, shape ``size``

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mask.png"
    >>> Image.fromarray(np.eye(4, dtype="uint8") * 255).save(path)
    >>> read_mask_at(path, (2, 2)).tolist()
    [[True, False], [False, True]]
    """
    from PIL import Image

    with Image.open(path) as image:
        resized = image.convert("L").resize((size[1], size[0]), Image.NEAREST)
    return np.asarray(resized) > 127


def frame_share(heat, *, margin=0.1):
    """The share of a heat map's mass in the outer ``margin`` frame of the image (rulers, vignetting, corners).

    Parameters
    ----------
    heat : array-like of shape (height, width)
    margin : float, default=0.1
        Width of the frame, as a share of each side (at least one pixel).

    Returns
    -------
    float
        NaN for an empty map.

    Examples
    --------
    >>> heat = np.ones((10, 10))
    >>> round(frame_share(heat), 2)  # 1 - 0.8 * 0.8 of a uniform map
    0.36
    """
    heat = np.asarray(heat, "float64")
    rows, columns = heat.shape
    dr, dc = max(1, int(round(margin * rows))), max(1, int(round(margin * columns)))
    total = heat.sum()
    centre = heat[dr:rows - dr, dc:columns - dc].sum()
    return float((total - centre) / total) if total > 0 else float("nan")


def centre_prior(shape, *, sigma=0.25):
    """A heat map that only says "the lesion is in the middle": a Gaussian centred on the image.

    Dermoscopic images are taken with the lesion centred, so an explanation that beats a uniform map may only be
    rediscovering that. This map is the stronger baseline.

    Parameters
    ----------
    shape : tuple (height, width)
    sigma : float, default=0.25
        Standard deviation as a share of each side.

    Returns
    -------
    ndarray of shape ``shape``, float64, 1 at the centre

    Examples
    --------
    >>> prior = centre_prior((5, 7))
    >>> [int(i) for i in np.unravel_index(prior.argmax(), prior.shape)], float(prior.max())
    ([2, 3], 1.0)
    """
    rows, columns = shape
    y = (np.arange(rows) + 0.5) / rows - 0.5
    x = (np.arange(columns) + 0.5) / columns - 0.5
    return np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2))


def score_cams(model, pixels, masks, labels, predicted, *, per_class=25, metadata=None, seed=0):
    """Grad-CAM of the predicted class for up to ``per_class`` test images per true class, scored against masks.

    Parameters
    ----------
    model : keras.Model
    pixels : ndarray of shape (n, height, width, 3)
    masks : list of ndarray of bool or None
        Images without a mask (or with an empty one) are skipped.
    labels, predicted : array-like of shape (n,)
    per_class : int, default=25
        Images drawn at random (``seed``) per true class.
    metadata : ndarray of shape (n, n_metadata), default=None
    seed : int, default=0

    Returns
    -------
    DataFrame
        One row per image: class, correct, inside (heat share on the lesion), hit (pointing game), frame (heat
        share in the outer frame), the same numbers of a uniform map (``inside_uniform``, ``frame_uniform``) and
        of :func:`centre_prior` (``inside_centre``, ``hit_centre``).

    Examples
    --------
    >>> scores = score_cams(model, pixels, masks, labels, predicted, per_class=25)  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    rows = []
    for k in range(len(CLASSES)):
        candidates = np.flatnonzero(labels == k)
        chosen = rng.choice(candidates, size=min(per_class, len(candidates)), replace=False) if len(candidates) else []
        for row in sorted(int(r) for r in chosen):
            mask = masks[row]
            if mask is None or not mask.any():
                continue
            heat, _ = grad_cam(model, pixels[row], int(predicted[row]),
                               metadata=None if metadata is None else metadata[row])
            uniform, centre = np.ones_like(heat), mask_scores(centre_prior(heat.shape), mask)
            rows.append({"row": row, "class": CLASSES[k], "correct": bool(predicted[row] == k),
                         **mask_scores(heat, mask), "frame": frame_share(heat),
                         "inside_uniform": mask_scores(uniform, mask)["inside"], "frame_uniform": frame_share(uniform),
                         "inside_centre": centre["inside"], "hit_centre": centre["hit"]})
    return pd.DataFrame(rows)


def summarise_scores(scores):
    """Mean Grad-CAM scores per class and for all images, split into correct and wrong predictions.

    ``inside_uniform`` (the lesion's share of the image) is also the chance that a random pixel hits the
    lesion: the baseline of both ``inside`` and ``pointing_game``; ``frame_uniform`` is that of ``frame``.
    The centred prior (:func:`centre_prior`) is the stronger baseline: ``inside_centre`` and
    ``pointing_centre`` (is the centre pixel on the lesion?).

    Parameters
    ----------
    scores : DataFrame
        From :func:`score_cams`.

    Returns
    -------
    DataFrame
        Indexed by (class, predictions): each class with "all", then "all" with "correct", "wrong" and "all";
        columns ``images``, ``inside``, ``inside_uniform``, ``pointing_game``, ``frame``, ``frame_uniform``, and
        where the scores have them, the centred prior's ``inside_centre`` and ``pointing_centre``.

    Examples
    --------
    >>> scores = pd.DataFrame({"class": ["mel", "nv"], "correct": [True, False], "inside": [0.8, 0.4],
    ...                        "hit": [True, False], "frame": [0.1, 0.3], "inside_uniform": [0.5, 0.5],
    ...                        "frame_uniform": [0.36, 0.36]})
    >>> summarise_scores(scores).loc[("all", "all"), ["images", "inside"]].tolist()
    [2.0, 0.6000000000000001]
    """
    def summary(frame):
        row = {"images": len(frame), "inside": frame["inside"].mean(), "inside_uniform": frame["inside_uniform"].mean(),
               "pointing_game": frame["hit"].mean(), "frame": frame["frame"].mean(),
               "frame_uniform": frame["frame_uniform"].mean()}
        if "inside_centre" in frame:
            row.update(inside_centre=frame["inside_centre"].mean(), pointing_centre=frame["hit_centre"].mean())
        return pd.Series(row)

    per_class = {(dx, "all"): summary(group) for dx, group in scores.groupby("class", sort=False)}
    overall = {("all", kind): summary(scores[scores["correct"] == flag]) for kind, flag in (("correct", True),
                                                                                            ("wrong", False))}
    overall[("all", "all")] = summary(scores)
    return pd.DataFrame({**per_class, **overall}).T.rename_axis(["class", "predictions"])


def describe_scores(summary, *, tolerance=0.02, lift_tolerance=0.05):
    """Say in words how the Grad-CAM scores of correct and wrong predictions compare, from :func:`summarise_scores`.

    Parameters
    ----------
    summary : DataFrame
        From :func:`summarise_scores`; needs the rows ("all", "correct") and ("all", "wrong").
    tolerance : float, default=0.02
        Differences of shares smaller than this are called "about as much".
    lift_tolerance : float, default=0.05
        The same for the lift over the uniform map (a difference of two differences, over a few dozen images).

    Returns
    -------
    str
        Correct predictions, wrong ones, how they differ, and (where the scores have it) Grad-CAM against the
        centred prior.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = {("all", "correct"): dict(images=10, inside=0.65, inside_uniform=0.33, pointing_game=0.8, frame=0.035,
    ...                                  frame_uniform=0.36),
    ...         ("all", "wrong"): dict(images=5, inside=0.50, inside_uniform=0.30, pointing_game=0.6, frame=0.10,
    ...                                frame_uniform=0.36)}
    >>> print(describe_scores(pd.DataFrame(rows).T).splitlines()[-1])  # doctest: +NORMALIZE_WHITESPACE
    Compared with correct predictions, the wrong ones put more heat in the image frame (10% against 4%), and
    their heat beats the uniform map on the lesion by less (20 points against 32). Hair and skin texture inside
    the lesion cannot be told apart by these scores, nor at the resolution of these maps.
    """
    lines = []
    for kind in ("correct", "wrong"):
        row = summary.loc[("all", kind)]
        lines.append(f"{kind} predictions ({int(row['images'])} images): {row['inside']:.0%} of the heat on the lesion "
                     f"(uniform map {row['inside_uniform']:.0%}), hottest pixel on the lesion in "
                     f"{row['pointing_game']:.0%} (chance {row['inside_uniform']:.0%}), {row['frame']:.0%} in the "
                     f"outer frame (uniform map {row['frame_uniform']:.0%}).")
    right, wrong = summary.loc[("all", "correct")], summary.loc[("all", "wrong")]
    if not (right["images"] and wrong["images"]):
        return "\n".join(lines + ["No wrong (or no correct) predictions among the scored images: nothing to compare."])

    def compared(a, b, more, less, within=tolerance):
        return "about as much" if abs(a - b) < within else (more if a > b else less)

    lift_right = right["inside"] - right["inside_uniform"]
    lift_wrong = wrong["inside"] - wrong["inside_uniform"]
    lines.append(f"Compared with correct predictions, the wrong ones put "
                 f"{compared(wrong['frame'], right['frame'], 'more', 'less')} heat in the image frame "
                 f"({wrong['frame']:.0%} against {right['frame']:.0%}), and their heat beats the uniform map on the "
                 f"lesion by {compared(lift_wrong, lift_right, 'more', 'less', lift_tolerance)} "
                 f"({lift_wrong * 100:.0f} points "
                 f"against {lift_right * 100:.0f}). Hair and skin texture inside the lesion cannot be told apart by "
                 "these scores, nor at the resolution of these maps.")
    if "inside_centre" in summary:
        every = summary.loc[("all", "all")] if ("all", "all") in summary.index else right
        # Differences of the shares as printed (whole percent), so the sentence adds up for the reader.
        lift = (round(every["inside"] * 100) - round(every["inside_centre"] * 100)) / 100
        pointing = (round(every["pointing_game"] * 100) - round(every["pointing_centre"] * 100)) / 100
        lines.append(f"Against a map that only says 'the lesion is in the middle' (a centred Gaussian), Grad-CAM puts "
                     f"{abs(lift) * 100:.0f} points {'more' if lift >= 0 else 'less'} heat on the lesion "
                     f"({every['inside']:.0%} against {every['inside_centre']:.0%}), and its hottest pixel is on the "
                     f"lesion {abs(pointing) * 100:.0f} points {'more' if pointing >= 0 else 'less'} often than the "
                     f"centre pixel ({every['pointing_game']:.0%} against {every['pointing_centre']:.0%})"
                     + (": on these scores the maps locate the lesion no better than knowing that it is centred."
                        if lift < tolerance and pointing < tolerance else "."))
    return "\n".join(lines)


def plot_scores(scores):
    """Heat share inside the lesion per class, correct against wrong, with the uniform and centred baselines.

    Parameters
    ----------
    scores : DataFrame
        From :func:`score_cams`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_scores(score_cams(model, pixels, masks, labels, predicted))  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    table = scores.groupby(["class", "correct"])["inside"].mean().unstack()
    table = table.reindex([dx for dx in CLASSES if dx in table.index])
    table.columns = ["wrong" if not flag else "correct" for flag in table.columns]
    baseline = scores.groupby("class")["inside_uniform"].mean().reindex(table.index)
    figure, axis = plt.subplots(figsize=(10, 3.4))
    table.plot.bar(ax=axis, rot=0, width=0.75)
    axis.plot(range(len(baseline)), baseline.to_numpy(), "k_", markersize=22, label="uniform map (lesion's area)")
    if "inside_centre" in scores:
        centre = scores.groupby("class")["inside_centre"].mean().reindex(table.index)
        axis.plot(range(len(centre)), centre.to_numpy(), "_", color="tab:red", markersize=22, markeredgewidth=2,
                  label="centred Gaussian (lesions are centred)")
    axis.set(ylim=(0, 1), ylabel="share of Grad-CAM on the lesion", xlabel="",
             title="Does the model look at the lesion? (test images)")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def score_lime(model, pixels, masks, scores, predicted, *, per_class=5, samples=300, metadata=None, seed=0):
    """LIME of the predicted class for the first ``per_class`` images per class of ``scores``, against the masks.

    LIME costs ``samples`` predictions per image, so it is scored on a subset of the images Grad-CAM was scored on
    (:func:`score_cams`), which puts the two methods side by side on the same images.

    Parameters
    ----------
    model : keras.Model
    pixels : ndarray of shape (n, height, width, 3)
    masks : list of ndarray of bool or None
    scores : DataFrame
        From :func:`score_cams` (its ``row``, ``class``, ``correct``, ``inside``, ``inside_uniform`` and
        ``inside_centre`` are kept).
    predicted : array-like of shape (n,)
    per_class : int, default=5
    samples : int, default=300
    metadata : ndarray of shape (n, n_metadata), default=None
    seed : int, default=0

    Returns
    -------
    DataFrame
        One row per image: the kept columns, ``lime_inside`` (share of LIME's region on the lesion),
        ``lime_area`` (its share of the image) and ``cam_in_lime`` (share of the Grad-CAM heat inside LIME's
        region).

    Examples
    --------
    >>> lime_scores = score_lime(model, pixels, masks, score_cams(model, pixels, masks, labels, predicted),
    ...                          predicted)  # doctest: +SKIP
    """
    keep = [c for c in ("row", "class", "correct", "inside", "inside_uniform", "inside_centre") if c in scores]
    chosen = scores.groupby("class", sort=False).head(per_class)
    rows = []
    for _, image in chosen.iterrows():
        row = int(image["row"])
        meta = None if metadata is None else metadata[row]
        region = lime_explanation(model, pixels[row], int(predicted[row]), metadata=meta, samples=samples, seed=seed)
        heat, _ = grad_cam(model, pixels[row], int(predicted[row]), metadata=meta)
        rows.append({**image[keep].to_dict(), "lime_inside": mask_scores(region.astype(float), masks[row])["inside"],
                     "lime_area": float(region.mean()), "cam_in_lime": mask_scores(heat, region)["inside"]})
    return pd.DataFrame(rows)


def describe_lime(lime_scores, *, half=0.5):
    """Say in words how LIME's region and Grad-CAM compare on the lesion, from :func:`score_lime`.

    The two disagree on an image when one puts at least ``half`` of itself on the lesion and the other less.

    Examples
    --------
    >>> table = pd.DataFrame({"inside": [0.8, 0.3], "lime_inside": [0.4, 0.6], "inside_uniform": [0.3, 0.3],
    ...                       "inside_centre": [0.5, 0.5], "lime_area": [0.2, 0.2], "cam_in_lime": [0.3, 0.5]})
    >>> print(describe_lime(table))  # doctest: +NORMALIZE_WHITESPACE
    LIME on 2 images: 50% of its region on the lesion (uniform map 30%, centred Gaussian 50%); Grad-CAM on the same
    images 55%.
    They disagree on 2 of 2 images: Grad-CAM on the lesion and LIME off it on 1, the reverse on 1.
    Grad-CAM puts 40% of its heat inside LIME's region, which covers 20% of the image.
    """
    t = lime_scores
    cam_on, lime_on = t["inside"] >= half, t["lime_inside"] >= half
    centre = f", centred Gaussian {t['inside_centre'].mean():.0%}" if "inside_centre" in t else ""
    return "\n".join([
        f"LIME on {len(t)} images: {t['lime_inside'].mean():.0%} of its region on the lesion (uniform map "
        f"{t['inside_uniform'].mean():.0%}{centre}); Grad-CAM on the same images {t['inside'].mean():.0%}.",
        f"They disagree on {int((cam_on != lime_on).sum())} of {len(t)} images: Grad-CAM on the lesion and LIME off "
        f"it on {int((cam_on & ~lime_on).sum())}, the reverse on {int((~cam_on & lime_on).sum())}.",
        f"Grad-CAM puts {t['cam_in_lime'].mean():.0%} of its heat inside LIME's region, which covers "
        f"{t['lime_area'].mean():.0%} of the image."])


def plot_lime_against_cam(lime_scores, *, half=0.5):
    """Each image's share on the lesion by Grad-CAM (x) and by LIME (y); off-diagonal corners are disagreements.

    Examples
    --------
    >>> figure = plot_lime_against_cam(score_lime(model, pixels, masks, scores, predicted))  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.6, 4.2))
    for flag, colour, name in ((True, "tab:blue", "correct"), (False, "tab:orange", "wrong")):
        part = lime_scores[lime_scores["correct"] == flag]
        axis.scatter(part["inside"], part["lime_inside"], s=22, color=colour, label=f"{name} ({len(part)})")
    axis.plot([0, 1], [0, 1], color="grey", lw=0.8)
    axis.axvline(half, color="grey", lw=0.5, ls=":")
    axis.axhline(half, color="grey", lw=0.5, ls=":")
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="Grad-CAM: share of heat on the lesion",
             ylabel="LIME: share of its region on the lesion", title="Do the two explanations agree? (test images)")
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure

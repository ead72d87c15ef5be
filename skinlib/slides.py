"""Build ``Presentation.pdf`` from titles, bullet points and the figures in ``Images/``.

Each slide is a dict ``{"title": str, "bullets": [str, ...], "image": path or None}``;
the PDF is drawn with matplotlib (16:9 pages) and written atomically, so the
slides are regenerated from the same results and figures as the notebooks.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from skinlib import artefacts, metrics
from skinlib.artefacts import write_atomic

BACKBONES = {"efficientnet_lite2": "EfficientNet-Lite2", "efficientnet_lite1": "EfficientNet-Lite1",
             "efficientnet_lite0": "EfficientNet-Lite0", "mobilenet_025": "MobileNet 0.25", "02_": "a CNN from scratch"}
"""How a slide names the network of a saved model, by a part of the model's name (the first that matches)."""


def draw_slide(slide, *, number=None):
    """Return a 16:9 matplotlib Figure for one slide."""
    import matplotlib.image
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(13.33, 7.5))
    figure.text(0.05, 0.92, slide["title"], fontsize=26, weight="bold", va="top", color="#1f3b57")
    bullets = slide.get("bullets", [])
    text_width = 0.42 if slide.get("image") else 0.9
    y = 0.80
    for bullet in bullets:
        wrapped = textwrap.fill(bullet, width=int(110 * text_width))
        figure.text(0.06, y, "\u2022 " + wrapped.replace("\n", "\n   "), fontsize=15, va="top")
        y -= 0.065 * (wrapped.count("\n") + 1) + 0.03
    if slide.get("image"):
        axis = figure.add_axes([0.50, 0.06, 0.47, 0.78] if bullets else [0.08, 0.06, 0.84, 0.78])
        axis.imshow(matplotlib.image.imread(slide["image"]))
        axis.set_anchor("N")
        axis.axis("off")
    if number is not None:
        figure.text(0.97, 0.03, str(number), fontsize=11, ha="right", color="gray")
    return figure


def build_slides(slides, path):
    """Write every slide into one PDF at ``path`` (atomically) and return the path."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"Title": slides[0]["title"], "Creator": "skinlib", "CreationDate": None}) as pdf:
        for number, slide in enumerate(slides, 1):
            figure = draw_slide(slide, number=number)
            pdf.savefig(figure)
            plt.close(figure)
    write_atomic(path, lambda handle: handle.write(buffer.getvalue()))
    return Path(path)


def study_deck(final, results, metadata, *, figures, cnn_slide):
    """The slides of ``Presentation.pdf``: the study in brief, every number read from the saved results.

    Parameters
    ----------
    final : dict
        ``Saved_Models/final_metrics.json``, as chapter 04 writes it.
    results : pandas.DataFrame
        ``Saved_Models/results.csv``, the validation scores of chapters 02 and 03.
    metadata : pandas.DataFrame
        HAM10000's metadata (``skinlib.data.load_metadata``).
    figures : path-like
        The folder of the chapters' figures (``Images/``).
    cnn_slide : path-like
        The figure of chapter 02's CNN drawn for a slide.

    Returns
    -------
    list of dict
        One dict per slide, for :func:`build_slides`.
    """
    test = final["finals"][final["procedure"]]
    screen, mel = final["screening"], final["per_class"]["mel"]
    mel_screen = screen["test_interval"].get("sensitivity_mel")
    cams = final["explanations"]["all/all"]
    chapter2 = results[results["notebook"] == "02_CNN_Iterations"]
    best2 = chapter2.loc[chapter2["balanced_accuracy"].idxmax()]
    chapter3 = results[results["notebook"] == "03_Transfer_Learning"]
    seeds3 = chapter3[chapter3["stage"] == "cached views"]
    goals = {key: goal for key, goal in metrics.GOALS.items() if key in test}
    met = [metrics.GOAL_NAMES[key] for key, goal in goals.items() if test[key]["estimate"] >= goal]

    def interval(metric):
        return f"{test[metric]['estimate']:.2f} (95% CI {test[metric]['low']:.2f}-{test[metric]['high']:.2f})"

    def figure(name):
        return str(Path(figures) / f"{name}.png")

    def network(name):
        return next((label for key, label in BACKBONES.items() if key in name), "the chosen model")

    described = network(final["model"])
    transferred = network(seeds3["name"].iloc[0]) if len(seeds3) else described  # chapter 03's backbone
    runs3 = f"mean of {len(seeds3)} seeds" if len(seeds3) > 1 else "one seed"
    chosen = test["balanced_accuracy"]["validation"]  # chapter 04's validated model
    refit = artefacts.validated_model(final) != final["model"]  # the final model is a refit
    refitted = "the ensemble" if "ensemble" in artefacts.validated_model(final) else "the run"
    transfer = (f"{seeds3['balanced_accuracy'].mean():.2f} ({runs3} at {seeds3['input_size'].iloc[0]}; "
                f"{refitted + ' the final model refits' if refit else 'final procedure'} {chosen:.2f})")
    is_ensemble = "ensemble" in final["model"]
    ensemble = f", an ensemble of {len(seeds3)} seeds" if is_ensemble else ""
    final_model = (described + ensemble + (", refitted on training + validation" if refit else "")
                   + (" with TTA" if final["tta"] else ""))
    return [
        {"title": "Skin-lesion classification on HAM10000",
         "bullets": ["A reproducible, notebook-first study",
                     "Three most likely diagnoses and a malignancy estimate, locally",
                     "Research use only: not a medical device"]},
        {"title": "The problem",
         "bullets": ["Skin cancer is the most common cancer; melanoma, caught late, is one of the deadliest",
                     "A dermatoscope shows the lesion's structure, but reading it takes years of training",
                     "Question: from one dermoscopic image, the three most likely diagnoses and P(malignant), "
                     "on the user's own machine",
                     "And: how honestly can that be measured?"]},
        {"title": "The data: HAM10000", "image": figure("01_class_distribution"),
         "bullets": [f"{len(metadata):,} dermoscopic images of {metadata['lesion_id'].nunique():,} lesions",
                     f"{(metadata['dx'] == 'nv').mean():.0%} are nevi: accuracy alone flatters a lazy model",
                     "Split grouped by lesion, stratified by class, committed",
                     "Tschandl et al., Sci. Data 2018; CC BY-NC-SA 4.0"]},
        {"title": "What the images look like", "image": figure("01_samples_per_class")},
        {"title": "Method 1: a small CNN, trained from scratch", "image": str(cnn_slide)},
        {"title": "From a perceptron to a CNN", "image": figure("02_iterations_comparison"),
         "bullets": [f"{len(chapter2)} models from scratch at 64x64, each step measured on validation",
                     f"Best: balanced accuracy {best2['balanced_accuracy']:.2f}, accuracy {best2['accuracy']:.2f}",
                     "Balanced accuracy, not accuracy, chooses the model"]},
        {"title": "Method 2: a pretrained network, cut in two", "image": figure("03_transfer_diagram")},
        {"title": "Transfer learning against training from scratch", "image": figure("03_vs_02"),
         "bullets": [f"{transferred} from ImageNet; frozen lower blocks run once over four jittered views",
                     "Upper blocks and head trained on the stored maps",
                     f"Validation balanced accuracy {transfer}; from scratch at 64x64 "
                     f"{best2['balanced_accuracy']:.2f}",
                     "Balancing compared on heads, fixed by a three-seed trial; TTA measured on validation"]},
        {"title": "One evaluation on the test split", "image": figure("04_confusion"),
         "bullets": [f"Final: {final_model} at {final['input_size'][0]}x{final['input_size'][1]}, chosen on "
                     "validation by a rule changed with validation scores in view, before the test split was read",
                     f"Balanced accuracy {interval('balanced_accuracy')}", f"Accuracy {interval('accuracy')}",
                     f"Macro AUC {interval('macro_auc')}",
                     f"{final['test_images']:,} test images of {final['test_lesions']:,} lesions"]},
        {"title": "Per class: the rare classes have the fewest test images", "image": figure("04_per_class"),
         "bullets": [f"Melanoma recall {mel['recall']:.2f}"
                     + (f" (95% CI {mel['recall_low']:.2f}-{mel['recall_high']:.2f})" if "recall_low" in mel else ""),
                     f"Melanoma precision {mel['precision']:.2f}"
                     + (f" (95% CI {mel['precision_low']:.2f}-{mel['precision_high']:.2f})"
                        if "precision_low" in mel else ""),
                     f"{mel['support']:.0f} test melanomas; the smallest classes have far fewer images"]},
        {"title": "Screening: malignant or benign?", "image": figure("04_screening"),
         "bullets": [f"Threshold set on validation for {screen['target_validation_sensitivity']:.0%} sensitivity",
                     f"Test sensitivity {screen['test']['sensitivity']:.2f}, "
                     f"specificity {screen['test']['specificity']:.2f}"]
                    + ([f"Melanomas flagged: {mel_screen['estimate']:.2f} (95% CI {mel_screen['low']:.2f}-"
                        f"{mel_screen['high']:.2f})"] if mel_screen else [])
                    + [f"Calibration error {final['calibration']['ece']['test']['raw']:.3f} raw"
                       + (f", {final['calibration']['ece']['test']['scaled']:.3f} as the checker shows it"
                          if final["calibration"]["temperature_kept"] else "")]},
        {"title": "Robustness to acquisition shifts", "image": figure("04_shifts")},
        {"title": "Where the model looks: malignant test images", "image": figure("04_explanations_malignant")},
        {"title": "Do the explanations look at the lesion?", "image": figure("04_cam_scores"),
         "bullets": [f"Grad-CAM heat on the lesion: {cams['inside']:.0%}",
                     f"A uniform map: {cams['inside_uniform']:.0%} (the lesion's share of the image)"]
                    + ([f"A centred Gaussian: {cams['inside_centre']:.0%} (lesions are photographed in the middle)",
                        f"Hottest pixel on the lesion: Grad-CAM {cams['pointing_game']:.0%} of images, "
                        f"the image centre {cams['pointing_centre']:.0%}"]
                       if "inside_centre" in cams else [])},
        {"title": "The lesion checker, on your own machine",
         "bullets": ["Top 3 diagnoses and P(malignant) for one image",
                     "Command line or a local web app: the image never leaves the machine",
                     f"'Have it examined' at P(malignant) >= {screen['threshold']:.2f} "
                     f"({screen['target_validation_sensitivity']:.0%} sensitivity on validation)",
                     "Research use only: not a medical device"]},
        {"title": "Limitations",
         "bullets": ["200x150 compressed images, one data source, small rare classes",
                     "CPU budget: small inputs, minutes of training",
                     "Test split from the same clinics: no external test set here",
                     *(["The rule that chose the ensemble was changed with its validation scores in view"]
                       if is_ensemble else []),
                     *(["The shipped refit has no validation score of its own: it learnt from those images"]
                       if refit else []),
                     "Not a medical device: research and teaching only"]},
        {"title": "Takeaway",
         "bullets": [f"Pretrained features on cached views: validation balanced accuracy {transfer}, "
                     f"against {best2['balanced_accuracy']:.2f} from scratch at 64x64, on a 2-core CPU",
                     f"On the test split: balanced accuracy {interval('balanced_accuracy')}; goals met: "
                     f"{', '.join(met) or 'none'}",
                     "Every number comes from a run anyone can repeat: make reproduce"
                     + (" (the shipped refit of the ensemble: ARGS=\"--set profile=full\")" if is_ensemble and refit else ""),
                     "Next: full resolution, external data, a second source"]},
    ]

"""The lesion checker as a notebook widget (and, through Voila, a local web page).

:func:`lesion_checker` returns an ipywidgets box: an upload button, optional
age, sex and body site, and an output area that shows the image, the top-3
diagnoses as a bar chart, P(malignant), a Grad-CAM overlay and the notice
that this is research software, not a diagnosis. :func:`show_result` draws
the same report for any image, so a notebook run by papermill shows it too.
Every problem with an upload is shown as a message in the page; nothing in it
can stop the app.

Served locally with::

    voila notebooks/05_Lesion_Checker.ipynb --Voila.ip=127.0.0.1 --port=8866

(127.0.0.1: only this machine can open it; the image never leaves it).
"""

from __future__ import annotations

import html

import numpy as np

from skinlib.data import CLASS_NAMES, CLASSES, SITES
from skinlib.images import ImageError
from skinlib.predict import NOTICE


def report_figure(checker, prediction, pixels, *, metadata=None):
    """Image, Grad-CAM of the top diagnosis, and the top-3 bar chart, side by side.

    Grad-CAM explains the checker's top diagnosis (with TTA, that of the
    averaged answer), from one pass over the image as it is.
    """
    import matplotlib.pyplot as plt

    from skinlib import explain

    top = prediction.top3[0][0]  # The class the title and the bar chart name.
    heat, _ = explain.grad_cam(checker.model, pixels, CLASSES.index(top), metadata=metadata)
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    left.imshow(pixels.astype("uint8"))
    left.set_title("the image, as the model sees it", fontsize=9)
    middle.imshow(explain.overlay_heat(pixels, heat))
    middle.set_title(f"Grad-CAM: where the evidence for {top} lies", fontsize=9)
    for axis in (left, middle):
        axis.axis("off")
    codes = [code for code, _, _ in prediction.top3][::-1]
    values = [p for _, _, p in prediction.top3][::-1]
    right.barh([f"{code}: {CLASS_NAMES[code]}" for code in codes], values, color="#4c72b0")
    for row, value in enumerate(values):
        right.text(min(value + 0.02, 0.85), row, f"{value:.0%}", va="center", fontsize=9)
    right.set_xlim(0, 1)
    right.set_title(f"top 3 diagnoses; P(malignant) = {prediction.malignant_probability:.0%}", fontsize=9)
    right.tick_params(labelsize=8)
    figure.tight_layout()
    return figure


def result_html(prediction):
    """The answer as HTML: the top-3 list (``class="top3"``), the malignant risk and the notice."""
    items = "".join(f"<li><b>{html.escape(code)}</b> {html.escape(name)}: {probability:.1%}</li>"
                    for code, name, probability in prediction.top3)
    risk = prediction.malignant_probability
    screening = f"<br>{html.escape(prediction.screening[0].upper() + prediction.screening[1:])}." \
        if prediction.screening else ""
    return (f"<div class='lesion-result'><ol class='top3'>{items}</ol>"
            f"<p class='malignant'>P(malignant: melanoma, basal cell carcinoma or actinic keratosis) = "
            f"<b>{risk:.1%}</b>{screening}</p>"
            f"<p class='model'>model {html.escape(prediction.model)} {prediction.version}, "
            f"{prediction.seconds * 1000:.0f} ms</p>"
            f"<p class='notice' style='color:#a00'><b>{html.escape(NOTICE)}</b></p></div>")


def show_result(checker, source, *, age=None, sex=None, site=None, name=None):
    """Predict one image and display the HTML answer and the report figure; return the prediction."""
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    prediction = checker.predict(source, age=age, sex=sex, site=site, name=name)
    pixels = prediction.pixels  # Decoded once, by the checker.
    metadata = checker.metadata_inputs(1, age, sex, site)[0] if checker.uses_metadata else None
    display(HTML(result_html(prediction)))
    figure = report_figure(checker, prediction, pixels.astype("float32"), metadata=metadata)
    display(figure)
    plt.close(figure)
    return prediction


def _uploaded(value):
    """(name, bytes) of the first file of an ipywidgets 8 FileUpload value, or None."""
    if not value:
        return None
    item = value[0]
    return item["name"], bytes(item["content"])


def lesion_checker(checker):
    """The upload-and-answer widget.

    >>> from unittest import mock
    >>> box = lesion_checker(mock.Mock(uses_metadata=False, name="m", version="v"))
    >>> type(box).__name__
    'VBox'
    """
    import ipywidgets as widgets

    upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload image")
    age = widgets.BoundedIntText(value=0, min=0, max=120, description="Age (0: unknown)")
    sex = widgets.Dropdown(options=["unknown", "female", "male"], value="unknown", description="Sex")
    site = widgets.Dropdown(options=list(SITES), value="unknown", description="Body site")
    output = widgets.Output()
    header = widgets.HTML(f"<p class='notice' style='color:#a00'><b>{html.escape(NOTICE)}</b> The image is analysed "
                          f"on this computer and is not sent anywhere.</p>")
    extra = [age, sex, site] if checker.uses_metadata else []

    def answer(_change=None):
        uploaded = _uploaded(upload.value)
        if uploaded is None:
            return
        name, content = uploaded
        output.clear_output()
        with output:
            try:
                show_result(checker, content, name=name, age=age.value or None, sex=sex.value, site=site.value)
            except ImageError as error:
                from IPython.display import HTML, display

                display(HTML(f"<p class='error' style='color:#a00'>Cannot use this file: "
                             f"{html.escape(str(error))}</p>"))

    upload.observe(answer, names="value")
    for control in extra:
        control.observe(answer, names="value")
    return widgets.VBox([header, widgets.HBox([upload, *extra]), output])


def example_pixels(size, seed=0):
    """A deterministic synthetic image (no patient data), for demos and tests of the app.

    >>> example_pixels((48, 64)).shape
    (48, 64, 3)
    """
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:size[0], 0:size[1]]
    inside = ((rows - size[0] / 2) / (size[0] / 3)) ** 2 + ((columns - size[1] / 2) / (size[1] / 3)) ** 2 < 1
    pixels = np.full((*size, 3), (200, 160, 140), "float32")
    pixels[inside] = (120, 80, 60)
    return np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255).astype("uint8")

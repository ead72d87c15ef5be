"""Build ``Presentation.pdf`` from titles, bullet points and the figures in ``Images/``.

Each slide is a dict ``{"title": str, "bullets": [str, ...], "image": path or None}``;
the PDF is drawn with matplotlib (16:9 pages) and written atomically, so the
slides are regenerated from the same results and figures as the notebooks.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from skinlib.artefacts import write_atomic


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

"""skinlib: the small library behind the HAM10000 skin-lesion notebooks.

One module per concern, imported on demand so that ``import skinlib`` stays
fast and does not load TensorFlow. Each module imports only modules above it
in this list, so no import goes in a circle (``tests/test_structure.py``
checks both):

- :mod:`skinlib.artefacts`: the saved files: ``Saved_Models/`` and ``Images/``
  (and their smoke-mode copies), atomic writes, the results table and
  ``final_metrics.json``.
- :mod:`skinlib.images`: decode images safely, resize, cache on disk.
- :mod:`skinlib.data`: find the data set, read and validate its metadata.
- :mod:`skinlib.download`: fetch HAM10000 from Harvard Dataverse.
- :mod:`skinlib.split`: the lesion-grouped, class-stratified split manifest.
- :mod:`skinlib.explore`: tables and plots of the data (chapter 01).
- :mod:`skinlib.diagrams`: method diagrams: a network or a training pipeline as boxes and arrows.
- :mod:`skinlib.pipeline`: ``tf.data`` pipelines for training and evaluation.
- :mod:`skinlib.acquisition`: colour constancy (Shades of Gray) and the shifts of other cameras and clinics.
- :mod:`skinlib.efficientnet_lite`: EfficientNet-Lite in Keras, with the PyTorch weights ported.
- :mod:`skinlib.models`: the networks: perceptron, CNNs, pretrained backbones, heads, augmentation.
- :mod:`skinlib.infer`: predictions: probabilities, test-time augmentation, feature extraction.
- :mod:`skinlib.metrics`: the numbers: accuracy, balanced accuracy, AUC, bootstrap intervals, screening.
- :mod:`skinlib.train`: fit, keep the best epoch, save the run; transfer learning in two stages.
- :mod:`skinlib.features`: cached multi-view features: a backbone's lower part runs once, its upper part trains.
- :mod:`skinlib.evaluate`: plots and notebook reports of the metrics.
- :mod:`skinlib.calibrate`: calibration error and temperature scaling.
- :mod:`skinlib.explain`: convolutions, filters and feature maps; Grad-CAM and LIME.
- :mod:`skinlib.explanation_scores`: Grad-CAM and LIME scored against the lesion masks and two baselines.
- :mod:`skinlib.final`: the final model, chosen on validation by a written rule (chapter 04).
- :mod:`skinlib.predict`: the lesion checker (also ``python -m skinlib predict``).
- :mod:`skinlib.app`: the lesion checker as a notebook widget and a local Voila app.
- :mod:`skinlib.slides`: ``Presentation.pdf`` from titles, bullets and figures.
- :mod:`skinlib.reproduce`: run the notebooks in order with papermill; the README's result tables.
- :mod:`skinlib.__main__`: the command line, ``python -m skinlib``.
"""

__version__ = "0.1.0"

import os as _os
import re as _re
from pathlib import Path as _Path

# TensorFlow's C++ start-up chatter (CPU feature notes) would fill every notebook's output; warnings stay visible.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


STARTUP_NOISE = _re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
                            r"STDERR|I0000 00:00:\d+\.\d+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*"
                            r"|E0000 00:00:\d+\.\d+ +\d+ util\.cc:\d+\] oneDNN supports DT_[A-Z0-9]+ only on platforms "
                            r"with AVX-512\..*|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)$")
"""The C++ start-up lines of TensorFlow and LiteRT (written before a log level applies, most with a timestamp and a
process id): dropped from notebook outputs (:mod:`skinlib.reproduce`) and held back by the lesion checker."""


def drop_startup_noise(text):
    r"""Remove TensorFlow's start-up lines (:data:`STARTUP_NOISE`) from a stream output's text.

    >>> drop_startup_noise("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    ...                    "real warning\n")
    'real warning\n'
    """
    return "".join(line for line in text.splitlines(keepends=True) if not STARTUP_NOISE.match(line.rstrip("\n")))


def repo_root():
    """Return the repository that holds this package (or the working folder when installed)."""
    here = _Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else _Path.cwd()


def smoke_mode(default=False):
    """Return True when notebooks should run on a small subset (smoke mode).

    The ``SKINLIB_SMOKE`` environment variable wins over ``default`` so that
    tests can shrink a notebook's workload without editing it.

    >>> smoke_mode(False) in (True, False)
    True
    """
    value = _os.environ.get("SKINLIB_SMOKE", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return bool(default)

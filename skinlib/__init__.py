"""skinlib: the small library behind the HAM10000 skin-lesion notebooks.

One module per concern, imported on demand so that ``import skinlib`` stays
fast and does not load TensorFlow:

- :mod:`skinlib.data`: find the data set, read and validate its metadata.
- :mod:`skinlib.split`: the lesion-grouped, class-stratified split manifest.
- :mod:`skinlib.images`: decode images safely, resize, cache on disk.
- :mod:`skinlib.pipeline`: ``tf.data`` pipelines for training and evaluation.
- :mod:`skinlib.download`: fetch HAM10000 from Harvard Dataverse.
- :mod:`skinlib.reproduce`: run the notebooks in order with papermill.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter (CPU feature notes) would fill every notebook's output; warnings stay visible.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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

"""The lesion checker: the three most likely diagnoses and P(malignant) for one image, on this machine.

:class:`Checker` loads a saved model once (Keras safe mode: no pickles, no
code from the file), then answers for a path, bytes, a PIL image or an
array, with exactly the preprocessing of training: the image is decoded by
:func:`skinlib.images.read_image` (EXIF rotation, transparency, grayscale and
CMYK handled; empty, corrupt, tiny and gigantic images refused with a clear
message; so is a blank image of almost one colour, :data:`BLANK_SPREAD`),
brought to the frame of the training images (:data:`FRAMING`: a dermoscope's
dark surround is cut away, a portrait image is turned a quarter turn to
landscape, a square or wide one is cut to its centred 4:3 window) and
resized to the model's input; the model scales the pixels itself. Nothing
leaves the machine.

Research use only: this is not a medical device and not a diagnosis.

Its answers for a folder (``predict ... --csv``) can be scored against known diagnoses, the way an outside test
set is scored (:func:`read_truth`, :func:`score_answers`; ``python -m skinlib score``).

Example (``python -m skinlib predict IMAGE...`` does the same from a shell)::

    checker = Checker()                      # the default model of Saved_Models/
    print(checker.predict("ISIC_0024306.jpg"))
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib.artefacts import RESULTS_FILE, models_dir, read_final_metrics, read_results, write_atomic
from skinlib.calibrate import apply_temperature
from skinlib.data import CLASS_NAMES, CLASSES, IMAGE_EXTENSIONS
from skinlib.images import ImageError, coarse_step, frame, read_image, resize
from skinlib.metrics import answer_metrics, bootstrap, malignant_probability
from skinlib.models import load_model

FRAMING = {"surround": True, "turn": True, "fit": "crop"}
"""How :func:`skinlib.images.frame` brings an image to the 4:3 landscape frame of every training image: cut a
dermoscope's dark surround away (``benchmarks/dark_surround.py``), turn a portrait image, and cut any other aspect to
its largest centred 4:3 window (``benchmarks/framing.py``). Each step was chosen on validation by a rule written
before its run, for the model shipped at commit fb9df4d, for seed 0 of chapter 03's batch-64 recipe, for that
recipe's ensemble and again for the batch-32 ensemble, whose refit on the training and validation images ships now
(the refit itself cannot be scored on those validation images): the surround cut and the turn stayed every time;
cropping passed the rule's 0.010 bar for seed 0 (+0.013), not for the batch-64 ensemble (+0.007, so it stretched),
and again for the batch-32 ensemble (+0.017 over stretching on the mean of the square and wide shapes; see the
README's lesion checker section)."""

BACKENDS = {"lite": "LiteRT copy", "keras": "Keras"}
"""The checker's backends as its answers name them (``version`` hashes that backend's file)."""

NOTICE = "Research use only: not a medical device and not a diagnosis. See a dermatologist about any lesion."


class ModelError(ValueError):
    """A model file that is missing, unreadable or not a lesion classifier."""


def default_model(folder=None):
    """The model the checker uses when none is named.

    Chapter 04's ``final_metrics.json`` names the final model once it exists;
    until then, the saved model (an ensemble is one) with the best validation
    balanced accuracy in the results table.
    """
    folder = Path(folder) if folder else models_dir()
    final = read_final_metrics(folder, missing_ok=True)
    if final is not None:
        name = final.get("model")
        if name and (folder / f"{name}.keras").is_file():
            return folder / f"{name}.keras"
    results = folder / RESULTS_FILE
    if not results.is_file():
        raise ModelError(f"No model given and no results table at {results}: train one (make reproduce) or pass "
                         f"--model.")
    table = read_results(folder).sort_values("balanced_accuracy", ascending=False)
    for name in table["name"]:
        if (folder / f"{name}.keras").is_file():
            return folder / f"{name}.keras"
    raise ModelError(f"None of the models in {results} has a .keras file in {folder}.")


BLANK_SPREAD = 2.0
"""An image none of whose colour channels varies by more than this (standard deviation, 0-255) is refused as
blank: a lens cap, a black, white or single-colour frame. In 1,500 HAM10000 images drawn at random, the least varied
image's most varied channel varies by 8.6."""


def colour_spread(pixels):
    """The largest standard deviation of one colour channel, on every n-th pixel (:func:`skinlib.images.coarse_step`).

    >>> colour_spread(np.full((300, 400, 3), (255, 0, 0), np.uint8))  # One colour, however bright.
    0.0
    >>> halves = np.zeros((300, 400, 3), np.uint8)
    >>> halves[:, 200:] = 255  # Black and white halves.
    >>> colour_spread(halves)
    127.5
    """
    step = coarse_step(pixels.shape)
    return float(pixels[::step, ::step].reshape(-1, pixels.shape[-1]).std(axis=0).max())


@dataclasses.dataclass
class Prediction:
    """The checker's answer for one image."""

    source: str
    probabilities: np.ndarray
    pixels: np.ndarray = dataclasses.field(repr=False)  # The image as the model saw it (decoded and resized).
    malignant_probability: float
    model: str
    version: str
    seconds: float
    threshold: float = None
    """The screening threshold of P(malignant) validated in chapter 04 (None for a model it did not evaluate)."""
    target_sensitivity: float = None
    """The validation sensitivity that threshold was set to reach."""
    backend: str = ""
    """Which copy of the model answered: "lite" (its ``.tflite``) or "keras"; ``version`` hashes that file."""
    test_screening: dict = None
    """What the threshold did on the test split (chapter 04): ``sensitivity`` and ``ppv``, where recorded."""

    @property
    def screening(self):
        """What the validated screening threshold says: a sentence, or "" when the model has no threshold."""
        if self.threshold is None:
            return ""
        test = self.test_screening or {}
        if self.malignant_probability >= self.threshold:
            said = f"at or above the screening threshold ({self.threshold:.1%}): have it examined"
            if "sensitivity" in test and "ppv" in test:
                said += (f". On HAM10000's test images this threshold flagged {test['sensitivity']:.0%} of the "
                         f"malignant ones, and {1 - test['ppv']:.0%} of the images it flagged were benign")
            return said
        said = f"below the screening threshold ({self.threshold:.1%})"
        if "sensitivity" in test:
            return (said + f"; on HAM10000's test images {1 - test['sensitivity']:.0%} of the malignant ones scored "
                    f"below it too, so this does not rule out a malignant lesion")
        return said + "; a score below it does not rule out a malignant lesion"

    @property
    def top3(self):
        """The three most likely diagnoses: ``(code, name, probability)``, most likely first."""
        order = np.argsort(-self.probabilities)[:3]
        return [(CLASSES[i], CLASS_NAMES[CLASSES[i]], float(self.probabilities[i])) for i in order]

    def as_row(self):
        """A flat dict for a CSV row."""
        row = {"image": self.source}
        for rank, (code, _, probability) in enumerate(self.top3, 1):
            row[f"top{rank}"], row[f"top{rank}_probability"] = code, round(probability, 4)
        row["malignant_probability"] = round(self.malignant_probability, 4)
        row["screening_threshold"] = "" if self.threshold is None else round(self.threshold, 4)
        above = self.threshold is not None and self.malignant_probability >= self.threshold
        row["above_screening_threshold"] = "" if self.threshold is None else above
        row.update({"model": self.model, "version": self.version, "backend": self.backend, "error": ""})
        row.update({f"p_{code}": round(float(p), 4) for code, p in zip(CLASSES, self.probabilities)})
        return row

    def __str__(self):
        copy = f", {BACKENDS[self.backend]}" if self.backend in BACKENDS else ""
        lines = [f"{self.source}  (model {self.model} {self.version}{copy}, {self.seconds * 1000:.0f} ms)"]
        for rank, (code, name, probability) in enumerate(self.top3, 1):
            lines.append(f"  {rank}. {code:<6} {name:<34} {probability:6.1%}")
        lines.append(f"  P(malignant: melanoma, basal cell carcinoma or actinic keratosis) = "
                     f"{self.malignant_probability:.1%}")
        if self.screening:
            lines.append(f"  {self.screening}")
        return "\n".join(lines)


class Checker:
    """Load a lesion classifier once and predict the top-3 diagnoses of any image.

    Parameters
    ----------
    model : str or Path, default=None
        A ``.keras`` (or ``.tflite``) file from ``Saved_Models/``; None: :func:`default_model`.
    tta : bool, default=None
        Average the four flips of each image (test-time augmentation), as
        chapter 04 evaluated the final model; None: as ``final_metrics.json``
        says for this model (off for a model it did not evaluate).
    temperature : float, default=None
        Divide the log-probabilities by this before showing them (temperature
        scaling, :func:`skinlib.calibrate.apply_temperature`); None: the
        temperature chapter 04 fitted on validation for this model, when it
        kept it (it lowered the validation calibration error), else none.
        The screening threshold was set on the probabilities so scaled.
    backend : {"auto", "keras", "lite"}, default="auto"
        "keras" loads the Keras model (needed for Grad-CAM); "lite" its LiteRT
        copy made by :func:`export_lite` (same numbers, starts in a fraction
        of the time because TensorFlow is never imported); "auto" takes the
        LiteRT copy when it exists, unless its record says it was made from
        other bytes of the ``.keras`` file (a model trained again since): then
        the Keras model answers, and ``note`` says why. A stale copy asked for
        ("lite", or a ``.tflite`` path) answers, with a ``note``.

    Attributes
    ----------
    note : str
        Something the user should know about how the model was loaded, or "".

    Raises
    ------
    ModelError
        When the file is missing, unreadable, or not a 7-class classifier.
    """

    def __init__(self, model=None, *, tta=None, temperature=None, backend="auto"):
        path = Path(model) if model else default_model()
        final = read_final_metrics(path.parent, missing_ok=True)
        evaluated = final if final is not None and final.get("model") == path.stem else {}
        self.tta = bool(evaluated.get("tta", False)) if tta is None else bool(tta)
        self.threshold = evaluated.get("screening", {}).get("threshold")
        calibration = evaluated.get("calibration", {})
        if temperature is None and calibration.get("temperature_kept"):
            temperature = calibration["temperature"]
        self.temperature = None if temperature is None or float(temperature) == 1 else float(temperature)
        self.target_sensitivity = evaluated.get("screening", {}).get("target_validation_sensitivity")
        self.test_screening = {key: value for key, value in evaluated.get("screening", {}).get("test", {}).items()
                               if key in ("sensitivity", "ppv")} or None
        if backend not in ("auto", "keras", "lite"):
            raise ValueError(f"backend must be 'auto', 'keras' or 'lite'. Got {backend!r} instead.")
        lite = path if path.suffix == ".tflite" else path.with_suffix(".tflite")
        self.note = ""
        if backend != "keras" and lite.is_file():
            stale = _stale_lite_note(path.with_suffix(".keras"), lite)
            if stale and backend == "auto" and path.suffix != ".tflite":
                self.note = (f"{stale}, so the Keras model answers (slower to start); "
                             f"skinlib.predict.export_lite makes a new copy.")
                backend = "keras"
            elif stale:  # The copy itself was asked for: it answers, and the user is told.
                self.note = f"{stale}; it answers as asked (skinlib.predict.export_lite makes a new copy)."
        if backend == "lite" or path.suffix == ".tflite" or (backend == "auto" and lite.is_file() and _has_litert()):
            self._load_lite(lite)
        else:
            self._load_keras(path)
        self.name = path.stem
        self.path = path

    def _load_keras(self, path):
        with _without_startup_noise():  # TensorFlow's C++ start-up log (oneDNN, absl): noise to a user.
            import tensorflow as tf

        if not path.is_file():
            raise ModelError(f"{path}: no such model file.")
        try:
            self.model = load_model(path)
        except Exception as error:  # Keras raises many kinds; all mean the same thing to a user.
            raise ModelError(f"{path}: not a readable Keras model ({type(error).__name__}: {error}).") from None
        if self.model.outputs[0].shape[-1] != len(CLASSES):
            raise ModelError(f"{path}: the model has {self.model.outputs[0].shape[-1]} outputs, not one per "
                             f"diagnosis ({len(CLASSES)}).")
        shape = self.model.inputs[0].shape
        if shape[1] is None or shape[2] is None:
            raise ModelError(f"{path}: the model does not fix its input size.")
        self.size = (int(shape[1]), int(shape[2]))
        self.uses_metadata = len(self.model.inputs) == 2
        self.backend = "keras"
        self.version = _sha256(path)[:12]
        signature = [tf.TensorSpec((None, *self.size, 3), tf.float32)]
        if self.uses_metadata:
            signature.append(tf.TensorSpec(self.model.inputs[1].shape, tf.float32))

        @tf.autograph.experimental.do_not_convert
        def run(*inputs):
            return self.model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

        self._run = tf.function(run, input_signature=signature)
        self._run(*[np.zeros([1, *spec.shape[1:]], "float32") for spec in signature])  # Trace once, now.

    def _load_lite(self, path):
        """The LiteRT (TensorFlow Lite) copy of the model: the same numbers, no TensorFlow import (fast start)."""
        from ai_edge_litert.interpreter import Interpreter

        if not path.is_file():
            raise ModelError(f"{path}: no such model file (make it with skinlib.predict.export_lite).")
        try:
            with _without_startup_noise():  # LiteRT's C++ log says "INFO: Created ... delegate": noise to a user.
                interpreter = Interpreter(model_path=str(path))
                interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"{path}: not a readable LiteRT model ({error}).") from None
        inputs = {("metadata" if "metadata" in d["name"] else "pixels"): d for d in interpreter.get_input_details()}
        output = interpreter.get_output_details()[0]
        if output["shape"][-1] != len(CLASSES):
            raise ModelError(f"{path}: the model has {output['shape'][-1]} outputs, not one per diagnosis.")
        self.size = tuple(int(side) for side in inputs["pixels"]["shape"][1:3])
        self.uses_metadata = "metadata" in inputs
        self.backend = "lite"
        self.model = None  # Grad-CAM needs the Keras model: use backend="keras" for the app.
        self.version = _sha256(path)[:12]

        def run(pixels, metadata=None):
            answers = []
            for row in range(len(pixels)):
                interpreter.set_tensor(inputs["pixels"]["index"], pixels[row:row + 1])
                if metadata is not None:
                    interpreter.set_tensor(inputs["metadata"]["index"], metadata[row:row + 1])
                interpreter.invoke()
                answers.append(interpreter.get_tensor(output["index"])[0].copy())
            return np.stack(answers)

        self._run = run

    def metadata_inputs(self, count, age=None, sex=None, site=None):
        """The metadata input of a two-input model for ``count`` images of one person: (count, 20) float32.

        Unknown values (None) are allowed; the encoding is that of training
        (:func:`skinlib.models.metadata_features`).
        """
        from skinlib.models import metadata_features

        table = pd.DataFrame({"age": [np.nan if age is None else float(age)] * count,
                              "sex": [sex or "unknown"] * count, "localization": [site or "unknown"] * count})
        return metadata_features(table)

    def predict_pixels(self, pixels, *, age=None, sex=None, site=None):
        """Class probabilities (n, 7) for uint8 images already at the model's size, with TTA and temperature if set."""
        pixels = np.asarray(pixels, dtype="float32")
        extra = [self.metadata_inputs(len(pixels), age, sex, site)] if self.uses_metadata else []
        views = [pixels]
        if self.tta:  # The image and its three flips (skinlib.infer.TTA_VIEWS), averaged.
            views += [pixels[:, :, ::-1], pixels[:, ::-1], pixels[:, ::-1, ::-1]]
        probabilities = np.mean([np.asarray(self._run(np.ascontiguousarray(view), *extra), dtype="float32")
                                 for view in views], axis=0)
        if self.temperature is not None:  # As chapter 04 calibrated them and set the screening threshold on them.
            probabilities = apply_temperature(probabilities, self.temperature).astype("float32")
        return probabilities

    def predict(self, source, *, age=None, sex=None, site=None, name=None):
        """Top-3 diagnoses and P(malignant) for one image (path, bytes, PIL image or array).

        Age, sex and body site are used only by a model trained with
        metadata; unknown values are allowed. Raises :class:`ImageError` with
        a clear message for input that is not a usable image.
        """
        begin = time.perf_counter()
        label = name or (str(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__)
        decoded = read_image(source, name=label)
        spread = colour_spread(decoded)
        if spread < BLANK_SPREAD:
            raise ImageError(f"{label}: the image is almost one colour (no colour channel varies by more than "
                             f"{spread:.1f} of 255); it shows no lesion to check.")
        pixels = resize(frame(decoded, **FRAMING), self.size)
        probabilities = self.predict_pixels(pixels[None], age=age, sex=sex, site=site)[0]
        return Prediction(source=label, probabilities=probabilities, pixels=pixels,
                          malignant_probability=float(malignant_probability(probabilities[None])[0]),
                          model=self.name, version=self.version, backend=self.backend,
                          seconds=time.perf_counter() - begin,
                          threshold=self.threshold, target_sensitivity=self.target_sensitivity,
                          test_screening=self.test_screening)

    def predict_many(self, sources, *, progress=True, age=None, sex=None, site=None):
        """Predict every image; a bad image gets its error in the ``error`` column instead of stopping the run.

        Returns a DataFrame with one row per image (see :meth:`Prediction.as_row`). ``age``, ``sex`` and
        ``site`` apply to every image (one person's lesions), as in :meth:`predict`.
        """
        from tqdm import tqdm

        rows = []
        for source in tqdm(list(sources), desc="Checking images", unit="img", disable=not progress):
            try:
                rows.append(self.predict(source, age=age, sex=sex, site=site).as_row())
            except ImageError as error:
                rows.append({"image": str(source), "model": self.name, "version": self.version,
                             "backend": self.backend, "error": str(error)})
        columns = ["image", "top1", "top1_probability", "top2", "top2_probability", "top3", "top3_probability",
                   "malignant_probability", "screening_threshold", "above_screening_threshold", "model", "version",
                   "backend", "error", *PROBABILITY_COLUMNS]
        return pd.DataFrame(rows).reindex(columns=columns)


@contextlib.contextmanager
def _without_startup_noise():
    """Hold back the native start-up lines of TensorFlow and LiteRT on the process's stderr; pass every other line.

    The lines held back are :data:`skinlib.STARTUP_NOISE` (absl's "WARNING: All log messages before
    ...", oneDNN's notices, LiteRT's "INFO: Created TensorFlow Lite ... delegate"), which C++ writes to file
    descriptor 2, out of reach of Python's logging and of ``TF_CPP_MIN_LOG_LEVEL`` here. Every other line is
    passed on as it comes (through a pipe read by a thread), so the message of a native crash inside the block
    is not held back with the noise.
    """
    import sys
    import threading

    from skinlib import STARTUP_NOISE

    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # No real stderr (some notebook frontends): nothing to hold back.
        yield
        return
    reader, writer = os.pipe()
    os.dup2(writer, 2)
    os.close(writer)

    def forward():
        with os.fdopen(reader, "rb") as lines:
            for line in lines:
                if not STARTUP_NOISE.match(line.decode(errors="replace").rstrip("\n")):
                    os.write(saved, line)

    pump = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    pump.start()
    try:
        yield
    finally:
        os.dup2(saved, 2)  # Closes the pipe's last writer: the thread reads to its end and stops.
        pump.join(timeout=5)
        if not pump.is_alive():
            os.close(saved)


def _has_litert():
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


LITE_RECORD = ".json"
"""Ending added to a LiteRT copy's name for its record (``x.tflite.json``): which ``.keras`` file it was made from
(``artefacts.MODEL_SUFFIXES`` lists it, so the record goes where its model goes)."""


def _sha256(path):
    """The SHA-256 of a file's bytes, read in blocks (the shipped 41 MiB model: some 30-40 ms)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lite_source(lite):
    """The record :func:`export_lite` wrote beside a LiteRT copy; None where there is none or it is unreadable.

    A dict with ``source`` (the ``.keras`` file's name), ``source_sha256``
    (its bytes when the copy was made) and ``sha256`` (the copy's own bytes).

    >>> lite_source("no_such_model.tflite") is None
    True
    """
    try:
        record = json.loads(Path(str(lite) + LITE_RECORD).read_text())
    except (OSError, ValueError):
        return None
    hashes = isinstance(record, dict) and all(isinstance(record.get(key), str) for key in ("source_sha256", "sha256"))
    return record if hashes else None


def lite_is_current(model, lite, *, model_sha256=None):
    """Whether ``lite`` is the LiteRT copy :func:`export_lite` made of the ``.keras`` file ``model`` as it is now.

    True only when the copy's record names the model's present bytes and the
    copy's own bytes are those it wrote; False for a copy without a record.
    ``model_sha256``: the model's hash when the caller has it already.

    >>> lite_is_current("no_such_model.keras", "no_such_model.tflite")
    False
    """
    record = lite_source(lite)
    if record is None or not Path(lite).is_file() or not Path(model).is_file():
        return False
    return record["source_sha256"] == (model_sha256 or _sha256(model)) and record["sha256"] == _sha256(lite)


def _stale_lite_note(model, lite):
    """A sentence when ``lite``'s record says it was made from other bytes than the ``.keras`` file ``model``'s; else ""."""
    record = lite_source(lite)
    if record is None or not Path(model).is_file() or record["source_sha256"] == _sha256(model):
        return ""
    return f"the LiteRT copy {Path(lite).name} was made from another version of {Path(model).name}"


def export_lite(model, path=None, *, force=False):
    """Convert a saved ``.keras`` model to LiteRT (``.tflite``, written atomically beside it or to ``path``).

    The command-line checker loads this copy without importing TensorFlow,
    which is most of its start-up time; the test suite checks that both give
    the same probabilities. A record beside the copy (``<copy>.json``, see
    :func:`lite_source`) names the ``.keras`` file's bytes it was made from:
    when the copy is already that of the model as it is now
    (:func:`lite_is_current`), it is kept and nothing is converted (the
    conversion of an ensemble of three, such as the shipped refit, takes about 30 s), unless ``force``.

    Returns
    -------
    Path
        The copy.

    Raises
    ------
    ModelError
        When ``model`` is not a file.
    """
    model = Path(model)
    target = Path(path) if path else model.with_suffix(".tflite")
    if not model.is_file():
        raise ModelError(f"{model}: no such model file.")
    source_sha256 = _sha256(model)
    if not force and lite_is_current(model, target, model_sha256=source_sha256):
        return target
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(load_model(model))
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints its temporary export folder: noise.
            flat = converter.convert()
    finally:
        logger.setLevel(level)
    record = {"source": model.name, "source_sha256": source_sha256, "sha256": hashlib.sha256(flat).hexdigest()}
    write_atomic(target, lambda handle: handle.write(flat))
    # The record last: a crash between the two writes leaves the old record, whose copy hash no longer matches the
    # new copy, so the next call converts again (and the checker may meanwhile call the fresh copy stale: harmless).
    write_atomic(Path(str(target) + LITE_RECORD), lambda handle: handle.write(
        (json.dumps(record, indent=2) + "\n").encode()))
    return target


CHECKED_EXTENSIONS = IMAGE_EXTENSIONS + (".tif", ".tiff", ".bmp", ".webp")
"""The file endings the checker takes from a folder (a file named on its own is tried whatever its ending)."""


def _folder_entries(folder):
    """A folder's entries, sorted and not hidden (e.g. macOS's "._IMG.jpg"), split: image files read, the rest."""
    entries = sorted(p for p in Path(folder).iterdir() if not p.name.startswith("."))
    images = [p for p in entries if p.is_file() and p.suffix.lower() in CHECKED_EXTENSIONS]
    return images, [p for p in entries if p not in images]


def image_files(paths):
    """Expand folders into the image files they hold (sorted, not hidden, not searching subfolders); keep files.

    >>> image_files([])
    []
    """
    found = []
    for path in map(Path, paths):
        found += _folder_entries(path)[0] if path.is_dir() else [path]
    return found


def skipped_files(paths):
    """What :func:`image_files` leaves out of the folders in ``paths``: other files and subfolders (sorted).

    Hidden entries (a name starting with ".") are not listed.

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> for name in ("a.jpg", "b.txt", ".hidden"): _ = (folder / name).write_bytes(b"")
    >>> (folder / "sub").mkdir(); [p.name for p in skipped_files([folder])]
    ['b.txt', 'sub']
    """
    return [entry for path in map(Path, paths) if path.is_dir() for entry in _folder_entries(path)[1]]


PROBABILITY_COLUMNS = [f"p_{code}" for code in CLASSES]
"""The answers' last columns: every diagnosis's probability (as the checker shows them), for scores such as macro AUC."""

ISIC_COLUMNS = {"MEL": "mel", "NV": "nv", "BCC": "bcc", "AKIEC": "akiec", "BKL": "bkl", "DF": "df", "VASC": "vasc"}
"""The diagnosis columns of the ISIC 2018 challenge's ground-truth files (Task 3), by HAM10000 code."""

ISIC_2019_ONLY = ("AK", "SCC", "UNK")
"""Columns of ISIC 2019's ground truth that ISIC 2018's lacks (its diagnoses are not HAM10000's seven)."""


class ScoreError(ValueError):
    """Answers or diagnoses that cannot be scored; the message names the file and the problem."""


def image_name(name):
    """An image's name as answers and diagnoses are matched: no folder, and no extension of an image file.

    >>> image_name("/photos/ISIC_0024306.JPG"), image_name("lesion.001"), image_name("0001")
    ('ISIC_0024306', 'lesion.001', '0001')
    """
    name = Path(str(name).strip()).name
    return name[:-len(Path(name).suffix)] if Path(name).suffix.lower() in CHECKED_EXTENSIONS else name


def read_truth(path):
    """The known diagnosis of each image, from a CSV file: a table indexed by image name, with ``dx`` and ``lesion``.

    Two layouts are read: a ``dx`` column of the seven codes beside ``image_id`` or ``image`` (HAM10000's
    metadata, also its tab-separated ``.tab`` copy), or ISIC 2018's ground truth, ``image`` and one column per
    diagnosis (MEL, NV, BCC, AKIEC, BKL, DF, VASC) holding 1 for the image's diagnosis. Names are matched by
    :func:`image_name`. ``lesion`` is the ``lesion_id`` column where there is one (images of one lesion are then
    resampled together), else the image's name.

    Raises
    ------
    ScoreError
        The file has neither layout, an unnamed image, an unknown code, an image with no single diagnosis, or an
        image twice.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tab" else ",", dtype=str,
                            keep_default_na=False)
    except (OSError, ValueError) as error:
        raise ScoreError(f"{path}: cannot be read as a CSV file ({error}).") from None
    table = table.rename(columns=_known_column)
    if table.columns.duplicated().any():
        raise ScoreError(f"{path}: the columns {sorted(set(table.columns[table.columns.duplicated()]))} are given "
                         "twice (names are read without regard to case).")
    key = next((column for column in ("image_id", "image") if column in table.columns), None)
    if key is None:
        hint = "; it looks separated by ';', not ','" if len(table.columns) == 1 and ";" in table.columns[0] else ""
        raise ScoreError(f"{path}: no 'image_id' or 'image' column naming the images; it has "
                         f"{list(table.columns)}{hint}.")
    names = table[key].map(image_name)
    _refuse_empty(names, path, f"name no image in '{key}'")
    if "dx" in table.columns:
        codes = table["dx"].str.strip().str.lower()
        _refuse_empty(codes, path, "have no diagnosis in 'dx'")
        unknown = sorted(set(codes) - set(CLASSES))
        if unknown:
            raise ScoreError(f"{path}: unknown diagnoses {unknown[:5]} in 'dx'; the codes are {list(CLASSES)}.")
    elif set(ISIC_COLUMNS) <= set(table.columns):
        try:
            onehot = table[list(ISIC_COLUMNS)].apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
        except ValueError as error:
            raise ScoreError(f"{path}: a diagnosis column holds a value that is not a number ({error}).") from None
        single = ((onehot == 1).sum(axis=1) == 1) & ((onehot == 0).sum(axis=1) == len(ISIC_COLUMNS) - 1)
        if not single.all():
            raise ScoreError(f"{path}: {int((~single).sum())} image(s) without exactly one diagnosis set to 1 and "
                             f"the others to 0 (first: {names[~single].iloc[0]}).")
        codes = pd.Series(np.array(list(ISIC_COLUMNS.values()))[onehot.argmax(axis=1)], index=table.index)
    elif set(ISIC_2019_ONLY) & set(table.columns):
        raise ScoreError(f"{path}: this looks like ISIC 2019's layout (AK, SCC, UNK), whose diagnoses are not "
                         f"HAM10000's seven; give a 'dx' column of the codes {list(CLASSES)} instead.")
    else:
        raise ScoreError(f"{path}: no 'dx' column and not the ISIC 2018 layout (columns {list(ISIC_COLUMNS)}); it has "
                         f"{list(table.columns)}.")
    repeated = names[names.str.casefold().duplicated()]
    if len(repeated):
        raise ScoreError(f"{path}: {len(repeated)} image name(s) given twice (first: {repeated.iloc[0]}).")
    lesions = table["lesion_id"].str.strip() if "lesion_id" in table.columns else names
    lesions = lesions.where(lesions != "", names)
    return pd.DataFrame({"dx": codes.to_numpy(), "lesion": lesions.to_numpy()}, index=pd.Index(names, name="image"))


def _refuse_empty(values, path, what):
    """Raise :class:`ScoreError` naming how many of a file's ``values`` are empty and the first one's row."""
    empty = (values == "").to_numpy()
    if empty.any():
        raise ScoreError(f"{path}: {int(empty.sum())} row(s) {what} (first: row {int(np.flatnonzero(empty)[0]) + 2} "
                         "of the file).")


def _known_column(name):
    """A truth file's column under the name :func:`read_truth` looks for, whatever its case and spaces."""
    bare = str(name).strip()
    if bare.lower() in ("image_id", "image", "dx", "lesion_id"):
        return bare.lower()
    return bare.upper() if bare.upper() in {*ISIC_COLUMNS, *ISIC_2019_ONLY} else bare


FEW_LESIONS = 5
"""Below this many lesions, a diagnosis's recall barely varies in the bootstrap (with one, not at all)."""


def score_answers(answers, truth, *, n_resamples=1000, seed=0, level=0.95):
    """Score the lesion checker's answers against known diagnoses, with bootstrap intervals.

    Parameters
    ----------
    answers : pandas.DataFrame
        The checker's answers, as ``python -m skinlib predict ... --csv`` writes them (:meth:`Checker.predict_many`),
        from one model; rows with an ``error`` are left out and counted.
    truth : pandas.DataFrame or pandas.Series
        The diagnosis (HAM10000 code) of each image, indexed by :func:`image_name`, as :func:`read_truth` returns
        it (a Series of codes also works). Every answered image must be in it.

    Returns
    -------
    table : pandas.DataFrame
        ``estimate``, ``low`` and ``high`` of each metric of :func:`skinlib.metrics.answer_metrics` (the macro AUC
        where the answers hold the seven probabilities, :data:`PROBABILITY_COLUMNS`). The bootstrap
        resamples the lesions of each diagnosis on their own (``truth``'s ``lesion``; each image is its own lesion
        where the diagnoses name none, and where several images then show one lesion the intervals are too narrow).
    counts : dict
        ``scored`` images, ``errors`` (rows the checker could not answer), ``support`` per diagnosis, ``lesions``,
        the ``threshold`` of the answers and the ``model``; ``few_lesions``, the lesions of each diagnosis present
        with fewer than :data:`FEW_LESIONS` (their share of the intervals is too narrow); ``ham10000``, how many
        scored images are HAM10000's by name, per split of the committed manifest (every model of the project
        learnt from the training images; the shipped refit from the validation images too).

    Images are matched by name without regard to case.

    Raises
    ------
    ScoreError
        Not the checker's columns, no answered row, an image answered twice, answers of several models or thresholds, a row without
        P(malignant) or with an unknown diagnosis, or an answered image without a diagnosis.
    """
    needed = {"image", "top1", "malignant_probability"} - set(answers.columns)
    if needed:
        raise ScoreError(f"not the checker's answers (no {sorted(needed)} column); write them with python -m skinlib "
                         "predict IMAGES --csv FILE.")
    truth = truth.to_frame("dx") if isinstance(truth, pd.Series) else truth
    if "lesion" not in truth:
        truth = truth.assign(lesion=truth.index)
    if n_resamples < 1:
        raise ScoreError(f"the bootstrap needs at least one resample; got {n_resamples}.")
    errors = answers["error"].fillna("").astype(str).str.strip() if "error" in answers else pd.Series("", answers.index)
    answered = answers[errors == ""]
    if answered.empty:
        raise ScoreError("no answered image to score: " + ("the answers have no rows." if answers.empty else
                                                           "every row has an error."))
    names = answered["image"].map(image_name)
    keys = names.str.casefold()  # Names match without regard to case: ISIC_1.jpg and isic_1.JPG are one image.
    repeated = names[keys.duplicated()]
    if len(repeated):
        raise ScoreError(f"{len(repeated)} image(s) answered twice (first: {repeated.iloc[0]}): give each image once.")
    for column in ("model", "screening_threshold"):
        values = sorted(set(answered[column].fillna("").astype(str))) if column in answered else []
        if len(values) > 1:
            raise ScoreError(f"the answers come from several {column.replace('_', ' ')}s ({values[:3]}): score one "
                             "model's answers at a time.")
    truth = truth.set_axis(truth.index.astype(str).str.casefold())
    twice = truth.index[truth.index.duplicated()]
    if len(twice):
        raise ScoreError(f"the diagnoses name {len(twice)} image(s) twice when case is ignored (first: {twice[0]}).")
    missing = names[~keys.isin(truth.index)]
    if len(missing):
        raise ScoreError(f"{len(missing)} answered image(s) have no known diagnosis (first: {missing.iloc[:3].tolist()}): "
                         "the diagnoses must name every image, without folder or extension.")
    unknown_top = sorted(set(answered["top1"].astype(str)) - set(CLASSES))
    if unknown_top:
        raise ScoreError(f"the answers name diagnoses {unknown_top[:5]} that are not the seven codes {list(CLASSES)}.")
    p_malignant = pd.to_numeric(answered["malignant_probability"], errors="coerce")
    if p_malignant.isna().any():
        raise ScoreError(f"{int(p_malignant.isna().sum())} answered image(s) have no P(malignant) (first: "
                         f"{names[p_malignant.isna()].iloc[0]}).")
    flags = answered.get("above_screening_threshold", pd.Series("", answered.index)).astype(str).str.strip().str.lower()
    flagged = flags.map({"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0})
    if flagged.isna().any() and not flagged.isna().all():
        raise ScoreError(f"{int(flagged.isna().sum())} answered image(s) have no screening flag where the others do "
                         f"(first: {names[flagged.isna()].iloc[0]}).")
    known = truth.loc[keys]
    labels = known["dx"].map(CLASSES.index).to_numpy()
    columns = [answered["top1"].astype(str).map(CLASSES.index).to_numpy(), p_malignant.to_numpy(),
               flagged.to_numpy(dtype=float)]
    every = answered.reindex(columns=PROBABILITY_COLUMNS).apply(pd.to_numeric, errors="coerce")
    missing_p = every.isna().any(axis=1)
    if missing_p.any() and not missing_p.all():
        raise ScoreError(f"{int(missing_p.sum())} answered image(s) lack some of the seven probabilities where the "
                         f"others have them (first: {names[missing_p].iloc[0]}).")
    if not missing_p.any():  # Answers that hold all seven probabilities: macro AUC too.
        columns.append(every.to_numpy())
    values = np.column_stack(columns)
    table = bootstrap(labels, values, groups=known["lesion"].to_numpy(), strata=labels, statistic=answer_metrics,
                      n_resamples=n_resamples, seed=seed, level=level)
    thresholds = pd.to_numeric(answered.get("screening_threshold", pd.Series(dtype=float)), errors="coerce").dropna()
    counts = {"scored": int(len(answered)), "errors": int((errors != "").sum()),
              "support": {dx: int((labels == k).sum()) for k, dx in enumerate(CLASSES)},
              "lesions": int(known["lesion"].nunique()),
              "threshold": float(thresholds.iloc[0]) if len(thresholds) and not flagged.isna().all() else None,
              "model": sorted(set(answered["model"].astype(str))) if "model" in answered else []}
    lesions_per_dx = known.groupby("dx")["lesion"].nunique()
    counts["few_lesions"] = {dx: int(n) for dx, n in lesions_per_dx.items() if n < FEW_LESIONS}
    counts["ham10000"] = _ham10000_splits(keys)
    return table, counts


def _ham10000_splits(keys):
    """How many of the image names (case-folded) are HAM10000 images of each split of the committed manifest."""
    from skinlib.split import load_manifest

    manifest = load_manifest()
    found = manifest["split"].set_axis(manifest["image_id"].str.casefold()).reindex(keys.to_numpy()).dropna()
    return {name: int((found == name).sum()) for name in ("train", "val", "test") if (found == name).any()}

"""Everything the notebooks leave on disk: where it goes, what it is called, how it is written and read back.

One module owns the saved artefacts, so that a file name or a format is
spelled once:

- the folders: :func:`models_dir` (``Saved_Models/``) and :func:`figure_dir`
  (``Images/``), or their scratch copies under ``.papermill/smoke/`` in smoke
  mode; :func:`setup` gives a chapter both and its smoke flag;
- atomic writes (a crash leaves the last good file in place):
  :func:`write_atomic`, :func:`write_table_atomic`, :func:`write_json_atomic`
  and :func:`save_model_atomic`, with :func:`to_jsonable` for NumPy values;
- the results table shared by the chapters (:data:`RESULTS_FILE`):
  :func:`record_result`, :func:`record_metrics` and :func:`read_results`;
- the test results of chapter 04 (:data:`FINAL_METRICS_FILE`): built by
  :func:`final_metrics`, written by :func:`write_final_metrics`, read by
  :func:`read_final_metrics` (the README, the slides and the lesion checker);
- the scores of runs repeated with other seeds only to measure the noise
  (:func:`write_seed_repeats`, :func:`read_seed_repeats`), so that a run
  that skips them can show the last ones;
- a model refitted on the training and validation images together
  (:func:`save_refit`, :func:`refit_of`, :func:`forget_refit`), tied to the
  validated run it repeats, since it has no validation score of its own.

It imports no other skinlib module but the package itself, so every module
can use it.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from skinlib import repo_root, smoke_mode

MODELS_FOLDER = "Saved_Models"
"""Trained models, their histories and metrics, the results table and the test results."""

FIGURES_FOLDER = "Images"
"""The figures of the notebooks (PNG), also used by the slides."""

SMOKE_FOLDER = ".papermill/smoke"
"""Where smoke-mode runs write their notebooks, models and figures, away from the committed ones."""

RESULTS_FILE = "results.csv"
"""The results table shared by every notebook (one row per run, validation split), inside ``Saved_Models/``."""

FINAL_METRICS_FILE = "final_metrics.json"
"""The test results of chapter 04, inside ``Saved_Models/``: the only source of the test numbers quoted elsewhere."""

SEED_REPEATS_SUFFIX = "_seed_repeats.json"
"""``<notebook><suffix>`` in ``Saved_Models/``: the scores of a notebook's runs repeated with other seeds."""

MODEL_SUFFIXES = (".keras", ".tflite", ".tflite.json")
"""The files of a saved model: the Keras model, its LiteRT copy and the copy's record of its source (chapter 05,
:func:`skinlib.predict.export_lite`)."""

REFIT_SUFFIX = "_refit"
"""``<name><suffix>``: the model of run ``name``'s recipe refitted on the training and validation images."""

REFIT_RECORD = "_training.json"
"""``<name>_refit<record>``: what the refit was trained on, and the validated run it repeats (:func:`save_refit`)."""

RUN_FILE_SUFFIXES = (*MODEL_SUFFIXES, "_history.csv", "_metrics.json")
"""``<name><suffix>``: every file of run ``name`` (:func:`forget_stale` removes them, and its refit with
:func:`forget_refit`)."""

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def models_dir(smoke=False, *, root=None):
    """Return ``Saved_Models/``, or its scratch copy in smoke mode.

    Parameters
    ----------
    smoke : bool, default=False
        The smoke-mode folder ``.papermill/smoke/Saved_Models`` instead.
    root : str or Path, default=None
        The repository; default :func:`skinlib.repo_root`.

    Returns
    -------
    Path

    Examples
    --------
    >>> models_dir(True, root="/repo").as_posix()
    '/repo/.papermill/smoke/Saved_Models'
    """
    return Path(root or repo_root()) / (f"{SMOKE_FOLDER}/{MODELS_FOLDER}" if smoke else MODELS_FOLDER)


def figure_dir(smoke=False, *, root=None):
    """Return where figures are saved: ``Images/``, or its scratch copy in smoke mode.

    >>> figure_dir(False, root="/repo").as_posix()
    '/repo/Images'
    """
    return Path(root or repo_root()) / (f"{SMOKE_FOLDER}/{FIGURES_FOLDER}" if smoke else FIGURES_FOLDER)


class Setup(NamedTuple):
    """What :func:`setup` returns: the smoke flag in force and the folders a chapter writes to."""

    smoke: bool
    models: Path
    figures: Path


def setup(smoke=False):
    """A chapter's setup: smoke mode (``SKINLIB_SMOKE`` wins over ``smoke``) and its model and figure folders.

    Parameters
    ----------
    smoke : bool, default=False
        The notebook's ``smoke`` parameter.

    Returns
    -------
    Setup
        ``(smoke, models, figures)``: the flag in force, :func:`models_dir` and
        :func:`figure_dir` for it.

    Examples
    --------
    >>> smoke, models, figures = setup(False)
    >>> models == models_dir(smoke) and figures == figure_dir(smoke)
    True
    """
    smoke = smoke_mode(smoke)
    return Setup(smoke, models_dir(smoke), figure_dir(smoke))


def write_atomic(path, write):
    """Write a file through ``write(handle)`` so that a crash leaves the old file intact.

    The data goes to a temporary file in the same folder, is flushed to disk,
    and then replaces ``path`` in one step.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> write_atomic(target, lambda handle: handle.write(b"hello"))
    >>> target.read_bytes()
    b'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes files private; give the usual permissions.
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def unwritable_reason(path):
    """Why :func:`write_atomic` could not write ``path`` (None where it could), checked before any work.

    Missing folders are fine (``write_atomic`` makes them); a folder in the
    file's place, a file in a folder's place or a folder this user cannot
    write are not.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> unwritable_reason(folder / "new" / "out.csv") is None, unwritable_reason(folder)
    (True, 'is a folder')
    """
    path = Path(path)
    if path.is_dir():
        return "is a folder"
    folder = path.parent
    while not folder.exists():  # The nearest folder that exists decides: write_atomic makes the rest.
        folder = folder.parent
    if not folder.is_dir():
        return f"lies under {folder}, which is a file"
    if not os.access(folder, os.W_OK):
        return f"is in {folder}, a folder this user cannot write"
    return None


def write_table_atomic(table, path, **options):
    """Write a DataFrame as CSV (``\\n`` line ends) through a temporary file; ``options`` go to ``to_csv``."""
    buffer = io.StringIO()
    table.to_csv(buffer, lineterminator="\n", **options)
    write_atomic(path, lambda handle: handle.write(buffer.getvalue().encode()))
    return Path(path)


def to_jsonable(value):
    """Turn NumPy values inside dicts and lists into plain Python for JSON (dict keys become strings).

    >>> to_jsonable({1: np.float32(0.5), "a": (np.int64(2), np.array([3]))})
    {'1': 0.5, 'a': [2, [3]]}
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_json_atomic(path, value, *, end=""):
    """Write ``value`` as indented JSON (NumPy values converted by :func:`to_jsonable`), atomically; return the path.

    ``end`` is appended to the text (``"\\n"`` for a final newline).
    """
    text = json.dumps(to_jsonable(value), indent=2) + end
    write_atomic(path, lambda handle: handle.write(text.encode()))
    return Path(path)


def save_model_atomic(model, path):
    """Save a Keras model for inference to a ``.keras`` file, through a temporary file in the same folder.

    The file holds an uncompiled copy (no optimizer state). Returns the path.
    """
    import keras

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    inference = model.__class__.from_config(model.get_config())  # Uncompiled copy: no optimizer state in the file.
    inference.set_weights(model.get_weights())
    try:
        inference.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------------------------------------------------------
# The results table (validation, chapters 02 and 03)
# ---------------------------------------------------------------------------------------------------------------

def read_results(folder, *, missing_ok=False):
    """The results table of ``folder`` (:data:`RESULTS_FILE`); with ``missing_ok``, an empty table when absent."""
    path = Path(folder) / RESULTS_FILE
    if missing_ok and not path.is_file():
        return pd.DataFrame()
    return pd.read_csv(path)


def record_result(row, folder):
    """Add or replace (by ``name``) one row of the results table in ``folder`` and return the table."""
    table = read_results(folder, missing_ok=True)
    table = pd.concat([table[table.get("name", pd.Series(dtype=str)) != row["name"]], pd.DataFrame([row])],
                      ignore_index=True)
    write_table_atomic(table, Path(folder) / RESULTS_FILE, index=False)
    return table


def record_metrics(name, metrics, *, folder, notebook, extra=None, details=None):
    """Save validation metrics: ``<name>_metrics.json`` and the row of the results table, atomically.

    Used by :func:`skinlib.train.save_run` for trained models (``details``:
    parameters, epochs, time) and directly for prediction procedures that are
    not one trained model (TTA, an ensemble).

    Parameters
    ----------
    name : str
        The run's name (the row's key in the table).
    metrics : dict
        From :func:`skinlib.metrics.classification_metrics`; its numbers
        (rounded to 4 digits) become columns.
    folder : str or Path
        ``Saved_Models/`` (:func:`models_dir`).
    notebook : str
        The chapter that made the run.
    extra : dict, default=None
        More columns, last in the row.
    details : dict, default=None
        Columns between the notebook and the metrics.

    Returns
    -------
    dict
        The row written.
    """
    row = {"name": name, "notebook": notebook, "split": "val", **(details or {})}
    row.update({key: round(float(value), 4) for key, value in metrics.items() if np.isscalar(value)})
    row.update(extra or {})
    record_result(row, folder)
    write_json_atomic(Path(folder) / f"{name}_metrics.json", metrics)
    return row


# ---------------------------------------------------------------------------------------------------------------
# final_metrics.json (the test split, chapter 04)
# ---------------------------------------------------------------------------------------------------------------

def final_metrics(*, rule, model, procedure, tta, input_size, smoke, test_labels, test_lesion_ids,
                  bootstrap_resamples, finals, per_class, target_sensitivity, threshold, screening,
                  screening_interval, temperature, temperature_kept, ece, subgroups, explanations, decision_tradeoff,
                  tta_comparison, validated_model=None, confirmation=None):
    """The content of ``final_metrics.json``, from chapter 04's tables: its one definition.

    Parameters
    ----------
    rule : str
        How the final model was chosen (:data:`skinlib.final.RULE`).
    model : str
        The final model's file stem (the lesion checker's default model; an ensemble is one file).
    procedure : str
        The final procedure's name (the model, with ``_tta`` when it uses TTA).
    tta : bool
    input_size : tuple (height, width)
    smoke : bool
    test_labels : array-like of shape (n,)
    test_lesion_ids : array-like of shape (n,)
        The lesion of each test image.
    bootstrap_resamples : int
    finals : dict of DataFrame
        By final's name: ``estimate``, ``low``, ``high`` and ``validation``
        per headline metric (:func:`skinlib.metrics.bootstrap`).
    per_class : DataFrame
        :func:`skinlib.metrics.per_class_report` of the test split (with the interval columns of
        :func:`skinlib.metrics.per_class_intervals` where chapter 04 joins them).
    target_sensitivity, threshold : float
        The validation sensitivity aimed at and the threshold on P(malignant) that reaches it.
    screening : dict
        :func:`skinlib.metrics.screening` by split ("val", "test").
    screening_interval : DataFrame
        Bootstrap intervals of the test screening numbers.
    temperature : float
    temperature_kept : bool
    ece : dict
        Expected calibration error by split, raw and scaled.
    subgroups : dict of DataFrame
        :func:`skinlib.metrics.subgroups` by metadata column.
    explanations : DataFrame
        :func:`skinlib.explanation_scores.summarise_scores`, indexed by (class, predictions).
    decision_tradeoff : DataFrame
        :func:`skinlib.metrics.decision_tradeoff` of the final procedure on the validation split.
    tta_comparison : dict
        :func:`skinlib.final.compare_tta`: what TTA did for the final model, on validation and on test.
    validated_model : str, default=None
        The saved model whose validation predictions fill every ``validation``
        entry: for a refit final, the run it repeats (the refit learnt from the
        validation images); None: ``model`` itself.
    confirmation : tuple (DataFrame, DataFrame), default=None
        :func:`skinlib.metrics.recall_by_confirmation` of the test split, and the :func:`skinlib.metrics.bootstrap`
        of its images confirmed by histopathology; None leaves them out.

    Returns
    -------
    dict
        For :func:`write_final_metrics`; the keys are those :func:`read_final_metrics` returns.
    """
    return {
        "rule": rule,
        "model": model, "validated_model": validated_model or model, "procedure": procedure, "tta": tta,
        "input_size": list(input_size), "smoke": smoke,
        "test_images": int(len(test_labels)), "test_lesions": int(len(set(test_lesion_ids))),
        "bootstrap_resamples": bootstrap_resamples,
        "finals": {name: table.to_dict(orient="index") for name, table in finals.items()},
        "per_class": per_class.to_dict(orient="index"),
        "screening": {"target_validation_sensitivity": target_sensitivity, "threshold": threshold,
                      "validation": screening["val"], "test": screening["test"],
                      "test_interval": screening_interval.to_dict(orient="index")},
        "calibration": {"temperature": temperature, "temperature_kept": bool(temperature_kept), "ece": ece},
        "subgroups": {column: table.to_dict(orient="index") for column, table in subgroups.items()},
        "explanations": {f"{name}/{predictions}": row.to_dict()
                         for (name, predictions), row in explanations.iterrows()},
        "decision_tradeoff_validation": {f"{power:g}": row.to_dict() for power, row in decision_tradeoff.iterrows()},
        "tta_comparison": tta_comparison,
        **({} if confirmation is None else {"confirmation": {
            "recall": {f"{dx}/{way}": {"images": int(row["images"]), "recall": float(row["recall"])}
                       for (dx, way), row in confirmation[0].iterrows()},
            "histopathology": confirmation[1].to_dict(orient="index")}}),
    }


def write_final_metrics(payload, folder):
    """Write ``final_metrics.json`` (from :func:`final_metrics`) into ``folder`` atomically; return its path.

    >>> import tempfile
    >>> path = write_final_metrics({"model": "m", "score": np.float32(0.5)}, tempfile.mkdtemp())
    >>> read_final_metrics(path.parent)
    {'model': 'm', 'score': 0.5}
    """
    return write_json_atomic(Path(folder) / FINAL_METRICS_FILE, payload)


def read_final_metrics(folder, *, missing_ok=False):
    """The test results of ``folder`` (``final_metrics.json``) as a dict; None when absent and ``missing_ok``.

    >>> import tempfile
    >>> read_final_metrics(tempfile.mkdtemp(), missing_ok=True) is None
    True
    """
    path = Path(folder) / FINAL_METRICS_FILE
    if missing_ok and not path.is_file():
        return None
    return json.loads(path.read_text())


def forget_stale(folder, notebook, *, since):
    """Drop the results rows of ``notebook`` that its last run did not write again, and their files.

    A row is stale when its ``<name>_metrics.json`` is older than ``since``
    (a ``time.time()`` taken before the run): a model of an earlier design or
    profile that the notebook no longer makes. Without this, chapter 04 could
    choose a model that the current chapters do not produce. A refit of a
    kept row is stale too when its record is older than ``since`` (chapter 03
    ran again without a refit): :func:`forget_refit`. Call it only once
    the notebook has written all its results (chapter 03 calls it after its
    last training; ``reproduce`` after each notebook), so a failed run leaves
    everything in place.

    Returns
    -------
    list of str
        The names of the rows dropped, and of the refits dropped on their own.
    """
    folder = Path(folder)
    table = read_results(folder, missing_ok=True)
    if table.empty:
        return []
    stale, old_refits = [], []
    for name in table.loc[table["notebook"] == notebook, "name"]:
        metrics_file = folder / f"{name}_metrics.json"
        if not metrics_file.is_file() or metrics_file.stat().st_mtime < since:
            stale.append(name)
        elif (record := folder / f"{refit_name(name)}{REFIT_RECORD}").is_file() and record.stat().st_mtime < since:
            old_refits.append(forget_refit(name, folder))
    if stale:
        write_table_atomic(table[~table["name"].isin(stale)], folder / RESULTS_FILE, index=False)
        for name in stale:
            forget_refit(name, folder)  # A refit goes with the run it repeats.
            for suffix in RUN_FILE_SUFFIXES:
                (folder / f"{name}{suffix}").unlink(missing_ok=True)
    return stale + old_refits


def refit_name(source):
    """The name of run ``source``'s refit: ``<source>_refit``."""
    return f"{source}{REFIT_SUFFIX}"


def _source_key(folder, source):
    """A digest of the validated run's ``_metrics.json``: which run of it a refit repeats."""
    import hashlib

    return hashlib.sha256((Path(folder) / f"{source}_metrics.json").read_bytes()).hexdigest()


def save_refit(model, source, *, folder, details):
    """Save ``model`` as the refit of the validated run ``source``: ``<source>_refit.keras`` and its record.

    A refit trains the recipe of ``source`` (chosen on validation) on the
    training and validation images together, so it has no validation score
    and no row of the results table. The record (``<source>_refit_training.json``,
    written last, so a crash between the two leaves no record) says what it
    was trained on and holds a digest of ``source``'s ``_metrics.json``:
    :func:`refit_of` then drops the refit once ``source``'s validation
    metrics change (a run that repeats them to the byte keeps it), and
    :func:`forget_stale` removes it with ``source``.

    Parameters
    ----------
    model : keras.Model
    source : str
        The validated run (a row of the results table with its ``_metrics.json``).
    folder : str or Path
    details : dict
        What it was trained on (``train_images``, ``epochs``, ``seeds``...), recorded.

    Returns
    -------
    str
        The refit's name, ``<source>_refit``.
    """
    folder = Path(folder)
    name = refit_name(source)
    key = _source_key(folder, source)
    (folder / f"{name}{REFIT_RECORD}").unlink(missing_ok=True)  # No record points at a half-written model.
    save_model_atomic(model, folder / f"{name}.keras")
    write_json_atomic(folder / f"{name}{REFIT_RECORD}", {"refit_of": source, "source_metrics_sha256": key,
                                                         **details})
    return name


def refit_of(source, folder):
    """The name of the saved refit of run ``source``, or None when there is none for the run now on disk.

    A refit counts only with its model, its record and the digest of
    ``source``'s ``_metrics.json`` that it was made after (:func:`save_refit`):
    a refit made before the run's validation metrics changed does not stand
    for the new run.

    Examples
    --------
    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "run_metrics.json").write_text('{"balanced_accuracy": 0.7}')
    >>> refit_of("run", folder) is None
    True
    >>> _ = (folder / "run_refit.keras").write_bytes(b"")
    >>> _ = write_json_atomic(folder / "run_refit_training.json", {"refit_of": "run",
    ...                       "source_metrics_sha256": _source_key(folder, "run")})
    >>> refit_of("run", folder)
    'run_refit'
    >>> _ = (folder / "run_metrics.json").write_text('{"balanced_accuracy": 0.71}')  # run trained again
    >>> refit_of("run", folder) is None
    True
    """
    folder = Path(folder)
    name = refit_name(source)
    record, model = folder / f"{name}{REFIT_RECORD}", folder / f"{name}.keras"
    if not (record.is_file() and model.is_file() and (folder / f"{source}_metrics.json").is_file()):
        return None
    written = json.loads(record.read_text())
    if written.get("refit_of") != source or written.get("source_metrics_sha256") != _source_key(folder, source):
        return None
    return name


def forget_refit(source, folder):
    """Remove the saved refit of run ``source``, record first; return its name, or None when there was none.

    :func:`forget_stale` calls it for a stale run, and for a run trained
    again without a refit (chapter 03 with ``refit=False``): a deterministic
    rerun writes ``source``'s ``_metrics.json`` byte for byte again, so an
    earlier refit would otherwise still count (:func:`refit_of`). The record
    goes first, so a crash part-way leaves no record pointing at a
    half-removed refit.

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "run_metrics.json").write_text("{}")
    >>> _ = (folder / "run_refit.keras").write_bytes(b"")
    >>> _ = write_json_atomic(folder / "run_refit_training.json", {"refit_of": "run",
    ...                       "source_metrics_sha256": _source_key(folder, "run")})
    >>> forget_refit("run", folder), refit_of("run", folder), sorted(p.name for p in folder.iterdir())
    ('run_refit', None, ['run_metrics.json'])
    >>> forget_refit("run", folder) is None
    True
    """
    folder, name = Path(folder), refit_name(source)
    files = [folder / f"{name}{suffix}" for suffix in (REFIT_RECORD, *MODEL_SUFFIXES)]
    found = any(path.exists() for path in files)
    for path in files:
        path.unlink(missing_ok=True)
    return name if found else None


def validated_model(final):
    """The saved model whose validation scores ``final_metrics.json`` shows: the run a refit repeats, else the final.

    Files written before the field existed name no other model.

    >>> validated_model({"model": "e_refit", "validated_model": "e"}), validated_model({"model": "m"})
    ('e', 'm')
    """
    return final.get("validated_model", final["model"])


def write_seed_repeats(folder, notebook, repeats, *, metrics):
    """Keep the validation scores of runs repeated with other seeds, which are not saved as models.

    Written atomically as ``<notebook>_seed_repeats.json`` in ``folder``, so
    that a run which skips the repeats (chapter 02's default profile) can
    still show the spread of the last run that trained them.

    Parameters
    ----------
    folder : str or Path
    notebook : str
        The notebook's name without ``.ipynb``.
    repeats : dict of str to list of dict
        By recipe name, each seed's metrics (first seed first), as
        :func:`skinlib.metrics.seed_spread` takes them.
    metrics : sequence of str
        The metrics to keep.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = write_seed_repeats(folder, "02_x", {"a": [{"accuracy": 0.5, "loss": 1.0}]}, metrics=["accuracy"])
    >>> read_seed_repeats(folder, "02_x")["repeats"]
    {'a': [{'accuracy': 0.5}]}
    """
    import datetime

    record = {"notebook": notebook,
              "written": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "repeats": {name: [{metric: float(run[metric]) for metric in metrics} for run in runs]
                          for name, runs in repeats.items()}}
    return write_json_atomic(Path(folder) / f"{notebook}{SEED_REPEATS_SUFFIX}", record, end="\n")


def read_seed_repeats(folder, notebook, *, names=None):
    """The record of :func:`write_seed_repeats`: a dict with ``notebook``, ``written`` and ``repeats``.

    Parameters
    ----------
    names : collection of str, default=None
        The recipes the record must hold, when given.

    Raises
    ------
    FileNotFoundError
        When no run of ``notebook`` has trained the repeats into ``folder``; the message says how to make them.
    ValueError
        When the record's recipes are not ``names`` (it was written by another version of the notebook).
    """
    path = Path(folder) / f"{notebook}{SEED_REPEATS_SUFFIX}"
    rerun = f"`python -m skinlib reproduce --only {notebook} --set profile=full`"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: no run of {notebook} has trained its seed repeats here. Run it "
                                f"once with them ({rerun}).")
    record = json.loads(path.read_text())
    if names is not None and set(record["repeats"]) != set(names):
        raise ValueError(f"{path} holds the repeats of {sorted(record['repeats'])}, not of {sorted(names)}: it was "
                         f"written by another version of {notebook}. Run it again with them ({rerun}).")
    return record

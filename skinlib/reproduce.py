"""Run the study's notebooks in reading order with papermill.

``python -m skinlib reproduce`` executes ``notebooks/NN_*.ipynb`` in order and
then ``Project_Main_Notebook.ipynb``, writing each executed notebook over
itself so that the committed outputs are those of the run. With ``--smoke``
the same chain runs on a small subset and writes to ``.papermill/smoke/``
instead, leaving the committed notebooks untouched. The run stops at the
first failure and names the notebook and the cell.

Every notebook's parameters (its papermill ``parameters`` cell) can be listed
in one table (:func:`parameters`, ``python -m skinlib reproduce --list``) and
set for the whole chain in one place (``--set NAME=VALUE``: every notebook
that has that parameter gets the value). A complete full run records its
per-notebook times, the total and the machine in ``Saved_Models/reproduce_run.json``
and rewrites the result tables of the README and the trial log from the saved results (:func:`update_readme`).
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path

from skinlib import drop_startup_noise, repo_root
from skinlib.artefacts import (FINAL_METRICS_FILE, RESULTS_FILE, SMOKE_FOLDER, forget_stale, models_dir,
                               read_final_metrics, read_results, validated_model, write_atomic,
                               write_json_atomic)


class NotebookFailed(RuntimeError):
    """A notebook raised an error; the message names the notebook and the cell."""


class ParameterError(ValueError):
    """A parameter setting that is malformed or that no notebook to be run declares."""


def notebooks_in_order(root=None):
    """Return the numbered chapters in ``notebooks/`` and then the main notebook, if present."""
    root = Path(root or repo_root())
    chapters = sorted(p for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    main = root / "Project_Main_Notebook.ipynb"
    return chapters + ([main] if main.is_file() else [])


RUN_FILE = "reproduce_run.json"

PROFILES = ("default", "full")
"""The study's two profiles (a notebook parameter): ``default`` fits ``make reproduce`` on 2 cores, ``full`` trains
the seed repeats that measure the noise between runs."""


def by_profile(profile, values, setting=None, *, name="setting", minimum=0):
    """A whole-number setting: ``setting`` when given (not None), else its value for ``profile`` in ``values``.

    >>> by_profile("full", {"default": 1, "full": 3}), by_profile("full", {"default": 1, "full": 3}, 2)
    (3, 2)
    >>> by_profile("fast", {"default": 1, "full": 3})
    Traceback (most recent call last):
    ...
    ValueError: profile must be one of ['default', 'full']. Got 'fast' instead.
    >>> by_profile("default", {"default": 1, "full": 3}, 0, name="seeds", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: seeds must be a whole number of at least 1, or None to follow the profile. Got 0 instead.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILES)}. Got {profile!r} instead.")
    value = values[profile] if setting is None else setting
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, or None to follow the profile. "
                         f"Got {setting!r} instead.")
    return value


def parameters(root=None):
    """Every notebook's parameters in one table: notebook, name, default and the comment that explains it.

    Read from each notebook's cell tagged ``parameters`` (papermill's
    ``inspect_notebook``), in reading order.
    """
    import pandas as pd
    import papermill

    rows = []
    for notebook in notebooks_in_order(root):
        for name, spec in papermill.inspect_notebook(str(notebook)).items():
            rows.append({"notebook": notebook.stem, "name": name, "default": spec["default"], "help": spec["help"]})
    return pd.DataFrame(rows, columns=["notebook", "name", "default", "help"])


def parse_assignment(text):
    """``"NAME=VALUE"`` to ``(name, value)``: a number, True/False/None when it reads as one, else the text.

    >>> parse_assignment("epochs=4"), parse_assignment("heights=120,150")
    (('epochs', 4), ('heights', '120,150'))
    """
    import ast

    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise ParameterError(f"a parameter is set as NAME=VALUE (for example epochs=4). Got {text!r} instead.")
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        parsed = None
    scalar = parsed is None and value.strip() == "None" or isinstance(parsed, (bool, int, float, str))
    return name.strip(), parsed if scalar else value.strip()


def run_notebook(path, *, output=None, parameters=None, log_output=False):
    """Execute one notebook with papermill in its own folder and return the output path.

    Papermill writes cell by cell into a scratch copy under ``.papermill/running/``
    (``NAME.PID.ipynb``, PID the process id);
    only a notebook that ran to the end replaces ``output``, so a failure
    leaves the last good notebook in place. The cell of parameters that
    papermill injected into an earlier run (``--set``) is dropped first, so a
    run without them uses the notebook's defaults, not that run's values.

    Raises
    ------
    NotebookFailed
        When a cell raises; the message names the notebook, the cell number,
        the error and where the partly executed copy is.
    """
    import os

    import nbformat
    import papermill

    path = Path(path)
    output = Path(output or path)
    # The process id keeps two runs at once (the test suite's two workers) out of each other's scratch copy.
    scratch = repo_root() / ".papermill" / "running" / f"{output.stem}.{os.getpid()}{output.suffix}"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    source = nbformat.read(path, as_version=4)  # Without an earlier run's injected values, in cell or metadata:
    source.cells = [cell for cell in source.cells if "injected-parameters" not in cell.metadata.get("tags", [])]
    source.metadata.setdefault("papermill", {})["parameters"] = dict(parameters or {})
    nbformat.write(source, scratch)
    try:
        papermill.execute_notebook(
            str(scratch), str(scratch), parameters=parameters or {}, cwd=str(path.parent),
            progress_bar=False, log_output=log_output, kernel_name="python3",
        )
    except papermill.PapermillExecutionError as error:
        raise NotebookFailed(
            f"{path.name} failed in cell {error.exec_count} (index {error.cell_index}): "
            f"{error.ename}: {error.evalue}. The partly executed copy is {scratch}; {output.name} is unchanged."
        ) from None
    clean_notebook(scratch)
    output.parent.mkdir(parents=True, exist_ok=True)
    os.replace(scratch, output)
    return output


def clean_notebook(path):
    """Drop what papermill records that is noise in a committed notebook: paths, timestamps, per-cell timings.

    Also TensorFlow's start-up lines on stderr (:func:`drop_startup_noise`), which carry a timestamp and a
    process id and change on every run. The notebook keeps its parameters and the total run time.
    """
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    record = notebook.metadata.get("papermill", {})
    kept = ("parameters", "duration", "version")
    notebook.metadata["papermill"] = {key: record[key] for key in kept if key in record}
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["text"] = drop_startup_noise(output["text"])
                if not output["text"].strip():
                    continue
            outputs.append(output)
        cell.outputs = outputs
    nbformat.write(notebook, path)


def reproduce(*, smoke=False, root=None, only=None, settings=None, echo=print):
    """Run every notebook in order; return ``[(notebook, seconds), ...]``.

    Parameters
    ----------
    smoke : bool, default=False
        Run on a small subset (each notebook's ``smoke`` parameter) and write
        the executed notebooks to ``.papermill/smoke/`` instead of in place.
    root : str or Path, default=None
        The repository; default the one holding this package.
    only : sequence of str, default=None
        Run only the notebooks whose file name contains one of these strings.
    settings : dict, default=None
        Parameter values for the whole chain: each notebook gets those of
        its own parameters that are named here. A name that no notebook to
        be run has is an error (a typo would otherwise go unnoticed).
    echo : callable, default=print
        Where progress lines go.
    """
    root = Path(root or repo_root())
    settings = dict(settings or {})
    declared = declared_parameters(settings, root=root, only=only)
    notebooks = list(declared)
    timings, started = [], time.perf_counter()
    for number, notebook in enumerate(notebooks, 1):
        output = root / SMOKE_FOLDER / notebook.name if smoke else notebook
        values = {name: value for name, value in settings.items() if name in declared[notebook]}
        values |= {"smoke": True} if smoke else {}
        shown = ", ".join(f"{name}={value!r}" for name, value in values.items() if name != "smoke")
        echo(f"[{number}/{len(notebooks)}] {notebook.relative_to(root)} ...{f' ({shown})' if shown else ''}",
             flush=True)
        begin, wall = time.perf_counter(), time.time()
        run_notebook(notebook, output=output, parameters=values)
        if not smoke:  # Results of an earlier design or profile that this run no longer makes go.
            dropped = forget_stale(models_dir(root=root), notebook.stem, since=wall)
            if dropped:
                echo(f"    dropped stale results of {notebook.stem}: {', '.join(dropped)}", flush=True)
        timings.append((notebook.name, time.perf_counter() - begin))
        echo(f"[{number}/{len(notebooks)}] {notebook.name} done in {_minutes(timings[-1][1])}", flush=True)
    total = time.perf_counter() - started
    echo(f"All {len(notebooks)} notebook(s) ran in {_minutes(total)} on {os.cpu_count()} CPU cores "
         f"({platform.machine()}).", flush=True)
    if not smoke and not only:
        _record_run(root, timings, total, settings)
        changed = update_readme(root)
        echo(f"README.md and benchmarks/TRIALS.md: result blocks rewritten from the saved results "
             f"({', '.join(changed) or 'none changed'}).")
    return timings


def declared_parameters(settings, *, root=None, only=None):
    """The notebooks to run, each with the names of its parameters; checks ``settings`` before anything runs.

    Raises
    ------
    FileNotFoundError
        When no notebook is selected.
    ParameterError
        When a name in ``settings`` is a parameter of none of them.
    """
    root = Path(root or repo_root())
    notebooks = [p for p in notebooks_in_order(root) if not only or any(key in p.name for key in only)]
    if not notebooks:
        raise FileNotFoundError(f"No notebooks to run under {root / 'notebooks'}.")
    table = parameters(root)
    declared = {notebook: set(table.loc[table["notebook"] == notebook.stem, "name"]) for notebook in notebooks}
    unknown = sorted(set(settings) - set().union(*declared.values()))
    if unknown:
        raise ParameterError(f"no notebook to run has the parameter(s) {', '.join(unknown)}; "
                             f"`python -m skinlib reproduce --list` shows them all.")
    return declared


def _minutes(seconds):
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min ({seconds:.0f} s)"


def _record_run(root, timings, total, settings):
    """Write ``Saved_Models/reproduce_run.json``: what the last complete full run took, and where."""
    record = {"notebooks": {name: round(seconds, 1) for name, seconds in timings}, "total_seconds": round(total, 1),
              "settings": settings, "cpu_count": os.cpu_count(), "machine": platform.machine(),
              "processor": cpu_name(), "avx512": cpu_has_avx512(), "python": platform.python_version()}
    return write_json_atomic(models_dir(root=root) / RUN_FILE, record, end="\n")


def cpu_name():
    """The CPU's model name (Linux), else what the platform module knows; the benchmarks report it too."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_has_avx512():
    """Whether the CPU has AVX-512 (Linux; None where unknown): on 2 cores it about halved training time here."""
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def chapter_time(started, *, smoke):
    """The line that ends a chapter: how long it ran since ``started`` (a ``time.perf_counter()``), and where.

    >>> chapter_time(time.perf_counter(), smoke=True)  # doctest: +ELLIPSIS
    'this chapter ran in 0.0 min on ... CPU cores (...), smoke mode: True'
    """
    avx512 = {True: ", AVX-512", False: ", no AVX-512", None: ""}[cpu_has_avx512()]
    return (f"this chapter ran in {(time.perf_counter() - started) / 60:.1f} min on {os.cpu_count()} CPU cores "
            f"({cpu_name()}, {platform.machine()}{avx512}), smoke mode: {smoke}")


def chapter03_variants(root=None):
    """The validation scores of chapter 03's designs that were run once and not shipped, from ``benchmarks/results``.

    Reads every ``profile_*.json`` (a complete run of the study with other parameters, chapter 04's test scores
    included; its ``chapter03_validation`` rows) and every ``chapter03_*.json`` written by
    ``benchmarks/chapter03_variant.py`` (its ``runs``). Both name in ``settings`` the parameters that repeat the run
    with today's chapter.

    Returns
    -------
    DataFrame
        One row per run: ``variant`` (its settings), ``name``, ``accuracy``, ``balanced_accuracy``,
        ``macro_auc`` and ``file``; empty when none was recorded.
    """
    import pandas as pd

    folder = Path(root or repo_root()) / "benchmarks" / "results"
    rows = []
    for path in sorted(folder.glob("profile_*.json")) + sorted(folder.glob("chapter03_*.json")):
        record = json.loads(path.read_text())
        rows += [{"variant": ", ".join(record["settings"]), "name": name, **scores, "file": path.name}
                 for name, scores in record_runs(record).items()]
    columns = ["variant", "name", "accuracy", "balanced_accuracy", "macro_auc", "file"]
    return pd.DataFrame(rows).reindex(columns=columns)


def record_runs(record):
    """A chapter-03 record's runs, name to validation scores, in either layout; empty when it holds none.

    ``benchmarks/chapter03_variant.py`` writes ``runs`` (a dict); a complete run of the study recorded as
    ``profile_*.json`` keeps ``chapter03_validation`` (a list of rows with a ``name``).

    >>> record_runs({"chapter03_validation": [{"name": "a", "accuracy": 0.7}]})
    {'a': {'name': 'a', 'accuracy': 0.7}}
    >>> record_runs({"runs": {"a": {"accuracy": 0.7}}}), record_runs({"runs": [1, 2]})
    ({'a': {'accuracy': 0.7}}, {})
    """
    if isinstance(record.get("chapter03_validation"), list):
        return {row["name"]: row for row in record["chapter03_validation"]}
    return record["runs"] if isinstance(record.get("runs"), dict) else {}


def seed_runs(runs):
    """The runs of a ``benchmarks/chapter03_variant.py`` record that belong to one seed, and which.

    Parameters
    ----------
    runs : dict of str to dict
        A record's ``runs``: ``..._seed<n>`` (plain), ``..._seed<n>_tta`` (TTA) and others (the ensemble, skipped).

    Returns
    -------
    list of (seed, procedure, plain run name, scores)

    >>> seed_runs({"m_seed1": {"a": 1}, "m_seed1_tta": {"a": 2}, "03_ensemble": {"a": 3}})
    [(1, 'plain', 'm_seed1', {'a': 1}), (1, 'TTA', 'm_seed1', {'a': 2})]
    """
    found = []
    for name, scores in runs.items():
        if match := re.search(r"_seed(\d+)(_tta)?$", name):
            found.append((int(match.group(1)), "TTA" if match.group(2) else "plain",
                          name[: -len("_tta")] if match.group(2) else name, scores))
    return found


def ensemble_scores(runs):
    """The scores of the ensemble of a record's seeds with TTA (the mean of their TTA probabilities); None if absent.

    Chapter 03 names it ``<recipe>_ensemble_tta`` (beside ``<recipe>_ensemble``, one pass); records made before
    commit 0b69b40 name it ``03_ensemble``.

    >>> ensemble_scores({"m_seed0": {"a": 1}, "m_ensemble": {"a": 2}, "m_ensemble_tta": {"a": 3}})
    {'a': 3}
    >>> ensemble_scores({"03_ensemble": {"a": 4}}), ensemble_scores({"m_seed0": {"a": 1}})
    ({'a': 4}, None)
    """
    return next((scores for run, scores in runs.items() if run.endswith("_ensemble_tta") or run == "03_ensemble"),
                None)


def against_recorded_seeds(compared, records, *, seed=0, root=None, metrics=("balanced_accuracy", "accuracy")):
    """This run's scores beside recorded runs of several seeds of the same recipe: their same seed and their spread.

    Whether a run moved from a recorded one by more than a change of seed moves it: ``sds from mean`` says how many
    of a record's standard deviations over seeds this run lies from their mean. A record from another machine can
    differ by the machine as well, so each row names the record's machine.

    Parameters
    ----------
    compared : DataFrame
        Indexed by (run name, "plain" or "TTA"), with a column per metric, as chapter 03 builds it (unrounded). The
        run of ``seed`` is the one named ``..._seed<seed>``, or the only run when there is one.
    records : sequence of str
        ``benchmarks/chapter03_variant.py`` records in ``benchmarks/results``, each with at least two seeds (runs
        named ``..._seed<n>`` and ``..._seed<n>_tta``).
    seed : int
    root : str or Path, default=None
        The repository (default: this one).
    metrics : sequence of str

    Returns
    -------
    DataFrame
        Indexed by (record, metric, procedure); columns ``this run``, ``recorded seed <seed>``, ``recorded mean``,
        ``recorded sd``, ``recorded min``, ``recorded max``, ``sds from mean`` (NaN where the sd is 0) and
        ``machine`` (the record's processor, or "not recorded").

    Raises
    ------
    ValueError
        When ``compared`` has no run of ``seed``, or a record has fewer than two seeds of a procedure.

    Examples
    --------
    >>> import pandas as pd, tempfile
    >>> root = Path(tempfile.mkdtemp()); (root / "benchmarks" / "results").mkdir(parents=True)
    >>> runs = {f"m_seed{n}{suffix}": {"balanced_accuracy": 0.70 + n / 100}
    ...         for n in range(3) for suffix in ("", "_tta")}
    >>> _ = (root / "benchmarks" / "results" / "r.json").write_text(json.dumps({"runs": runs}))
    >>> compared = pd.DataFrame({"balanced_accuracy": [0.72, 0.73]}, index=pd.MultiIndex.from_tuples(
    ...     [("m", "plain"), ("m", "TTA")]))
    >>> table = against_recorded_seeds(compared, ["r.json"], root=root, metrics=("balanced_accuracy",))
    >>> rounded = table.round(3).loc[("r.json", "balanced_accuracy", "plain")]
    >>> rounded[["this run", "recorded seed 0", "sds from mean"]].astype(float).tolist(), rounded["machine"]
    ([0.72, 0.7, 1.0], 'not recorded')
    """
    import numpy as np
    import pandas as pd

    names = compared.index.get_level_values(0).unique()
    mine = next((name for name in names if name.endswith(f"_seed{seed}")), names[0] if len(names) == 1 else None)
    if mine is None:
        raise ValueError(f"no run of seed {seed} among {', '.join(names)}")
    rows = {}
    for record in records:
        content = json.loads((Path(root or repo_root()) / "benchmarks" / "results" / record).read_text())
        machine = content.get("machine", {}).get("processor", "not recorded")
        for metric in metrics:
            for procedure in ("plain", "TTA"):
                values = pd.Series({seed: scores[metric] for seed, kind, _, scores in seed_runs(content["runs"])
                                    if kind == procedure}, dtype=float)
                if len(values) < 2:
                    raise ValueError(f"{record} has {len(values)} seed(s) of the {procedure} procedure; a spread "
                                     "needs two or more")
                this, spread = float(compared.loc[(mine, procedure), metric]), values.std()
                rows[(record, metric, procedure)] = {
                    "this run": this, f"recorded seed {seed}": values.get(seed, np.nan),
                    "recorded mean": values.mean(), "recorded sd": spread, "recorded min": values.min(),
                    "recorded max": values.max(),
                    "sds from mean": (this - values.mean()) / spread if spread > 0 else np.nan, "machine": machine}
    table = pd.DataFrame(rows).T
    numbers = table.columns.drop("machine")
    return table.astype(dict.fromkeys(numbers, float))  # Rows of mixed types come out as objects, which round skips.


def recorded_shifts(name, root=None):
    """Balanced accuracy under each acquisition shift, per model, from a ``benchmarks/shifts_on_validation.py`` record.

    Returns
    -------
    DataFrame
        Indexed by shift; columns (model label, ``balanced_accuracy`` or ``balanced_accuracy_change``); empty when
        the record ``benchmarks/results/<name>`` does not exist.
    """
    import pandas as pd

    path = Path(root or repo_root()) / "benchmarks" / "results" / name
    if not path.is_file():
        return pd.DataFrame()
    scores = json.loads(path.read_text())["scores"]
    rows = {}
    for key, row in scores.items():
        label, shift = key.split(" | ", 1)
        for metric in ("balanced_accuracy", "balanced_accuracy_change"):
            rows.setdefault(shift, {})[(label, metric)] = row[metric]
    return pd.DataFrame(rows).T.rename_axis("shift")


README_BLOCKS = ("headline", "run_times", "chapter02", "chapter03", "trials", "final", "checker_speed",
                 "training_speed", "equal_time")
"""The generated blocks, each between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->``: in the README, but for
``trials``, in the trial log (:data:`GENERATED_DOCUMENTS`)."""


def readme_blocks(root=None):
    """The generated result tables as Markdown, from the files the notebooks wrote (never typed by hand).

    ``run_times`` from ``Saved_Models/reproduce_run.json``, ``chapter02`` and
    ``chapter03`` from ``results.csv``, ``final`` from ``final_metrics.json``;
    ``checker_speed`` from ``benchmarks/results/predict_<final model>.json`` (with a line for each other record
    of the same model there, another machine's) and
    ``training_speed`` from ``benchmarks/results/training_speed.json``, which the
    benchmark scripts write. A block whose file is missing is left out.
    """
    folder = models_dir(root=root)
    measured = Path(root or repo_root()) / "benchmarks" / "results"
    blocks = {}
    if (folder / RUN_FILE).is_file():
        run = json.loads((folder / RUN_FILE).read_text())
        rows = [f"| {Path(name).stem} | {_minutes(seconds)} |" for name, seconds in run["notebooks"].items()]
        settings = dict(run["settings"])
        profile = settings.pop("profile", PROFILES[0])
        cpu = f"{run['processor']}, {run['machine']}"
        cpu += _with_avx512(run.get("avx512"))  # Older records do not say.
        blocks["run_times"] = "\n".join([
            f"Last complete run of `make reproduce` (notebooks only; from `Saved_Models/{RUN_FILE}`), on "
            f"{run['cpu_count']} CPU cores ({cpu}), Python {run['python']}, profile `{profile}`"
            + (f", other settings {settings}" if settings else "") + ":", "",
            "| notebook | time |", "|---|---|", *rows, f"| **total** | **{_minutes(run['total_seconds'])}** |"])
    if (folder / RESULTS_FILE).is_file():
        results = read_results(folder)
        for key, notebook in (("chapter02", "02_CNN_Iterations"), ("chapter03", "03_Transfer_Learning")):
            table = results[results["notebook"] == notebook]
            if not table.empty:
                blocks[key] = _markdown_results(table, stage=key == "chapter03")
    if (folder / FINAL_METRICS_FILE).is_file():
        final = read_final_metrics(folder)
        blocks["headline"] = _markdown_headline(final)
        blocks["final"] = _markdown_final(final)
        checker = measured / f"predict_{final['model']}.json"
        others = []  # The same model's records from other machines (benchmarks/predict.py --out).
        for path in sorted(measured.glob("predict_*.json")):
            record = json.loads(path.read_text())
            if path != checker and record.get("model") == f"{final['model']}.keras":
                others.append((path.name, record))
        blocks["checker_speed"] = (
            _markdown_checker_speed(json.loads(checker.read_text()), others=others) if checker.is_file() else
            f"Not yet measured for the final model `{final['model']}`: run `python benchmarks/predict.py`, then "
            "`python -m skinlib reproduce --readme`.")
    if (measured / "training_speed.json").is_file():
        blocks["training_speed"] = _markdown_training_speed(json.loads((measured / "training_speed.json").read_text()))
    records = [json.loads(path.read_text()) for path in sorted(measured.glob("equal_time_*.json"))]
    if records:
        blocks["equal_time"] = _markdown_equal_time(records)
    trials = {}
    for path in sorted(measured.glob("*.json")):
        record = json.loads(path.read_text())
        if "settings" in record and record_runs(record):
            trials[path.name] = {**record, "runs": record_runs(record)}
    if trials:
        blocks["trials"] = _markdown_trials(trials)
    return blocks


def _markdown_trials(records):
    """One row per run of chapter 03 recorded by ``benchmarks/chapter03_variant.py``: its validation scores.

    Parameters
    ----------
    records : dict of str to dict
        File name to record (``settings``, ``runs``, and where known ``chapter_seconds``, ``machine``,
        ``commit`` or ``from_commit``).

    Examples
    --------
    >>> runs = {f"m_seed{n}{suffix}": {"balanced_accuracy": 0.70 + n / 100 + (0.01 if suffix else 0),
    ...                                 "malignant_auc": 0.88, "accuracy": 0.71}
    ...         for n in range(3) for suffix in ("", "_tta")}
    >>> runs["03_ensemble"] = {"balanced_accuracy": 0.73}
    >>> record = {"settings": ["cut=block2_add"], "runs": runs, "chapter_seconds": 1800.0,
    ...           "machine": {"processor": "AMD EPYC", "avx512": True}, "commit": "abc1234"}
    >>> print(_markdown_trials({"chapter03_block2.json": record}).splitlines()[-1])
    | `chapter03_block2.json` | cut=block2_add | 0-2 | 0.710 (0.010) | 0.720 | 0.730 | 0.880 | 0.710 | 30.0 | AMD EPYC, AVX-512; abc1234 |
    """
    import numpy as np

    lines = ["Every recorded run of chapter 03 with other parameters (`benchmarks/results/`, written by "
             "`benchmarks/chapter03_variant.py`, or read from the commit that ran it; the `command` in each "
             "file repeats it under today's defaults). "
             "Validation only; means over the seeds, standard deviation in brackets where there are several; "
             "plain is one pass, TTA the four flips, the ensemble the mean of the seeds' TTA probabilities:", "",
             "| record | settings | seeds | balanced accuracy, plain | TTA | ensemble | malignant AUC, plain | "
             "accuracy, plain | chapter min | machine; commit |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, record in records.items():
        found = seed_runs(record["runs"])
        if not found:  # One run without a seed in its name (a one-seed chapter).
            found = [(None, "TTA" if run.endswith("_tta") else "plain", run, scores)
                     for run, scores in record["runs"].items() if "ensemble" not in run]
        seeds = sorted({seed for seed, *_ in found if seed is not None})

        def mean(procedure, metric, *, spread=False):
            values = [scores[metric] for _, which, _, scores in found if which == procedure and metric in scores]
            if not values:
                return ""
            text = f"{np.mean(values):.3f}"
            return text + (f" ({np.std(values, ddof=1):.3f})" if spread and len(values) > 1 else "")

        ensemble = (ensemble_scores(record["runs"]) or {}).get("balanced_accuracy")
        machine = record.get("machine") or {}
        where = machine.get("processor", "not recorded")
        if machine.get("avx512") is not None:
            where += ", AVX-512" if machine["avx512"] else ", no AVX-512"
        if record.get("commit"):
            where += f"; {record['commit']}"
        elif record.get("from_commit"):
            where += f"; read from {record['from_commit']}"
        seconds = record.get("chapter_seconds")
        cells = [f"`{name}`", ", ".join(record["settings"]),
                 (f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1))
                  else ", ".join(map(str, seeds)) or "0"),
                 mean("plain", "balanced_accuracy", spread=True), mean("TTA", "balanced_accuracy"),
                 "" if ensemble is None else f"{ensemble:.3f}", mean("plain", "malignant_auc"),
                 mean("plain", "accuracy"), "" if seconds is None else f"{seconds / 60:.1f}", where]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _with_avx512(flag):
    """A record's AVX-512 flag in a table's machine words: ", with AVX-512", ", without AVX-512", or "" where unknown.

    >>> _with_avx512(False), _with_avx512(None)
    (', without AVX-512', '')
    """
    return {True: ", with AVX-512", False: ", without AVX-512"}.get(flag, "")


def _markdown_equal_time(records):
    """The equal-wall-time tables, one per input size: per record, the best validation score overall and within the
    shortest run's time of its table.

    >>> curve = [{"epoch": 1, "seconds": 60.0, "val_balanced_accuracy": 0.5}, {"epoch": 2, "seconds": 120.0,
    ...          "val_balanced_accuracy": 0.6}]
    >>> record = {"label": "a", "epochs": 2, "setup_seconds": 30.0, "curve": curve, "cpu": "CPU", "cpu_count": 2,
    ...           "input": "120x160", "seed": 0, "command": "python benchmarks/equal_time.py"}
    >>> print(_markdown_equal_time([record]).splitlines()[-1])
    | a | 0 | 2 | 0.5 | 2.0 | 0.600 (epoch 2, 2.0 min) | 0.600 |
    """
    groups = {}
    for record in records:
        groups.setdefault(record["input"], []).append(record)
    return "\n\n".join(_equal_time_table(group) for group in groups.values())


def _equal_time_table(records):
    """One table of :func:`_markdown_equal_time`: records of one input size."""
    budget = min(record["curve"][-1]["seconds"] for record in records)

    def best(curve):
        row = max(curve, key=lambda item: item["val_balanced_accuracy"])
        return f"{row['val_balanced_accuracy']:.3f} (epoch {row['epoch']}, {row['seconds'] / 60:.1f} min)"

    first = records[0]
    flags = {record.get("avx512") for record in records}  # Said only where every record of the table says it.
    cpu = first["cpu"] + _with_avx512(flags.pop() if len(flags) == 1 else None)
    lines = [f"Measured by `python benchmarks/equal_time.py` (one record per run, the command of each in "
             f"`benchmarks/results/equal_time_*.json`) on {first['cpu_count']} CPU cores ({cpu}), "
             f"EfficientNet-Lite0 at {first['input']}, validation balanced accuracy after "
             f"each epoch, the clock including the stored views and the head. The last column is the best epoch "
             f"that ended within {budget / 60:.1f} min, the shortest record's time:", "",
             "| method | seed | epochs | before the first epoch (min) | total (min) | best epoch | best within "
             f"{budget / 60:.1f} min |", "|---|---|---|---|---|---|---|"]
    for record in records:
        within = [row for row in record["curve"] if row["seconds"] <= budget]
        lines.append(f"| {record['label']} | {record['seed']} | {record['epochs']} | "
                     f"{record['setup_seconds'] / 60:.1f} | "
                     f"{record['curve'][-1]['seconds'] / 60:.1f} | {best(record['curve'])} | "
                     + (f"{max(row['val_balanced_accuracy'] for row in within):.3f} |" if within else "none |"))
    return "\n".join(lines)


def _markdown_checker_speed(result, *, others=()):
    machine, size = result["machine"], result["keras"]["input_size"]
    lines = [f"Measured by `{result['command']}` on {machine['cores']} CPU cores ({machine['cpu']}), with the final "
             f"model `{result['model']}` at {size[0]}x{size[1]} (results in "
             f"`benchmarks/results/predict_{Path(result['model']).stem}.json`):", "",
             "| backend | cold start (new process, one image; median of runs) | warm, per image (decode, resize, "
             "predict; median / p95) | folder |", "|---|---|---|---|"]
    for backend, label in (("lite", "LiteRT copy (`.tflite`, default for the CLI)"),
                           ("keras", "Keras (`--backend keras`; the app, for Grad-CAM)")):
        row = result[backend]
        lines.append(f"| {label} | {row['cold_start_seconds_median']:.2f} s "
                     f"({len(row['cold_start_seconds'])} runs) | {row['warm_ms_median']:.1f} ms / "
                     f"{row['warm_ms_p95']:.1f} ms ({row['warm_images']} images) | "
                     f"{row['folder_images_per_second']:.0f} images/s |")
    for name, other in others:
        other_machine = other["machine"]
        avx512 = _with_avx512(other_machine.get("avx512"))
        speeds = "; ".join(f"{label} {other[backend]['cold_start_seconds_median']:.2f} s cold, "
                           f"{other[backend]['warm_ms_median']:.1f} ms warm"
                           for backend, label in (("lite", "LiteRT"), ("keras", "Keras")))
        where = "" if name in other["command"] else f", in `benchmarks/results/{name}`"
        lines.append(f"\nThe same model, measured on {other_machine['cores']} CPU cores ({other_machine['cpu']}"
                     f"{avx512}; `{other['command']}`{where}): {speeds}.")
    return "\n".join(lines)


def _markdown_training_speed(result):
    """The README's training-speed block from ``benchmarks/results/training_speed.json``.

    Records from before the thread comparison timed ``train_top`` and took a
    digest of the trained weights give the thread settings' ``forward`` and
    ``train_full`` only.
    """
    machine, chosen = result["machine"], result["chosen_threads"]
    rates = [key for key in ("forward", "train_full", "lower_forward", "train_top") if key in chosen]
    threads = "; ".join(f"intra-op {row['intra_op']}, inter-op {row['inter_op']}: "
                        + ", ".join(f"{key} {row[key]:.0f}" for key in rates) for row in result["threads"])
    avx512 = _with_avx512(machine.get("avx512"))
    by = "train_top" if "train_top" in chosen else "train_full"
    lines = [f"Measured by `{result['command']}` on {machine['cores']} CPU cores ({machine['cpu']}{avx512}); "
             f"{result['unit']}. Thread settings first (EfficientNet-Lite0 at 150x200, each in a fresh process, "
             f"0 is TensorFlow's default): {threads}. The table used the setting with the highest {by}, intra-op "
             f"{chosen['intra_op']}, inter-op {chosen['inter_op']}."]
    if "digest" in chosen:
        groups = {}
        for row in result["threads"]:
            groups.setdefault(row["digest"], []).append(f"intra-op {row['intra_op']}, inter-op {row['inter_op']}")
        if len(groups) == 1:
            lines[0] += (" A short seeded run (the lower part's maps of random images, then train_top on them) ended "
                         "with the same weights, to the bit, under every setting: here the setting changed the speed, "
                         "not the results.")
        else:
            lines[0] += (" A short seeded run (the lower part's maps of random images, then train_top on them) ended "
                         "with the same weights, to the bit, only within each of these groups: "
                         + "; ".join(f"({' and '.join(group)})" for group in groups.values())
                         + " (one run per setting). A setting outside the first group may change the results, not only "
                         "the speed.")
    lines += ["", "| backbone | input | forward | train_full (end to end) | lower_forward (store one view) | "
              "train_top (upper part on stored maps) | cut (end of the lower part) | stored map | "
              "train_top / train_full |", "|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['backbone']} | {row['size']} | {row['forward']:.0f} | {row['train_full']:.0f} | "
                     f"{row['lower_forward']:.0f} | {row['train_top']:.0f} | `{row['cut']}` | {row['stored_shape']} | "
                     f"{row['train_top'] / row['train_full']:.1f}x |")
    return "\n".join(lines)


def _number(value, digits=3):
    if _blank(value):
        return ""
    return f"{value:,.0f}" if digits == 0 else f"{value:.{digits}f}"


def _markdown_results(table, *, stage):
    columns = ["name"] + (["stage", "input size"] if stage else []) + [
        "trainable params" if stage else "params", "epochs run", "train s", "accuracy", "balanced accuracy",
        "macro AUC", "malignant recall"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in table.iterrows():
        params = row.get("trainable_params") if stage and not _blank(row.get("trainable_params")) else row["params"]
        cells = [row["name"]] + ([_text(row.get("stage")), _text(row.get("input_size"))] if stage else []) + [
            _number(params, 0), _number(row["epochs_run"], 0), _number(row["train_seconds"], 1),
            _number(row["accuracy"]), _number(row["balanced_accuracy"]), _number(row["macro_auc"]),
            _number(row["malignant_recall"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _blank(value):
    import pandas as pd

    return value is None or (not isinstance(value, str) and pd.isna(value))


def _text(value):
    return "" if _blank(value) else str(value)


def _shortfall(test):
    """How far each missed goal is, and whether its 95% interval reaches it ('' when every goal is met).

    >>> test = {"balanced_accuracy": {"estimate": 0.718, "low": 0.656, "high": 0.786},
    ...         "accuracy": {"estimate": 0.734, "low": 0.706, "high": 0.762},
    ...         "malignant_auc": {"estimate": 0.904, "low": 0.883, "high": 0.925}}
    >>> print(_shortfall(test))
     (short of the goals: balanced accuracy by 0.032, accuracy by 0.116 and malignant AUC by 0.046; the interval of
    balanced accuracy reaches its goal, so this test split does not rule out that it is met; those of accuracy and
    malignant AUC lie wholly below theirs)
    """
    from skinlib.metrics import GOAL_NAMES as names
    from skinlib.metrics import GOALS, and_list

    missed = [key for key, goal in GOALS.items() if test[key]["estimate"] < goal]
    if not missed:
        return ""
    short = and_list([f"{names[key]} by {GOALS[key] - test[key]['estimate']:.3f}" for key in missed])
    reach = [names[key] for key in missed if test[key]["high"] >= GOALS[key]]
    below = [names[key] for key in missed if test[key]["high"] < GOALS[key]]
    if not reach:
        where = ("every such interval lies wholly below its goal" if len(below) > 1 else
                 "its interval lies wholly below the goal")
    else:
        many = len(reach) > 1
        where = (f"the interval{'s' if many else ''} of {and_list(reach)} reach{'' if many else 'es'} "
                 f"{'their goals' if many else 'its goal'}, so this test split does not rule out that "
                 f"{'they are' if many else 'it is'} met")
        if below:
            where += (f"; {'those' if len(below) > 1 else 'that'} of {and_list(below)} "
                      f"lie{'' if len(below) > 1 else 's'} wholly below {'theirs' if len(below) > 1 else 'its goal'}")
    return f" (short of the goals: {short}; {where})"


def _markdown_headline(final):
    """A paragraph for the top of the README: the final model's test scores beside the goals, and on the excised
    images.

    >>> score = {"estimate": 0.7, "low": 0.65, "high": 0.75}
    >>> final = {"procedure": "m", "model": "m", "test_images": 1503, "finals": {"m": {
    ...     "balanced_accuracy": score, "accuracy": score, "malignant_auc": score}},
    ...     "per_class": {"mel": {"recall": 0.58, "recall_low": 0.48, "recall_high": 0.68}}}
    >>> print(_markdown_headline(final))  # doctest: +ELLIPSIS
    **Where it stands.** The final model (`m`), scored once on the 1,503 images of the test split: balanced ...
    """
    from skinlib.metrics import GOAL_NAMES as names
    from skinlib.metrics import GOALS, and_list

    test = final["finals"][final["procedure"]]
    scores = ", ".join(f"{label} **{_number(test[key]['estimate'])}** ({_number(test[key]['low'])}-"
                       f"{_number(test[key]['high'])})" for key, label in names.items())
    mel = final["per_class"]["mel"]
    missed = [names[key] for key, goal in GOALS.items() if test[key]["estimate"] < goal]
    goals = ", ".join(f"{names[key]} {goal}" for key, goal in GOALS.items())
    verdict = ("none of them is met yet" if len(missed) == len(GOALS) else
               f"{and_list(missed)} not met yet" if missed else "all three are met")
    verdict += _shortfall(test)
    procedure = "" if final["procedure"] == final["model"] else f", as `{final['procedure']}`"
    validated = validated_model(final)
    if validated != final["model"]:
        procedure += f", the refit of `{validated}` on the training and validation images"
    return (f"**Where it stands.** The final model (`{final['model']}`{procedure}), scored once on the "
            f"{final['test_images']:,} images of the test split: {scores}, melanoma recall "
            f"{_number(mel['recall'], 2)} ({_number(mel['recall_low'], 2)}-{_number(mel['recall_high'], 2)}); "
            f"95% intervals from a bootstrap over lesions. The project's goals are {goals}: {verdict}."
            f"{_excised_line(final)} The model is not a diagnosis, and it has been scored on HAM10000 images only.")


def _excised_line(final):
    """' On the N test images confirmed by histopathology ...', from ``final_metrics.json``'s ``confirmation``
    ('' in a record without it)."""
    from skinlib.metrics import EXCISED, confirmation_record

    if "confirmation" not in final:
        return ""
    recalls, excised = confirmation_record(final["confirmation"])
    images = recalls.xs(EXCISED, level="confirmation")["images"].sum()
    keys = {"balanced_accuracy": "balanced accuracy", "malignant_auc": "malignant AUC"}
    scores = " and ".join(f"{label} {_number(excised.loc[key, 'estimate'])} ({_number(excised.loc[key, 'low'])}-"
                          f"{_number(excised.loc[key, 'high'])})" for key, label in keys.items())
    test = final["finals"][final["procedure"]]
    lower = all(excised.loc[key, "estimate"] < test[key]["estimate"] for key in keys)
    return (f" On the {images:,.0f} test images confirmed by histopathology the scores are "
            f"{'lower' if lower else 'these'}: {scores}.")


def _markdown_final(final):
    test = final["finals"][final["procedure"]]
    screen, calibration = final["screening"], final["calibration"]
    names = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_auc": "macro AUC (one-vs-rest)",
             "malignant_auc": "malignant AUC (akiec, bcc, mel against the rest)"}
    lines = [f"Final: `{final['procedure']}` (model `{final['model']}`, input {final['input_size'][0]}x"
             f"{final['input_size'][1]}); {final['test_images']:,} test images of {final['test_lesions']:,} lesions; "
             f"95% intervals from {final['bootstrap_resamples']:,} bootstrap resamples of lesions.", "",
             "| metric | test | 95% CI | validation |", "|---|---|---|---|"]
    validated = validated_model(final)
    if validated != final["model"]:
        lines[0] += (f" The final model is a refit: the recipe of `{validated}` trained again on the training and "
                     f"validation images, so it has no validation score of its own; the validation column, the "
                     f"threshold and the temperature are `{validated}`'s.")
    for key, label in ((key, label) for key, label in names.items() if key in test):
        value = test[key]
        lines.append(f"| {label} | {_number(value['estimate'])} | {_number(value['low'])}-{_number(value['high'])} "
                     f"| {_number(value['validation'])} |")
    for key, label in (("sensitivity", "malignant sensitivity"), ("sensitivity_mel", "share of melanomas flagged"),
                       ("specificity", "benign specificity")):
        if key not in screen["test"]:
            continue
        interval = screen.get("test_interval", {}).get(key)
        shown = f"{_number(interval['low'])}-{_number(interval['high'])}" if interval else ""
        lines.append(f"| {label} at the validation threshold for {screen['target_validation_sensitivity']:.0%}"
                     f" ({_number(screen['threshold'])}) | {_number(screen['test'][key])} | {shown} "
                     f"| {_number(screen['validation'].get(key))} |")
    ece = calibration["ece"]
    lines.append(f"| expected calibration error (raw; after T = {calibration['temperature']:.2f} fitted on validation) "
                 f"| {_number(ece['test']['raw'])}; {_number(ece['test']['scaled'])} | "
                 f"| {_number(ece['val']['raw'])}; {_number(ece['val']['scaled'])} |")
    per_class = ", ".join(f"{name} {_number(row['recall'], 2)} / {_number(row['precision'], 2)} ({row['support']:.0f})"
                          for name, row in final["per_class"].items())
    lines += ["", f"Per class, test recall / precision (images): {per_class}."]
    if final.get("tta_comparison"):
        from skinlib.final import describe_tta

        lines.append(describe_tta(final["tta_comparison"]))
    cams = final.get("explanations", {}).get("all/all")
    if cams:
        lines.append(f"Grad-CAM of {cams['images']:.0f} test images against the lesion masks: {cams['inside']:.0%} of "
                     f"the heat on the lesion (a uniform map: {cams['inside_uniform']:.0%}), hottest pixel on the "
                     f"lesion {cams['pointing_game']:.0%} of the time, {cams['frame']:.0%} in the outer frame "
                     f"(uniform: {cams['frame_uniform']:.0%})"
                     + (f"; a centred Gaussian, which knows only that lesions are photographed in the middle, puts "
                        f"{cams['inside_centre']:.0%} on the lesion and its centre pixel is on it "
                        f"{cams['pointing_centre']:.0%} of the time." if "inside_centre" in cams else "."))
    if final.get("confirmation"):
        from skinlib import metrics

        lines.append(metrics.describe_confirmation_record(final["confirmation"], test))
    tradeoff = final.get("decision_tradeoff_validation")
    if tradeoff:
        from skinlib import metrics

        table = metrics.tradeoff_table(tradeoff)
        lines.append("Decisions re-weighted by the class shares (each class probability times its share of the "
                     "training split to a power), on the validation split: "
                     + metrics.describe_tradeoff(table, metrics.GOALS))
    return "\n".join(lines)


GENERATED_DOCUMENTS = ("README.md", "benchmarks/TRIALS.md")
"""The documents that hold generated blocks (:data:`README_BLOCKS`), each block in one of them: the README, and the
trial log for the table of every recorded trial."""


def update_readme(root=None):
    """Rewrite the generated blocks of the README and the trial log (:data:`GENERATED_DOCUMENTS`) from the saved
    results; return the names of the blocks that changed."""
    import re

    root = Path(root or repo_root())
    blocks, changed = None, set()
    for relative in GENERATED_DOCUMENTS:
        path = root / relative
        if not path.is_file():
            continue
        blocks = readme_blocks(root) if blocks is None else blocks
        text = original = path.read_text()
        for name, block in blocks.items():
            pattern = re.compile(rf"<!-- begin:{name} -->\n.*?<!-- end:{name} -->", re.DOTALL)
            text = pattern.sub(lambda match: f"<!-- begin:{name} -->\n{block}\n<!-- end:{name} -->", text)
        if text != original:
            write_atomic(path, lambda handle: handle.write(text.encode()))
        changed |= {name for name in README_BLOCKS if readme_block(text, name) != readme_block(original, name)}
    return [name for name in README_BLOCKS if name in changed]


def readme_block(text, name):
    r"""The text of the README's generated block ``name`` (between its markers), or None when it has none.

    >>> readme_block("a\n<!-- begin:final -->\nnumbers\n<!-- end:final -->\n", "final")
    'numbers\n'
    """
    import re

    found = re.search(rf"<!-- begin:{name} -->\n(.*?)<!-- end:{name} -->", text, re.DOTALL)
    return found.group(1) if found else None


def recorded_data_curve(full="trial_150x200_power1_xeon.json", *, epochs=10, root=None, defaults=None):
    """Chapter 03's validation scores against the number of training images, from ``benchmarks/results``.

    Reads every ``data_share_*.json`` (``benchmarks/chapter03_variant.py --set train_share=...``: the same recipe
    on a share of the training lesions) and ``full``, a record of the same recipe on every training image. A share
    trained for ``epochs`` epochs (the chapter's default) belongs to the recipe "10 epochs"; one trained for
    ``epochs / share`` epochs, as many steps as the full split gets, to "equal steps". The full split's runs belong
    to every recipe recorded, so each recipe is a whole curve.

    A share must have run the full record's settings but for ``train_share``, ``epochs``, ``patience`` and
    ``seed`` (another ``seed`` redraws the share's lesions, the jitter and the training seeds: the same recipe on
    another draw); a setting spelled out at its default (``defaults``: chapter 03's parameters by default) counts
    as left out, so ``height=150`` and no ``height`` are the same recipe. Anything else raises a ValueError that
    names the file. The check sees the settings only: a record made when a default was different reads as the same
    recipe.

    Returns
    -------
    DataFrame
        One row per recipe, run and procedure: ``recipe``, ``share``, ``train_images``, ``epochs``, ``seed``,
        ``procedure`` ("plain" or "TTA"), ``accuracy``, ``balanced_accuracy``, ``malignant_auc``, ``file``; empty
        when no share was recorded.
    """
    import pandas as pd
    import papermill

    from skinlib import split

    folder = Path(root or repo_root()) / "benchmarks" / "results"
    paths = sorted(folder.glob("data_share_*.json"))
    if not paths:
        return pd.DataFrame()
    every = int((split.load_manifest()["split"] == "train").sum())
    records = [(path, json.loads(path.read_text())) for path in [*paths, folder / full]]
    settings = {path: dict(map(parse_assignment, record["settings"])) for path, record in records}  # Parsed once.
    if defaults is None:
        notebook = repo_root() / "notebooks" / "03_Transfer_Learning.ipynb"
        defaults = dict(parse_assignment(f"{name}={spec['default']}")
                        for name, spec in papermill.inspect_notebook(str(notebook)).items())
    varied = ("train_share", "epochs", "patience", "seed")
    ran = {path: {name: value for name, value in settings[path].items()  # The recipe, defaults left out.
                  if name not in varied and (name not in defaults or defaults[name] != value)} for path in settings}
    expected = ran[folder / full]
    for path in paths:
        if ran[path] != expected:
            raise ValueError(f"{path.name} ran other settings than {full}: {sorted(ran[path].items())} "
                             f"against {sorted(expected.items())} (train_share, epochs, patience and seed aside).")
    rows, found = [], []  # found: the recipes of the shares, in the order of their files.
    for path, record in records:
        share, trained = float(settings[path].get("train_share", 1.0)), int(settings[path].get("epochs", epochs))
        if share == 1:
            recipes = found
        else:
            recipes = [f"{epochs} epochs" if trained == epochs else
                       "equal steps" if abs(trained * share - epochs) < 1e-6 else f"{trained} epochs"]
            found += [recipe for recipe in recipes if recipe not in found]
        for seed, procedure, plain, scores in seed_runs(record["runs"]):
            images = record.get("train_images", {}).get(plain, every if share == 1 else None)
            if images is None:
                raise ValueError(f"{path.name} does not record the training images of {plain}.")
            rows += [{"recipe": recipe, "share": share, "train_images": images, "epochs": trained,
                      "seed": seed, "procedure": procedure,
                      **{key: scores[key] for key in ("accuracy", "balanced_accuracy", "malignant_auc")},
                      "file": path.name} for recipe in recipes]
    order = ["recipe", "train_images", "procedure", "seed"]
    return pd.DataFrame(rows).sort_values(order, ignore_index=True)

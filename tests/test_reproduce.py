"""skinlib.reproduce: papermill runs, parameters, clean metadata, and failures that keep the last good notebook."""

import json
import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from skinlib import metrics, reproduce


def write_notebook(path, *sources):
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("smoke = False  # quick mode")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters] + [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def test_a_notebook_runs_with_parameters_and_clean_metadata(tmp_path):
    path = write_notebook(tmp_path / "01_ok.ipynb", "print('smoke is', smoke)")
    reproduce.run_notebook(path, parameters={"smoke": True})
    notebook = json.loads(path.read_text())
    outputs = [o for cell in notebook["cells"] for o in cell.get("outputs", [])]
    assert any("smoke is True" in "".join(o.get("text", "")) for o in outputs)
    assert set(notebook["metadata"]["papermill"]) <= {"parameters", "duration", "version"}
    assert str(tmp_path) not in path.read_text()  # No machine paths left by papermill.
    assert all("papermill" not in cell["metadata"] for cell in notebook["cells"])


def test_a_run_without_parameters_forgets_those_of_the_run_before(tmp_path):
    # Papermill leaves its injected cell in the executed notebook; run again without parameters, it would keep them.
    path = write_notebook(tmp_path / "01_ok.ipynb", "print('smoke is', smoke)")
    reproduce.run_notebook(path, parameters={"smoke": True})
    reproduce.run_notebook(path)
    notebook = json.loads(path.read_text())
    assert not any("injected-parameters" in cell["metadata"].get("tags", []) for cell in notebook["cells"])
    assert notebook["metadata"]["papermill"]["parameters"] == {}  # The record says so too.
    assert "input_path" not in json.dumps(notebook["metadata"])
    assert "smoke is False" in "".join("".join(o.get("text", "")) for cell in notebook["cells"]
                                       for o in cell.get("outputs", []))


def test_a_failing_notebook_names_the_cell_and_keeps_the_last_good_file(tmp_path):
    path = write_notebook(tmp_path / "02_bad.ipynb", "x = 1", "raise ValueError('broken on purpose')")
    before = path.read_text()
    with pytest.raises(reproduce.NotebookFailed, match=r"02_bad.ipynb failed in cell .*ValueError: broken on purpose"):
        reproduce.run_notebook(path)
    assert path.read_text() == before
    # The partly run copy is named for this process, so that two runs at once (two test workers) never share one.
    scratch = reproduce.repo_root() / ".papermill" / "running" / f"02_bad.{os.getpid()}.ipynb"
    assert "broken on purpose" in scratch.read_text()
    scratch.unlink()


def test_notebooks_run_in_reading_order(tmp_path):
    (tmp_path / "notebooks").mkdir()
    for name in ["02_b.ipynb", "01_a.ipynb", "notes.ipynb"]:
        write_notebook(tmp_path / "notebooks" / name, "pass")
    write_notebook(tmp_path / "Project_Main_Notebook.ipynb", "pass")
    names = [p.name for p in reproduce.notebooks_in_order(tmp_path)]
    assert names == ["01_a.ipynb", "02_b.ipynb", "Project_Main_Notebook.ipynb"]


def test_parameters_are_listed_and_set_in_one_place(tmp_path):
    (tmp_path / "notebooks").mkdir()
    first = write_notebook(tmp_path / "notebooks" / "01_a.ipynb", "print('smoke', smoke)")
    second = write_notebook(tmp_path / "notebooks" / "02_b.ipynb", "print('epochs', epochs)")
    notebook = nbformat.read(second, as_version=4)
    notebook.cells[0].source = "smoke = False  # quick mode\nepochs = 8  # most epochs"
    nbformat.write(notebook, second)
    table = reproduce.parameters(tmp_path)
    assert table[["notebook", "name", "default"]].values.tolist() == [
        ["01_a", "smoke", "False"], ["02_b", "smoke", "False"], ["02_b", "epochs", "8"]]
    assert table["help"].tolist()[-1] == "most epochs"
    lines = []
    reproduce.reproduce(root=tmp_path, settings={"epochs": 2}, echo=lambda *a, **k: lines.append(a[0]))
    text = lambda path: "".join("".join(o.get("text", "")) for c in json.loads(path.read_text())["cells"]
                                for o in c.get("outputs", []))
    assert "epochs 2" in text(second) and "smoke False" in text(first)  # Only the notebook that declares it.
    assert any("02_b.ipynb ... (epochs=2)" in line for line in lines)
    record = json.loads((tmp_path / "Saved_Models" / reproduce.RUN_FILE).read_text())
    assert set(record["notebooks"]) == {"01_a.ipynb", "02_b.ipynb"} and record["settings"] == {"epochs": 2}
    assert record["total_seconds"] >= sum(record["notebooks"].values()) - 1
    assert record["avx512"] == reproduce.cpu_has_avx512()  # Training time on 2 cores depends on it.
    header = reproduce.readme_blocks(tmp_path)["run_times"].splitlines()[0]
    assert {True: "with AVX-512", False: "without AVX-512", None: "Python"}[record["avx512"]] in header
    assert header.endswith("profile `default`, other settings {'epochs': 2}:")  # No --set profile: the default.
    with pytest.raises(reproduce.ParameterError, match="no notebook to run has the parameter.*epoch"):
        reproduce.reproduce(root=tmp_path, settings={"epoch": 2}, echo=lambda *a, **k: None)


def test_assignments_parse_to_python_values():
    assert reproduce.parse_assignment("lime_samples=50") == ("lime_samples", 50)
    assert reproduce.parse_assignment("smoke=True") == ("smoke", True)
    assert reproduce.parse_assignment("heights=120,150") == ("heights", "120,150")  # Not a tuple.
    assert reproduce.parse_assignment("model=None") == ("model", None)
    assert reproduce.parse_assignment("heights='120,150'") == ("heights", "120,150")
    with pytest.raises(reproduce.ParameterError, match="NAME=VALUE"):
        reproduce.parse_assignment("epochs")


def test_readme_result_tables_are_those_of_the_saved_results():
    # The README's numbers are written by `python -m skinlib reproduce` from Saved_Models/, never by hand.
    from skinlib import repo_root

    texts = {name: (repo_root() / name).read_text() for name in reproduce.GENERATED_DOCUMENTS}
    blocks = reproduce.readme_blocks()
    assert set(blocks) == set(reproduce.README_BLOCKS)
    for name, block in blocks.items():
        holders = [document for document, text in texts.items() if reproduce.readme_block(text, name) is not None]
        assert len(holders) == 1, f"block {name} is in {holders}: it belongs in one document"
        stale = f"block {name} of {holders[0]} is stale: run reproduce --readme"
        assert reproduce.readme_block(texts[holders[0]], name) == block + "\n", stale
    assert reproduce.readme_block(texts["benchmarks/TRIALS.md"], "trials") is not None  # The trial log holds it.


def test_readme_final_block_says_what_tta_did_when_the_results_record_it():
    from skinlib import artefacts, final, repo_root

    record = artefacts.read_final_metrics(repo_root() / "Saved_Models")
    comparison = record.pop("tta_comparison")
    assert final.describe_tta(comparison) not in reproduce._markdown_final(record)  # An older file: left out.
    assert final.describe_tta(comparison) in reproduce._markdown_final({**record, "tta_comparison": comparison})


def test_a_run_is_set_beside_the_recorded_seeds_of_its_recipe():
    # chapter03_profile_full.json: seeds 0-2 of the recipe, plain and with TTA, machine not recorded.
    record = json.loads((reproduce.repo_root() / "benchmarks" / "results" / "chapter03_profile_full.json").read_text())
    seed1 = record["runs"]["03_efficientnet_lite0_views_seed1_tta"]["balanced_accuracy"]
    index = pd.MultiIndex.from_tuples([(f"m_seed{n}", p) for n in (0, 1) for p in ("plain", "TTA")])
    compared = pd.DataFrame({"balanced_accuracy": [0.5, 0.6, 0.7, seed1], "accuracy": [0.7] * 4}, index=index)
    records = ["chapter03_profile_full.json", "chapter03_120x160_full_xeon.json"]
    table = reproduce.against_recorded_seeds(compared, records, seed=1)
    assert list(table.index)[:2] == [(records[0], "balanced_accuracy", procedure) for procedure in ("plain", "TTA")]
    row = table.loc[(records[0], "balanced_accuracy", "TTA")]
    assert row["this run"] == row["recorded seed 1"] == seed1  # The run named _seed1, against the recorded seed 1.
    assert row["recorded min"] <= row["recorded mean"] <= row["recorded max"] and row["recorded sd"] > 0
    assert row["sds from mean"] == pytest.approx((seed1 - row["recorded mean"]) / row["recorded sd"])
    machines = table["machine"].groupby(level=0).unique()
    assert list(machines[records[0]]) == ["not recorded"] and "Xeon" in machines[records[1]][0]
    with pytest.raises(ValueError, match="no run of seed 2"):
        reproduce.against_recorded_seeds(compared, records, seed=2)
    with pytest.raises(ValueError, match="chapter03_lite2.json has 0 seed"):  # One run, no seeds: no spread.
        reproduce.against_recorded_seeds(compared, ["chapter03_lite2.json"], seed=1)


def test_training_speed_block_says_which_thread_settings_change_the_results():
    machine = {"cpu": "Some CPU", "cores": 2, "avx512": False}
    row = {"backbone": "efficientnet_lite0", "size": "150x200", "forward": 98.2, "train_full": 31.3,
           "lower_forward": 163.0, "train_top": 61.4, "cut": "block4_add", "stored_shape": "19x25x40"}
    settings = [(0, 0, 61.4, "a"), (2, 1, 51.5, "a"), (1, 2, 56.0, "b")]
    threads = [{"intra_op": intra, "inter_op": inter, "forward": 90.0, "train_full": 30.0, "lower_forward": 150.0,
                "train_top": rate, "digest": digest} for intra, inter, rate, digest in settings]
    record = {"machine": machine, "threads": threads, "chosen_threads": threads[0], "rows": [row],
              "unit": "images per second", "command": "python benchmarks/training_speed.py"}
    text = reproduce._markdown_training_speed(record)
    assert "(Some CPU, without AVX-512)" in text and "the highest train_top, intra-op 0, inter-op 0" in text
    assert "intra-op 2, inter-op 1: forward 90, train_full 30, lower_forward 150, train_top 52" in text
    assert "only within each of these groups: (intra-op 0, inter-op 0 and intra-op 2, inter-op 1); " \
           "(intra-op 1, inter-op 2)" in text
    assert "| efficientnet_lite0 | 150x200 | 98 | 31 | 163 | 61 | `block4_add` | 19x25x40 | 2.0x |" in text
    same = reproduce._markdown_training_speed({**record, "threads": [{**t, "digest": "a"} for t in threads]})
    assert "under every setting: here the setting changed the speed, not the results" in same
    # An older record: thread settings timed for forward and train_full only, no digest, no AVX-512 flag.
    old = [{"intra_op": 0, "inter_op": 0, "forward": 118.5, "train_full": 33.3}]
    text = reproduce._markdown_training_speed({**record, "machine": {"cpu": "Old CPU", "cores": 2}, "threads": old,
                                               "chosen_threads": old[0]})
    assert "(Old CPU);" in text and "intra-op 0, inter-op 0: forward 118, train_full 33." in text
    assert "the highest train_full" in text and "weights" not in text


def test_readme_blocks_are_rewritten_in_place(tmp_path):
    folder = tmp_path / "Saved_Models"
    folder.mkdir()
    (folder / "results.csv").write_text(
        "name,notebook,params,epochs_run,train_seconds,accuracy,balanced_accuracy,macro_auc,malignant_recall\n"
        "02_mlp,02_CNN_Iterations,786951,6,12.04,0.6561,0.2164,0.81,0.78\n")
    (tmp_path / "README.md").write_text("intro\n<!-- begin:chapter02 -->\nold\n<!-- end:chapter02 -->\nend\n")
    assert reproduce.update_readme(tmp_path) == ["chapter02"]
    text = (tmp_path / "README.md").read_text()
    assert "| 02_mlp | 786,951 | 6 | 12.0 | 0.656 | 0.216 | 0.810 | 0.780 |" in text and "old" not in text
    assert text.startswith("intro\n") and text.endswith("<!-- end:chapter02 -->\nend\n")
    assert reproduce.update_readme(tmp_path) == []  # Nothing left to change.
    (tmp_path / "benchmarks").mkdir()  # A block in the trial log is rewritten there.
    (tmp_path / "benchmarks" / "TRIALS.md").write_text("log\n<!-- begin:chapter02 -->\nold\n<!-- end:chapter02 -->\n")
    assert reproduce.update_readme(tmp_path) == ["chapter02"]
    assert "| 02_mlp | 786,951 |" in (tmp_path / "benchmarks" / "TRIALS.md").read_text()


def test_every_parameter_line_of_the_notebooks_is_understood():
    """papermill skips a line it cannot parse (a comment with "=" or parentheses can do it): the parameter then
    cannot be set from the command line, silently. Every assignment in a parameters cell must come back."""
    import ast

    table = reproduce.parameters()
    for notebook in reproduce.notebooks_in_order():
        cell = next(c for c in nbformat.read(notebook, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
        assigned = [node.targets[0].id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)]
        found = table.loc[table["notebook"] == notebook.stem, "name"].tolist()
        assert found == assigned, f"{notebook.name}: papermill reads {found}, the cell assigns {assigned}"


def test_committed_notebooks_keep_no_injected_parameters():
    """A notebook committed from a run with --set (chapter 03's full profile) keeps papermill's record of the values
    in its metadata, but not the injected cell: opened and run as it stands, every notebook runs its defaults (and
    nbval tests the default path in smoke mode)."""
    for notebook in reproduce.notebooks_in_order():
        cells = nbformat.read(notebook, as_version=4).cells
        injected = [i for i, cell in enumerate(cells) if "injected-parameters" in cell.metadata.get("tags", [])]
        assert not injected, f"{notebook.name}: papermill's injected-parameters cell at {injected}; remove it"


def test_chapter03_variants_read_both_record_formats(tmp_path):
    folder = tmp_path / "benchmarks" / "results"
    folder.mkdir(parents=True)
    (folder / "profile_larger.json").write_text(json.dumps({"settings": ["height=150"], "chapter03_validation": [
        {"name": "03_a", "accuracy": 0.7, "balanced_accuracy": 0.6, "macro_auc": 0.9, "epochs_run": 3}]}))
    (folder / "chapter03_lite2.json").write_text(json.dumps({"settings": ["backbone=efficientnet_lite2"], "runs": {
        "03_b": {"accuracy": 0.6, "balanced_accuracy": 0.5, "macro_auc": 0.8}}}))
    table = reproduce.chapter03_variants(tmp_path)
    assert table[["variant", "name", "balanced_accuracy", "file"]].values.tolist() == [
        ["height=150", "03_a", 0.6, "profile_larger.json"],
        ["backbone=efficientnet_lite2", "03_b", 0.5, "chapter03_lite2.json"]]
    assert reproduce.chapter03_variants(tmp_path / "nowhere").empty


def test_recorded_data_curve_reads_shares_and_the_full_record(tmp_path):
    folder = tmp_path / "benchmarks" / "results"
    folder.mkdir(parents=True)
    scores = lambda ba: {"accuracy": 0.7, "balanced_accuracy": ba, "malignant_auc": 0.9, "macro_auc": 0.9}  # noqa: E731
    images = {"03_x_seed0": 3500, "03_x_seed1": 3500}
    (folder / "data_share_0.5.json").write_text(json.dumps({
        "settings": ["train_share=0.5", "profile=full"], "train_images": images,
        "runs": {"03_x_seed0": scores(0.60), "03_x_seed0_tta": scores(0.62), "03_x_seed1": scores(0.64),
                 "03_x_seed1_tta": scores(0.66), "03_ensemble": scores(0.7)}}))
    (folder / "data_share_0.5_steps.json").write_text(json.dumps({
        "settings": ["train_share=0.5", "epochs=20", "patience=20", "profile=full", "seed=1"], "train_images": images,
        "runs": {"03_x_seed0": scores(0.66), "03_x_seed1": scores(0.66)}}))
    (folder / "full.json").write_text(json.dumps({
        "settings": ["height=150", "profile=full"], "runs": {"03_x_seed0": scores(0.67), "03_x_seed1": scores(0.69)}}))
    table = reproduce.recorded_data_curve("full.json", root=tmp_path, defaults={"height": 150})
    plain = table[table["procedure"] == "plain"]
    assert plain[["recipe", "train_images", "epochs", "seed", "balanced_accuracy"]].values.tolist() == [
        ["10 epochs", 3500, 10, 0, 0.60], ["10 epochs", 3500, 10, 1, 0.64],
        ["10 epochs", 7009, 10, 0, 0.67], ["10 epochs", 7009, 10, 1, 0.69],
        ["equal steps", 3500, 20, 0, 0.66], ["equal steps", 3500, 20, 1, 0.66],
        ["equal steps", 7009, 10, 0, 0.67], ["equal steps", 7009, 10, 1, 0.69]]
    assert len(table) == 10  # the ensemble is not a seed; the full split's plain runs are in both recipes
    fit = metrics.scaling_fit(table, {"balanced_accuracy": 0.75, "absent": 1.0})
    assert fit.index.tolist() == [("10 epochs", "balanced_accuracy"), ("equal steps", "balanced_accuracy")]
    slopes = fit["per doubling"].astype(float)
    assert slopes.tolist() == pytest.approx([0.06, 0.02], abs=0.001)  # 0.62 -> 0.68 and 0.66 -> 0.68
    assert reproduce.recorded_data_curve("full.json", root=tmp_path / "nowhere", defaults={}).empty
    flat = pd.DataFrame({"train_images": [1000, 2000], "procedure": "plain", "accuracy": [0.7, 0.7]})
    assert metrics.scaling_fit(flat, {"accuracy": 0.85}).loc[("all", "accuracy"), "images for the goal"] == float("inf")
    assert metrics.scaling_fit(flat.iloc[:1], {"accuracy": 0.85}).empty  # one size: no line
    assert metrics.scaling_fit(pd.DataFrame(), {"accuracy": 0.85}).empty
    (folder / "data_share_0.25.json").write_text(json.dumps({"settings": ["train_share=0.25", "profile=full"],
                                                             "runs": {"03_x_seed0": scores(0.5)}}))
    with pytest.raises(ValueError, match="data_share_0.25.json does not record the training images"):
        reproduce.recorded_data_curve("full.json", root=tmp_path, defaults={"height": 150})
    other = {"settings": ["train_share=0.25", "profile=full", "height=120"], "runs": {"03_x_seed0": scores(0.5)}}
    (folder / "data_share_0.25.json").write_text(json.dumps(other))  # Another input size: not the same curve.
    with pytest.raises(ValueError, match=r"data_share_0.25.json ran other settings than full.json: \[\('height', 120"):
        reproduce.recorded_data_curve("full.json", root=tmp_path, defaults={"height": 150})


def test_recorded_shifts_table(tmp_path):
    folder = tmp_path / "benchmarks" / "results"
    folder.mkdir(parents=True)
    scores = {"on | none": {"balanced_accuracy": 0.6, "balanced_accuracy_change": 0.0},
              "on | darker": {"balanced_accuracy": 0.5, "balanced_accuracy_change": -0.1},
              "off | none": {"balanced_accuracy": 0.7, "balanced_accuracy_change": 0.0},
              "off | darker": {"balanced_accuracy": 0.4, "balanced_accuracy_change": -0.3}}
    (folder / "shifts.json").write_text(json.dumps({"scores": scores}))
    table = reproduce.recorded_shifts("shifts.json", tmp_path)
    assert table.loc["darker", ("off", "balanced_accuracy_change")] == -0.3
    assert list(table.index) == ["none", "darker"]
    assert reproduce.recorded_shifts("missing.json", tmp_path).empty


def equal_time_record(label, seed, seconds, scores):
    curve = [{"epoch": epoch, "seconds": second, "val_balanced_accuracy": score, "val_accuracy": score, "loss": 1.0}
             for epoch, (second, score) in enumerate(zip(seconds, scores), start=1)]
    return {"method": "views", "label": label, "seed": seed, "epochs": len(curve), "setup_seconds": 30.0,
            "curve": curve, "input": "120x160", "cpu": "CPU", "cpu_count": 2, "command": "python x.py"}


def test_equal_time_block_compares_at_the_shortest_records_time(tmp_path):
    folder = tmp_path / "benchmarks" / "results"
    folder.mkdir(parents=True)
    fast = equal_time_record("cached views", 0, [60.0, 120.0], [0.5, 0.6])
    slow = equal_time_record("end-to-end fine-tuning", 0, [100.0, 200.0], [0.55, 0.7])
    (folder / "equal_time_views.json").write_text(json.dumps(fast))
    (folder / "equal_time_end_to_end.json").write_text(json.dumps(slow))
    block = reproduce.readme_blocks(tmp_path)["equal_time"]
    assert "best epoch that ended within 2.0 min" in block
    rows = block.splitlines()[-2:]
    assert rows[0].endswith("| 0.700 (epoch 2, 3.3 min) | 0.550 |")  # end_to_end sorts first; only epoch 1 by 2 min.
    assert rows[1].endswith("| 0.600 (epoch 2, 2.0 min) | 0.600 |")
    # Records of another input size get a table of their own, with their own shortest time; the CPU's AVX-512 is
    # said only where every record of a table says the same.
    larger = dict(equal_time_record("cached views", 0, [300.0, 600.0], [0.6, 0.65]), input="150x200", avx512=False)
    (folder / "equal_time_150x200_views.json").write_text(json.dumps(larger))
    tables = reproduce.readme_blocks(tmp_path)["equal_time"].split("\n\nMeasured by")
    assert len(tables) == 2 and "at 150x200" in tables[0] and "(CPU, without AVX-512)" in tables[0]
    assert "within 10.0 min" in tables[0] and "within 2.0 min" in tables[1] and "AVX-512" not in tables[1]


def test_equal_time_benchmark_draws_its_records(tmp_path):
    import subprocess
    import sys

    record = tmp_path / "equal_time_views.json"
    record.write_text(json.dumps(equal_time_record("cached views", 1, [60.0, 120.0], [0.5, 0.6])))
    figure = tmp_path / "curves.png"
    script = reproduce.repo_root() / "benchmarks" / "equal_time.py"
    done = subprocess.run([sys.executable, str(script), "--plot", str(record), "--figure", str(figure)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert figure.stat().st_size > 1000
    nothing = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert nothing.returncode == 2 and "--method and --out are needed" in nothing.stderr


def test_chapter03_variant_records_a_committed_design(tmp_path):
    import csv
    import io
    import subprocess
    import sys

    root = reproduce.repo_root()
    out = tmp_path / "chapter03_old.json"
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "chapter03_variant.py"), "--from-commit", "HEAD",
                           "--set", "cut=block10_add", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["settings"] == ["cut=block10_add"] and record["chapter_seconds"] > 0
    listed = subprocess.run(["git", "-C", str(root), "ls-tree", "--name-only", "HEAD", "Saved_Models/"],
                            capture_output=True, text=True, check=True).stdout.split()
    committed = sorted(Path(name).name[: -len("_metrics.json")] for name in listed
                       if Path(name).name.startswith("03_") and name.endswith("_metrics.json"))
    assert sorted(record["runs"]) == committed
    first = json.loads(subprocess.run(["git", "-C", str(root), "show", f"HEAD:Saved_Models/{committed[0]}_metrics.json"],
                                      capture_output=True, text=True, check=True).stdout)
    assert record["runs"][committed[0]]["balanced_accuracy"] == first["balanced_accuracy"]
    assert "--set cut=block10_add" in record["command"] and len(record["from_commit"]) >= 7
    trained = [name for name in committed if f"Saved_Models/{name}_history.csv" in listed]
    assert sorted(record["curves"]) == trained and trained  # Each trained run's validation balanced accuracy per epoch.
    assert sorted(record["balancing"]) == trained  # The balancing chosen for each trained run.
    results = subprocess.run(["git", "-C", str(root), "show", "HEAD:Saved_Models/results.csv"],
                             capture_output=True, text=True, check=True).stdout
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(results))}
    assert sorted(record["train_seconds"]) == trained  # Each trained run's seconds, read from its results row.
    assert all(record["train_seconds"][name] == float(rows[name]["train_seconds"]) for name in trained)
    history = subprocess.run(["git", "-C", str(root), "show", f"HEAD:Saved_Models/{trained[0]}_history.csv"],
                             capture_output=True, text=True, check=True).stdout
    assert len(record["curves"][trained[0]]) == len(history.strip().splitlines()) - 1
    refused = subprocess.run([sys.executable, str(root / "benchmarks" / "chapter03_variant.py"), "--from-commit", "HEAD",
                              "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--from-commit needs --set" in refused.stderr


def test_readme_says_when_the_final_model_is_a_refit_and_whose_validation_scores_it_shows():
    from skinlib import artefacts, repo_root

    record = artefacts.read_final_metrics(repo_root() / "Saved_Models")
    scores = {"finals": {"m": record["finals"][record["procedure"]]}}
    plain = {**record, "model": "m", "procedure": "m", "validated_model": "m", **scores}
    assert "refit" not in reproduce._markdown_headline(plain) and "refit" not in reproduce._markdown_final(plain)
    refit = {**record, "model": "m_refit", "procedure": "m_refit", "validated_model": "m",
             "finals": {"m_refit": record["finals"][record["procedure"]]}}
    assert "the refit of `m` on the training and validation images" in reproduce._markdown_headline(refit)
    assert "the validation column, the threshold and the temperature are `m`'s" in reproduce._markdown_final(refit)


def test_checker_speed_block_adds_the_same_models_records_from_other_machines(tmp_path):
    import shutil

    root = reproduce.repo_root()
    (tmp_path / "Saved_Models").mkdir()
    shutil.copy(root / "Saved_Models" / "final_metrics.json", tmp_path / "Saved_Models")
    final = json.loads((root / "Saved_Models" / "final_metrics.json").read_text())["model"]
    measured = tmp_path / "benchmarks" / "results"
    measured.mkdir(parents=True)
    record = json.loads((root / "benchmarks" / "results" / f"predict_{final}.json").read_text())
    (measured / f"predict_{final}.json").write_text(json.dumps(record))
    other = {**record, "machine": {"cpu": "AMD EPYC", "cores": 2, "avx512": False},
             "command": f"python benchmarks/predict.py --out benchmarks/results/predict_{final}_amd.json",
             "lite": {**record["lite"], "cold_start_seconds_median": 1.234, "warm_ms_median": 56.78}}
    (measured / f"predict_{final}_amd.json").write_text(json.dumps(other))
    another_model = {**other, "model": "some_other_model.keras"}  # Another model's record is left out.
    (measured / "predict_some_other_model.json").write_text(json.dumps(another_model))
    block = reproduce.readme_blocks(tmp_path)["checker_speed"]
    assert block.count("The same model, measured on") == 1
    assert (f"The same model, measured on 2 CPU cores (AMD EPYC, without AVX-512; `{other['command']}`): "
            "LiteRT 1.23 s cold, 56.8 ms warm;") in block
    (measured / f"predict_{final}_amd.json").write_text(json.dumps({**other, "command": "python x.py"}))
    assert f"`python x.py`, in `benchmarks/results/predict_{final}_amd.json`)" in reproduce.readme_blocks(tmp_path)[
        "checker_speed"]  # A command that does not name the file: the file is named.


def test_readme_headline_says_how_far_each_goal_is_and_the_excised_images_scores():
    from skinlib import artefacts, repo_root

    record = artefacts.read_final_metrics(repo_root() / "Saved_Models")
    test = record["finals"][record["procedure"]]
    line = reproduce._markdown_headline(record)
    short = 0.75 - test["balanced_accuracy"]["estimate"]
    assert f"balanced accuracy by {short:.3f}" in line
    excised = record["confirmation"]["histopathology"]["balanced_accuracy"]["estimate"]
    assert f"test images confirmed by histopathology the scores are lower: balanced accuracy {excised:.3f}" in line
    without = {key: value for key, value in record.items() if key != "confirmation"}
    assert "histopathology" not in reproduce._markdown_headline(without)
    met = {key: {"estimate": 0.99, "low": 0.98, "high": 1.0} for key in test}
    assert reproduce._shortfall(met) == ""
    one = {**met, "accuracy": {"estimate": 0.8, "low": 0.7, "high": 0.84}}
    assert reproduce._shortfall(one) == (" (short of the goals: accuracy by 0.050; its interval lies wholly below "
                                         "the goal)")
    two = {**one, "malignant_auc": {"estimate": 0.94, "low": 0.9, "high": 0.96},
           "balanced_accuracy": {"estimate": 0.74, "low": 0.7, "high": 0.8}}
    assert reproduce._shortfall(two).endswith("so this test split does not rule out that they are met; that of "
                                              "accuracy lies wholly below its goal)")

"""skinlib.artefacts: the folders, atomic writes, the results table and final_metrics.json."""

import json

import numpy as np
import pandas as pd
import pytest

from skinlib import artefacts


def test_write_atomic_keeps_the_old_file_on_a_crash(tmp_path):
    target = tmp_path / "results.csv"
    target.write_bytes(b"last good")

    def crash(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        artefacts.write_atomic(target, crash)
    assert target.read_bytes() == b"last good"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_smoke_mode_writes_away_from_the_committed_folders(tmp_path, monkeypatch):
    assert artefacts.models_dir(root=tmp_path) == tmp_path / "Saved_Models"
    assert artefacts.figure_dir(True, root=tmp_path) == tmp_path / ".papermill" / "smoke" / "Images"
    monkeypatch.setenv("SKINLIB_SMOKE", "1")
    smoke, models, figures = artefacts.setup(False)  # The environment variable wins over the parameter.
    assert smoke and models == artefacts.models_dir(True) and figures == artefacts.figure_dir(True)


def test_record_metrics_writes_a_row_and_json(tmp_path):
    row = artefacts.record_metrics("ensemble", {"accuracy": 0.5, "recall": [0.1, 0.2]}, folder=tmp_path,
                                   notebook="t", extra={"stage": "ensemble"})
    assert row["accuracy"] == 0.5
    assert artefacts.read_results(tmp_path)["stage"].tolist() == ["ensemble"]
    assert json.loads((tmp_path / "ensemble_metrics.json").read_text())["recall"] == [0.1, 0.2]
    artefacts.record_metrics("ensemble", {"accuracy": 0.6}, folder=tmp_path, notebook="t")
    assert artefacts.read_results(tmp_path)["accuracy"].tolist() == [0.6]  # Replaced by name, not added.
    assert artefacts.read_results(tmp_path / "none", missing_ok=True).empty


def test_final_metrics_are_built_written_and_read_back(tmp_path):
    interval = pd.DataFrame({"estimate": [0.8], "low": [0.7], "high": [0.9], "validation": [0.82]},
                            index=["accuracy"])
    per_class = pd.DataFrame({"recall": [0.5], "precision": [0.6], "support": [2]}, index=pd.Index(["mel"]))
    scores = pd.DataFrame({"images": [3.0], "inside": [0.6]},
                          index=pd.MultiIndex.from_tuples([("all", "all")], names=["class", "predictions"]))
    payload = artefacts.final_metrics(
        rule="the rule", model="03_m", procedure="03_m_tta", tta=True, input_size=(120, 160), smoke=False,
        test_labels=np.array([4, 4, 5]), test_lesion_ids=np.array(["a", "a", "b"]), bootstrap_resamples=10,
        finals={"03_m_tta": interval}, per_class=per_class, target_sensitivity=0.9, threshold=np.float64(0.2),
        screening={"val": {"sensitivity": 0.9}, "test": {"sensitivity": 0.8}},
        screening_interval=pd.DataFrame({"low": [0.7], "high": [0.9]}, index=["sensitivity"]),
        temperature=1.5, temperature_kept=np.bool_(True), ece={"val": {"raw": 0.1, "scaled": 0.05}},
        subgroups={"sex": pd.DataFrame({"images": [3]}, index=pd.Index(["male"], name="sex"))}, explanations=scores,
        decision_tradeoff=pd.DataFrame({"accuracy": [0.7, 0.8], "balanced_accuracy": [0.6, 0.5]},
                                       index=pd.Index([0.0, 0.5], name="power")),
        tta_comparison={"tta": True, "validation": {"one_pass": 0.7, "tta": 0.71},
                        "test": {"one_pass": {"accuracy": 0.8, "balanced_accuracy": 0.6},
                                 "procedure": {"accuracy": 0.8, "balanced_accuracy": 0.5},
                                 "change": {"estimate": -0.1, "low": -0.2, "high": 0.0}}})
    path = artefacts.write_final_metrics(payload, tmp_path)
    assert path.name == artefacts.FINAL_METRICS_FILE
    read = artefacts.read_final_metrics(tmp_path)
    assert list(read) == ["rule", "model", "validated_model", "procedure", "tta", "input_size", "smoke", "test_images", "test_lesions",
                          "bootstrap_resamples", "finals", "per_class", "screening", "calibration", "subgroups",
                          "explanations", "decision_tradeoff_validation", "tta_comparison"]
    assert read["test_images"] == 3 and read["test_lesions"] == 2 and read["input_size"] == [120, 160]
    assert read["validated_model"] == "03_m"  # Not a refit: validated and tested by the same model.
    assert read["finals"]["03_m_tta"]["accuracy"] == {"estimate": 0.8, "low": 0.7, "high": 0.9, "validation": 0.82}
    assert read["calibration"]["temperature_kept"] is True and read["explanations"]["all/all"]["inside"] == 0.6
    assert read["screening"]["test_interval"]["sensitivity"] == {"low": 0.7, "high": 0.9}
    assert read["decision_tradeoff_validation"]["0.5"] == {"accuracy": 0.8, "balanced_accuracy": 0.5}
    assert read["tta_comparison"]["validation"] == {"one_pass": 0.7, "tta": 0.71}
    assert artefacts.read_final_metrics(tmp_path / "none", missing_ok=True) is None


def test_forget_stale_drops_rows_and_files_the_last_run_did_not_write(tmp_path):
    import os
    import time

    for name, notebook in (("03_old", "03_nb"), ("03_new", "03_nb"), ("02_kept", "02_nb")):
        artefacts.record_metrics(name, {"accuracy": 0.5}, folder=tmp_path, notebook=notebook)
        for suffix in (".keras", ".tflite", ".tflite.json"):  # The model, its LiteRT copy and the copy's record.
            (tmp_path / f"{name}{suffix}").write_bytes(b"model")
    old = time.time() - 100
    os.utime(tmp_path / "03_old_metrics.json", (old, old))
    os.utime(tmp_path / "02_kept_metrics.json", (old, old))  # Another notebook's rows are never touched.
    dropped = artefacts.forget_stale(tmp_path, "03_nb", since=time.time() - 50)
    assert dropped == ["03_old"]
    assert sorted(artefacts.read_results(tmp_path)["name"]) == ["02_kept", "03_new"]
    assert not (tmp_path / "03_old.keras").exists() and not (tmp_path / "03_old_metrics.json").exists()
    assert not any((tmp_path / f"03_old{suffix}").exists() for suffix in (".tflite", ".tflite.json"))
    assert (tmp_path / "03_new.keras").exists() and (tmp_path / "02_kept.keras").exists()
    assert artefacts.forget_stale(tmp_path, "03_nb", since=time.time() - 50) == []


def test_a_refit_goes_with_the_run_it_repeats(tmp_path):
    import os
    import time

    import keras

    artefacts.record_metrics("03_run", {"accuracy": 0.5}, folder=tmp_path, notebook="03_nb")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(7)])
    assert artefacts.save_refit(model, "03_run", folder=tmp_path, details={"train_images": 9}) == "03_run_refit"
    record = json.loads((tmp_path / "03_run_refit_training.json").read_text())
    assert record["refit_of"] == "03_run" and record["train_images"] == 9
    assert artefacts.refit_of("03_run", tmp_path) == "03_run_refit"
    (tmp_path / "03_run_refit.tflite").write_bytes(b"lite copy")  # The checker's copy goes with it too.
    old = time.time() - 100
    os.utime(tmp_path / "03_run_metrics.json", (old, old))
    assert artefacts.forget_stale(tmp_path, "03_nb", since=time.time() - 50) == ["03_run"]
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith("03_run")]


def test_a_refit_that_fails_to_save_leaves_no_record_pointing_at_it(tmp_path, monkeypatch):
    import keras

    artefacts.record_metrics("03_run", {"accuracy": 0.5}, folder=tmp_path, notebook="03_nb")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(7)])
    artefacts.save_refit(model, "03_run", folder=tmp_path, details={})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artefacts, "save_model_atomic", crash)
    with pytest.raises(OSError, match="disk full"):
        artefacts.save_refit(model, "03_run", folder=tmp_path, details={})
    # The earlier record is gone before the model is written, so no record vouches for a model of unknown state.
    assert not (tmp_path / "03_run_refit_training.json").exists()
    assert artefacts.refit_of("03_run", tmp_path) is None


def test_seed_repeats_are_kept_for_a_run_that_skips_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="02_x_seed_repeats.json is missing.*--set profile=full"):
        artefacts.read_seed_repeats(tmp_path, "02_x")
    runs = {"a": [{"accuracy": np.float32(0.5), "balanced_accuracy": 0.4, "per_class": [1, 2]},
                  {"accuracy": 0.75, "balanced_accuracy": 0.5, "per_class": [3, 4]}]}
    artefacts.write_seed_repeats(tmp_path, "02_x", runs, metrics=("accuracy", "balanced_accuracy"))
    record = artefacts.read_seed_repeats(tmp_path, "02_x")
    assert record["repeats"] == {"a": [{"accuracy": 0.5, "balanced_accuracy": 0.4},
                                       {"accuracy": 0.75, "balanced_accuracy": 0.5}]}
    assert record["notebook"] == "02_x" and record["written"].endswith("UTC")
    with pytest.raises(ValueError, match="holds the repeats of \\['a'\\], not of \\['a', 'b'\\]"):
        artefacts.read_seed_repeats(tmp_path, "02_x", names=["a", "b"])


def test_the_committed_seed_repeats_give_a_spread():
    # A check of committed data: the default profile shows these instead of training them, so each of chapter
    # 02's last two iterations needs at least two seeds.
    folder = artefacts.models_dir()
    repeats = artefacts.read_seed_repeats(folder, "02_CNN_Iterations",
                                          names=["02_cnn_class_weights", "02_cnn_cosine"])["repeats"]
    assert all(len(runs) >= 2 for runs in repeats.values())


def test_forget_stale_drops_a_refit_the_last_run_did_not_make_again(tmp_path):
    # Chapter 03 run again with refit=False repeats its run's metrics byte for byte: the old refit must not count.
    import os
    import time

    import keras

    artefacts.record_metrics("03_run", {"accuracy": 0.5}, folder=tmp_path, notebook="03_nb")
    (tmp_path / "03_run.keras").write_bytes(b"model")
    top = keras.Sequential([keras.Input((2,)), keras.layers.Dense(7)])
    artefacts.save_refit(top, "03_run", folder=tmp_path, details={"train_images": 3})
    assert artefacts.refit_of("03_run", tmp_path) == "03_run_refit"
    assert artefacts.forget_stale(tmp_path, "03_nb", since=time.time() - 50) == []  # Made by this run: kept.
    old = time.time() - 100
    os.utime(tmp_path / "03_run_refit_training.json", (old, old))
    assert artefacts.forget_stale(tmp_path, "03_nb", since=time.time() - 50) == ["03_run_refit"]
    assert artefacts.refit_of("03_run", tmp_path) is None and not (tmp_path / "03_run_refit.keras").exists()
    assert (tmp_path / "03_run.keras").exists() and list(artefacts.read_results(tmp_path)["name"]) == ["03_run"]

"""skinlib.predict and `python -m skinlib predict`: the lesion checker on good and bad input."""

import dataclasses
import hashlib
import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinlib import artefacts, calibrate, data, infer, metrics, models, predict, train
from tests.conftest import jpeg_bytes
from tests.test_images import huge_jpeg_header


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small saved classifier (untrained weights: the checker's plumbing is what is tested)."""
    train.set_seeds(0)
    path = tmp_path_factory.mktemp("models") / "toy.keras"
    model = models.cnn((48, 64, 3), filters=(4, 8), global_pool=True, name="toy")
    artefacts.save_model_atomic(model, path)
    return path


@pytest.fixture(scope="module")
def checker(model_file):
    return predict.Checker(model_file)


def test_one_image_from_every_kind_of_source_gives_the_same_answer(checker, tmp_path):
    content = jpeg_bytes(size=(200, 150))
    path = tmp_path / "lesion.jpg"
    path.write_bytes(content)
    answers = [checker.predict(path), checker.predict(content), checker.predict(Image.open(io.BytesIO(content))),
               checker.predict(np.asarray(Image.open(io.BytesIO(content))))]
    for answer in answers[1:]:
        assert np.allclose(answer.probabilities, answers[0].probabilities, atol=1e-6)
    first = answers[0]
    assert first.source == str(path) and first.model == "toy" and len(first.version) == 12
    top = first.top3
    assert [code for code, _, _ in top] == [data.CLASSES[i] for i in np.argsort(-first.probabilities)[:3]]
    assert top[0][2] >= top[1][2] >= top[2][2] and top[0][1] == data.CLASS_NAMES[top[0][0]]
    assert first.malignant_probability == pytest.approx(float(metrics.malignant_probability(
        first.probabilities[None])[0]))
    assert "P(malignant" in str(first) and top[0][0] in str(first)


def test_preprocessing_is_exactly_the_training_one(checker, tmp_path):
    from skinlib import images

    path = tmp_path / "lesion.jpg"
    path.write_bytes(jpeg_bytes(size=(200, 150), seed=3))
    training_pixels = images.load_images([path], size=checker.size, cache=False, progress=False)
    expected = infer.predict_proba(checker.model, training_pixels)[0]
    assert np.allclose(checker.predict(path).probabilities, expected, atol=1e-5)


def test_an_image_in_the_training_frame_reaches_the_model_as_before(checker):
    from skinlib import images

    for width, height in [(200, 150), (64, 48), (612, 450), (80, 61)]:  # 4:3 landscape, within 2%
        pixels = np.asarray(Image.open(io.BytesIO(jpeg_bytes(size=(width, height)))))
        assert np.array_equal(checker.predict(pixels).pixels, images.read_image(pixels, size=checker.size))


def test_a_square_or_wide_image_is_cut_to_its_centre_not_stretched(checker):
    """benchmarks/framing.py: for the batch-32 ensemble, cropping to the centre beat stretching by more than the rule's
    0.010 (rule of c37d128, applied again in 22bf0e2), so a square or wide image is cut to its centred 4:3 window."""
    from skinlib import images

    assert predict.FRAMING["fit"] == "crop"
    for (width, height), (top, left) in {(150, 150): (19, 0), (320, 180): (0, 40)}.items():
        pixels = np.asarray(Image.open(io.BytesIO(jpeg_bytes(size=(width, height)))))
        window = pixels[top:height - top, left:width - left]
        assert abs(window.shape[0] / window.shape[1] - 0.75) < 0.01
        assert np.array_equal(checker.predict(pixels).pixels, images.resize(window, checker.size))


def test_a_portrait_image_is_turned_to_landscape_not_stretched(model_file):
    """Upright, the same lesion gets the answer it gets lying down (four-view TTA is closed under a half turn)."""
    from skinlib import images

    checker = predict.Checker(model_file, tta=True, backend="keras")
    landscape = np.asarray(Image.open(io.BytesIO(jpeg_bytes(size=checker.size[::-1], seed=5))))
    expected = checker.predict(landscape)
    for turns in (1, -1):
        upright = checker.predict(np.rot90(landscape, turns))
        assert np.array_equal(upright.pixels, landscape if turns == -1 else np.rot90(landscape, 2))
        assert np.allclose(upright.probabilities, expected.probabilities, atol=1e-6)
    large = np.asarray(Image.open(io.BytesIO(jpeg_bytes(size=(400, 300), seed=6))))  # Resized after the turn.
    assert np.array_equal(checker.predict(np.rot90(large, -1)).pixels, images.resize(large, checker.size))


def test_a_dark_surround_is_cut_away_before_the_model(checker):
    from skinlib import images

    rows, columns = np.mgrid[:300, :400]
    pixels = np.asarray(Image.open(io.BytesIO(jpeg_bytes(size=(400, 300), seed=7))))
    pixels = pixels * (((rows - 149.5) ** 2 + (columns - 199.5) ** 2) <= 150 ** 2)[..., None].astype(np.uint8)
    answer = checker.predict(pixels)
    assert np.array_equal(answer.pixels, images.resize(pixels[60:240, 80:320], checker.size))  # The inner 4:3 box.


def _rotated_jpeg(folder):
    pixels = np.zeros((60, 80, 3), np.uint8)
    pixels[:, :40] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = folder / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif.tobytes())
    return path


def _save(image, folder, name):
    path = folder / name
    image.save(path)
    return path


@pytest.mark.parametrize("kind", ["png-alpha", "grayscale", "cmyk", "exif-rotated"])
def test_awkward_but_valid_images_are_converted(checker, tmp_path, kind):
    rgb = Image.open(io.BytesIO(jpeg_bytes(size=(80, 60))))
    path = {"png-alpha": lambda: _save(rgb.convert("RGBA"), tmp_path, "alpha.png"),
            "grayscale": lambda: _save(rgb.convert("L"), tmp_path, "gray.png"),
            "cmyk": lambda: _save(rgb.convert("CMYK"), tmp_path, "cmyk.jpg"),
            "exif-rotated": lambda: _rotated_jpeg(tmp_path)}[kind]()
    answer = checker.predict(path)
    assert answer.probabilities.shape == (7,) and answer.probabilities.sum() == pytest.approx(1, abs=1e-4)


def _image_bytes(image, kind):
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content, message",
    [(b"", "the file is empty"), (b"%PDF-1.4 not an image", "not a recognised image"),
     (jpeg_bytes()[:-2000], "truncated or corrupt"), (jpeg_bytes(size=(8, 8)), "8x8 pixels; at least 32x32"),
     (huge_jpeg_header(), "over the limit of 80 megapixels"),
     (_image_bytes(Image.new("RGB", (400, 300), "black"), "JPEG"), "almost one colour .*no lesion to check"),
     (_image_bytes(Image.new("RGB", (400, 300), (250, 250, 250)), "PNG"), "almost one colour"),
     (_image_bytes(Image.new("RGB", (400, 300), (200, 150, 130)), "PNG"), "almost one colour")],
    ids=["empty", "not-an-image", "truncated", "8x8", "20000x20000", "black", "white", "skin-coloured"])
def test_bad_images_get_a_clear_message_naming_the_file(checker, tmp_path, content, message):
    path = tmp_path / "upload.jpg"
    path.write_bytes(content)
    with pytest.raises(predict.ImageError, match=message) as caught:
        checker.predict(path)
    assert str(path) in str(caught.value)


def test_model_errors_are_clear(tmp_path):
    with pytest.raises(predict.ModelError, match="no such model file"):
        predict.Checker(tmp_path / "missing.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(predict.ModelError, match="junk.keras: not a readable Keras model"):
        predict.Checker(junk)
    wrong = tmp_path / "wrong.keras"
    artefacts.save_model_atomic(models.cnn((32, 32, 3), n_classes=3, filters=(4,), global_pool=True), wrong)
    with pytest.raises(predict.ModelError, match="3 outputs, not one per diagnosis"):
        predict.Checker(wrong)


def test_a_model_with_metadata_uses_it_and_tolerates_unknowns(tmp_path):
    base = models.backbone("mobilenet_025", input_shape=(48, 64, 3))
    path = tmp_path / "fused.keras"
    artefacts.save_model_atomic(models.classifier(base, models.head(256, n_metadata=20)), path)
    checker = predict.Checker(path)
    assert checker.uses_metadata
    content = jpeg_bytes(size=(200, 150))
    unknown = checker.predict(content)
    known = checker.predict(content, age=70, sex="male", site="back")
    assert unknown.probabilities.shape == known.probabilities.shape == (7,)
    assert not np.allclose(unknown.probabilities, known.probabilities)
    person = checker.metadata_inputs(2, age=70, sex="male", site="back")  # What the app feeds Grad-CAM.
    assert person.shape == (2, 20) and np.array_equal(person[0], person[1])
    image = tmp_path / "lesion.jpg"
    image.write_bytes(content)
    folder = checker.predict_many([image], progress=False, age=70, sex="male", site="back")  # A folder's answers too.
    assert folder.loc[0, "top1_probability"] == round(float(known.probabilities.max()), 4)


def test_folder_batch_keeps_going_past_bad_files(checker, tmp_path):
    for index in range(3):
        (tmp_path / f"ISIC_000000{index}.jpg").write_bytes(jpeg_bytes(seed=index))
    (tmp_path / "broken.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image, not picked up")
    files = predict.image_files([tmp_path])
    assert [f.name for f in files] == ["ISIC_0000000.jpg", "ISIC_0000001.jpg", "ISIC_0000002.jpg", "broken.jpg"]
    table = checker.predict_many(files, progress=False)
    assert len(table) == 4 and table["error"].fillna("").str.contains("the file is empty").sum() == 1
    assert table["top1"].notna().sum() == 3


def _cli(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "skinlib", "predict", *map(str, arguments)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_cli_single_image_folder_and_csv(model_file, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for index in range(2):
        (images / f"ISIC_000000{index}.jpg").write_bytes(jpeg_bytes(seed=index))
    one = _cli(images / "ISIC_0000000.jpg", "--model", model_file)
    assert one.returncode == 0, one.stderr
    assert "1. " in one.stdout and "P(malignant" in one.stdout and "Research use only" in one.stdout
    assert "INFO:" not in one.stderr  # Native log lines are held back.
    with_age = _cli(images / "ISIC_0000000.jpg", "--model", model_file, "--age", "50", "--site", "back")
    assert "reads the image only; --age, --site were not used" in with_age.stderr  # Said, not silently dropped.

    (images / "notes.txt").write_text("not an image")
    (images / "more").mkdir()
    Image.open(images / "ISIC_0000001.jpg").save(images / "scan.tif")
    read_all = _cli(images, "--model", model_file)
    assert read_all.returncode == 0, read_all.stderr  # Skipped entries are named but do not fail the run.
    assert "skipped 2 entries" in read_all.stderr and "could not be read" not in read_all.stderr
    (images / "broken.jpg").write_bytes(b"GIF89a broken")
    out = tmp_path / "new" / "out.csv"  # A missing folder is made.
    many = _cli(images, "--model", model_file, "--csv", out)
    assert many.returncode == 1  # One image failed: said, not hidden.
    table = pd.read_csv(out)
    assert len(table) == 4 and table["top1"].notna().sum() == 3 and set(table["backend"]) == {"keras"}
    assert "1 of 4 image(s) could not be read" in many.stderr
    assert "skipped 2 entries" in many.stderr and "(more/, notes.txt)" in many.stderr  # Named, not silently left.

    none_read = _cli(images / "broken.jpg", "--model", model_file, "--csv", tmp_path / "none.csv")
    assert none_read.returncode == 2 and "1 of 1 image(s) could not be read" in none_read.stderr  # No answer at all.
    into_folder = _cli(images, "--model", model_file, "--csv", tmp_path)
    assert into_folder.returncode == 2 and f"the CSV file {tmp_path} is a folder" in into_folder.stderr
    assert "Traceback" not in into_folder.stderr
    under_file = _cli(images, "--model", model_file, "--csv", images / "ISIC_0000000.jpg" / "out.csv")
    assert under_file.returncode == 2 and "which is a file" in under_file.stderr
    empty = _cli(images, "--model", model_file, "--csv", "")
    assert empty.returncode == 2 and "--csv needs a file path" in empty.stderr
    from skinlib.__main__ import PREDICT_EXIT_STATUS

    assert PREDICT_EXIT_STATUS in _cli("--help").stdout  # The statuses above are documented where a user looks.

    bad = _cli(tmp_path / "nothing.jpg", "--model", model_file)
    assert bad.returncode == 2 and "nothing.jpg: no such file" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing_model = _cli(images, "--model", tmp_path / "none.keras")
    assert missing_model.returncode == 2 and "no such model file" in missing_model.stderr
    assert "Traceback" not in missing_model.stderr


def test_default_model_prefers_the_final_choice(tmp_path):
    pd.DataFrame({"name": ["a", "b", "c"], "balanced_accuracy": [0.5, 0.7, 0.9]}).to_csv(
        tmp_path / artefacts.RESULTS_FILE, index=False)
    for name in ("a", "b"):
        (tmp_path / f"{name}.keras").write_bytes(b"x")
    assert predict.default_model(tmp_path).name == "b.keras"  # c has no file.
    (tmp_path / "final_metrics.json").write_text(json.dumps({"model": "a"}))
    assert predict.default_model(tmp_path).name == "a.keras"
    with pytest.raises(predict.ModelError, match="no results table"):
        predict.default_model(tmp_path / "empty")


def test_app_report_and_html(checker, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from skinlib import app

    pixels = app.example_pixels(checker.size)
    answer = checker.predict(pixels)
    page = app.result_html(answer)
    assert page.count("<li>") == 3 and "Research use only" in page and "P(malignant" in page
    figure = app.report_figure(checker, answer, pixels.astype("float32"))
    assert len(figure.axes) == 3
    box = app.lesion_checker(checker)
    upload = box.children[1].children[0]
    shown = []
    monkeypatch_display = __import__("IPython.display", fromlist=["display"])
    original = monkeypatch_display.display
    monkeypatch_display.display = lambda *objects, **_: shown.extend(objects)
    try:  # A bad upload is answered with a message in the page, never an exception.
        import datetime

        upload.value = ({"name": "bad.jpg", "type": "image/jpeg", "size": 3, "content": memoryview(b"bad"),
                         "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    finally:
        monkeypatch_display.display = original
    assert any("Cannot use this file: bad.jpg" in getattr(item, "data", "") for item in shown)


def test_app_grad_cam_explains_the_answers_top_class(checker, monkeypatch):
    """With TTA the averaged answer's top class can differ from one pass's: Grad-CAM must explain the answer's."""
    import matplotlib

    matplotlib.use("Agg")
    from skinlib import app, explain

    pixels = app.example_pixels(checker.size)
    answer = checker.predict(pixels)
    second = int(np.argsort(-answer.probabilities)[1])
    answer.probabilities = np.eye(7, dtype="float32")[second]  # Now the top class is another one.
    explained = []
    real_grad_cam = explain.grad_cam
    monkeypatch.setattr(explain, "grad_cam", lambda model, image, index, **kw: explained.append(index)
                        or real_grad_cam(model, image, index, **kw))
    figure = app.report_figure(checker, answer, pixels.astype("float32"))
    assert explained == [second]
    assert figure.axes[1].get_title().endswith(f"for {answer.top3[0][0]} lies")


def test_litert_copy_gives_the_same_answers_and_is_used_by_default(model_file, tmp_path):
    import shutil

    keras_file = tmp_path / "toy.keras"
    shutil.copy(model_file, keras_file)
    lite_file = predict.export_lite(keras_file)
    assert lite_file == tmp_path / "toy.tflite"
    with_keras = predict.Checker(keras_file, backend="keras")
    automatic = predict.Checker(keras_file)
    assert (with_keras.backend, automatic.backend) == ("keras", "lite")
    content = jpeg_bytes(size=(200, 150), seed=9)
    assert np.allclose(automatic.predict(content).probabilities, with_keras.predict(content).probabilities,
                       atol=1e-5)
    assert automatic.name == "toy" and automatic.size == with_keras.size
    lite_file.write_bytes(b"not a model")
    with pytest.raises(predict.ModelError, match="toy.tflite: not a readable LiteRT model"):
        predict.Checker(keras_file)


def test_the_litert_copy_is_made_again_only_when_its_model_changed(model_file, tmp_path, monkeypatch, capsys):
    """Chapter 05 (and so every start of the web app) exports the final model; a copy of the same bytes is kept."""
    import json
    import shutil

    import tensorflow as tf

    from skinlib.__main__ import main

    keras_file = tmp_path / "toy.keras"
    shutil.copy(model_file, keras_file)
    lite_file = predict.export_lite(keras_file)
    record = json.loads((tmp_path / "toy.tflite.json").read_text())
    assert record["source"] == "toy.keras" and predict.lite_is_current(keras_file, lite_file)
    assert record["source_sha256"] == hashlib.sha256(keras_file.read_bytes()).hexdigest()
    assert record["sha256"] == hashlib.sha256(lite_file.read_bytes()).hexdigest()
    made = lite_file.stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    with monkeypatch.context() as patched:
        patched.setattr(tf.lite.TFLiteConverter, "from_keras_model", no_conversion)
        assert predict.export_lite(keras_file) == lite_file and lite_file.stat().st_mtime_ns == made  # Kept.
        with pytest.raises(AssertionError, match="converted again"):
            predict.export_lite(keras_file, force=True)

    # The model trained again under the same name: the old copy is stale, and the checker says so, not uses it.
    model = models.load_model(keras_file)
    model.set_weights([weight * 0.5 for weight in model.get_weights()])
    artefacts.save_model_atomic(model, keras_file)
    assert not predict.lite_is_current(keras_file, lite_file)
    stale = predict.Checker(keras_file)
    assert stale.backend == "keras" and "was made from another version of toy.keras" in stale.note
    image = tmp_path / "lesion.jpg"
    image.write_bytes(jpeg_bytes())
    assert main(["predict", str(image), "--model", str(keras_file)]) == 0
    assert "note: the LiteRT copy toy.tflite was made from another version" in capsys.readouterr().err
    predict.export_lite(keras_file)  # Made again, from the new bytes.
    fresh = predict.Checker(keras_file)
    assert fresh.backend == "lite" and fresh.note == ""
    np.testing.assert_allclose(fresh.predict(image).probabilities,
                               predict.Checker(keras_file, backend="keras").predict(image).probabilities, atol=1e-5)

    lite_file.write_bytes(lite_file.read_bytes()[:-1])  # A damaged copy is not current either, and is made again.
    assert not predict.lite_is_current(keras_file, lite_file)
    assert predict.lite_is_current(keras_file, predict.export_lite(keras_file))
    assert ".tflite" + predict.LITE_RECORD in artefacts.MODEL_SUFFIXES  # The record goes where its model goes.
    model.set_weights([weight * 2 for weight in model.get_weights()])
    artefacts.save_model_atomic(model, keras_file)  # Trained again: the copy is stale once more.
    asked = predict.Checker(keras_file, backend="lite")  # The copy asked for answers, and the user is told.
    assert asked.backend == "lite" and "was made from another version" in asked.note and "as asked" in asked.note
    for broken in ("not json", "{}"):  # No readable record: the copy is used, as before records, and made again.
        (tmp_path / "toy.tflite.json").write_text(broken)
        assert predict.lite_source(lite_file) is None and not predict.lite_is_current(keras_file, lite_file)
        assert predict.Checker(keras_file).backend == "lite" and predict.Checker(keras_file).note == ""
    assert predict.lite_is_current(keras_file, predict.export_lite(keras_file))
    with pytest.raises(predict.ModelError, match="none.keras: no such model file"):
        predict.export_lite(tmp_path / "none.keras")


def test_an_ensemble_runs_in_the_checker_with_litert_and_tta_as_with_keras(model_file, tmp_path):
    """The shipped model can be an ensemble (chapter 03's full profile): one file, read like any model, and its
    LiteRT copy gives the mean of its members, with TTA as chapter 04 evaluated it."""
    first = models.load_model(model_file)
    second = first.__class__.from_config(first.get_config())  # the same architecture, other weights
    second.set_weights([w * 0.5 for w in first.get_weights()])
    first.name, second.name = "seed0", "seed1"
    ensemble_file = artefacts.save_model_atomic(models.ensemble([first, second], name="toy_ensemble"),
                                                tmp_path / "toy_ensemble.keras")
    predict.export_lite(ensemble_file)
    with_keras = predict.Checker(ensemble_file, backend="keras", tta=True)
    with_lite = predict.Checker(ensemble_file, tta=True)
    assert (with_keras.backend, with_lite.backend) == ("keras", "lite")
    content = jpeg_bytes(size=(200, 150), seed=5)
    answer = with_lite.predict(content)
    np.testing.assert_allclose(answer.probabilities, with_keras.predict(content).probabilities, atol=1e-5)
    members = [infer.predict_tta(member, answer.pixels[None].astype("float32"))[0] for member in (first, second)]
    np.testing.assert_allclose(answer.probabilities, np.mean(members, axis=0), atol=1e-5)


def test_cli_start_without_tensorflow(model_file, tmp_path):
    """With a LiteRT copy, `python -m skinlib predict` never imports TensorFlow (that is its fast start)."""
    import shutil

    keras_file = tmp_path / "toy.keras"
    shutil.copy(model_file, keras_file)
    predict.export_lite(keras_file)
    image = tmp_path / "lesion.jpg"
    image.write_bytes(jpeg_bytes())
    code = ("import sys, runpy; sys.argv = ['skinlib', 'predict', %r, '--model', %r]\n"
            "try:\n    runpy.run_module('skinlib', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('TENSORFLOW LOADED' if 'tensorflow' in sys.modules else 'NO TENSORFLOW')") % (str(image),
                                                                                                str(keras_file))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "1. " in result.stdout and "NO TENSORFLOW" in result.stdout, result.stderr[-2000:]


def test_the_checker_runs_the_procedure_chapter_04_evaluated(model_file, tmp_path):
    """TTA, the temperature and the screening threshold come from final_metrics.json for the final model only."""
    import shutil

    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(model_file, folder / "toy.keras")
    (folder / artefacts.FINAL_METRICS_FILE).write_text(json.dumps(
        {"model": "toy", "tta": True, "screening": {"threshold": 0.3, "test": {"sensitivity": 0.8, "ppv": 0.4,
                                                                               "specificity": 0.7}},
         "calibration": {"temperature": 0.5, "temperature_kept": True}}))
    final = predict.Checker(folder / "toy.keras", backend="keras")
    assert final.tta and final.threshold == 0.3 and final.temperature == 0.5
    assert final.test_screening == {"sensitivity": 0.8, "ppv": 0.4}  # What the answer quotes of the test split.
    pixels = np.random.default_rng(0).integers(0, 256, (2, *final.size, 3)).astype("uint8")
    flips = [pixels, pixels[:, :, ::-1], pixels[:, ::-1], pixels[:, ::-1, ::-1]]
    expected = np.mean([infer.predict_proba(final.model, view) for view in flips], axis=0)
    np.testing.assert_allclose(final.predict_pixels(pixels), calibrate.apply_temperature(expected, 0.5), atol=1e-5)
    raw = predict.Checker(folder / "toy.keras", temperature=1, backend="keras")
    assert raw.temperature is None
    np.testing.assert_allclose(raw.predict_pixels(pixels), expected, atol=1e-5)
    assert not predict.Checker(folder / "toy.keras", tta=False, backend="keras").tta
    shutil.copy(model_file, folder / "other.keras")
    other = predict.Checker(folder / "other.keras", backend="keras")
    assert not other.tta and other.threshold is None and other.temperature is None

    path = tmp_path / "lesion.jpg"
    path.write_bytes(jpeg_bytes(size=(200, 150)))
    answer = final.predict(path)
    expected_words = "at or above" if answer.malignant_probability >= 0.3 else "below the screening threshold"
    assert expected_words in answer.screening and "30.0%" in answer.screening and answer.screening in str(answer)
    assert other.predict(path).screening == ""
    tested = dataclasses.replace(answer, test_screening={"sensitivity": 0.87, "ppv": 0.42})
    above = dataclasses.replace(tested, malignant_probability=0.31)
    below = dataclasses.replace(tested, malignant_probability=0.29)
    assert "flagged 87% of the malignant ones, and 58% of the images it flagged were benign" in above.screening
    assert "13% of the malignant ones scored below it too" in below.screening  # What a low score does not say.


def test_a_colour_constancy_model_loads_everywhere_and_exports_to_litert(tmp_path):
    """The chapter-03 kind of model (Shades of Gray inside the backbone) through Keras, LiteRT and the CLI."""
    train.set_seeds(0)
    base = models.backbone("efficientnet_lite0", weights=None, input_shape=(48, 64, 3), colour_constancy=True)
    keras_file = artefacts.save_model_atomic(models.classifier(base, models.head(1280), name="sog"),
                                             tmp_path / "sog.keras")
    with_keras = predict.Checker(keras_file, backend="keras")
    predict.export_lite(keras_file)
    with_lite = predict.Checker(keras_file)
    assert with_lite.backend == "lite"
    content = jpeg_bytes(size=(200, 150), seed=4)
    np.testing.assert_allclose(with_lite.predict(content).probabilities, with_keras.predict(content).probabilities,
                               atol=1e-4)
    image = tmp_path / "lesion.jpg"
    image.write_bytes(content)
    result = _cli(str(image), "--model", str(keras_file), "--backend", "keras")
    assert result.returncode == 0 and "1. " in result.stdout, result.stderr[-2000:]
    assert "oneDNN" not in result.stderr and "absl" not in result.stderr  # TensorFlow's start-up lines held back.
    lite = _cli(str(image), "--model", str(keras_file))
    assert lite.returncode == 0 and "LiteRT copy" in lite.stdout, lite.stderr[-2000:]
    assert "INFO: Created TensorFlow Lite" not in lite.stderr  # LiteRT's native start-up line is held back.

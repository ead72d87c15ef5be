"""skinlib.slides: the deck's words come from the saved results, and the PDF has one page per slide."""

import copy
import json
import re

import pandas as pd
import pytest

from skinlib import artefacts, slides

ROOT = artefacts.models_dir().parent


@pytest.fixture(scope="module")
def saved():
    final = json.loads((ROOT / "Saved_Models" / "final_metrics.json").read_text())
    results = pd.read_csv(ROOT / "Saved_Models" / "results.csv")
    metadata = pd.DataFrame({"lesion_id": ["a", "a", "b", "c"], "dx": ["nv", "nv", "mel", "bcc"]})
    return final, results, metadata


def deck(final, results, metadata):
    return slides.study_deck(final, results, metadata, figures="Images", cnn_slide="Images/cnn.png")


def bullets(slides_, title):
    return next(slide["bullets"] for slide in slides_ if slide["title"] == title)


def test_the_deck_reads_the_test_scores_and_the_goals_met(saved):
    final, results, metadata = saved
    shown = deck(final, results, metadata)
    test = final["finals"][final["procedure"]]["balanced_accuracy"]
    takeaway = " ".join(bullets(shown, "Takeaway"))
    assert f"balanced accuracy {test['estimate']:.2f} (95% CI {test['low']:.2f}-{test['high']:.2f})" in takeaway
    assert "goals met: none" in takeaway  # The committed model meets none of the three goals.
    assert "4 dermoscopic images of 3 lesions" in bullets(shown, "The data: HAM10000")[0]
    assert "50% are nevi" in bullets(shown, "The data: HAM10000")[1]

    reached = copy.deepcopy(final)
    reached["finals"][reached["procedure"]]["accuracy"]["estimate"] = 0.85  # A goal is met at equality.
    assert "goals met: accuracy" in " ".join(bullets(deck(reached, results, metadata), "Takeaway"))


def test_the_deck_says_when_the_final_model_is_a_refit(saved):
    final, results, metadata = saved
    refit = dict(final, model="x_efficientnet_lite0_ensemble_refit", validated_model="x_efficientnet_lite0_ensemble")
    plain = dict(final, model="x_efficientnet_lite0_ensemble", validated_model="x_efficientnet_lite0_ensemble")
    limits = "The shipped refit has no validation score of its own: it learnt from those images"
    assert limits in bullets(deck(refit, results, metadata), "Limitations")
    assert limits not in bullets(deck(plain, results, metadata), "Limitations")
    final_line = bullets(deck(refit, results, metadata), "One evaluation on the test split")[0]
    assert final_line.startswith("Final: EfficientNet-Lite0, an ensemble of")
    assert "refitted on training + validation" in final_line


def test_one_pdf_page_per_slide(tmp_path):
    shown = [{"title": "One", "bullets": ["a point"]}, {"title": "Two"}]
    path = slides.build_slides(shown, tmp_path / "deck.pdf")
    written = path.read_bytes()
    assert written.startswith(b"%PDF")
    assert len(re.findall(rb"/Type /Page\b(?!s)", written)) == 2


def test_the_deck_of_a_single_run_says_nothing_of_an_ensemble(saved):
    final, results, metadata = saved
    single = dict(final, model="03_efficientnet_lite0_views", validated_model="03_efficientnet_lite0_views")
    shown = deck(single, results, metadata)
    everything = " ".join(" ".join(slide.get("bullets", [])) for slide in shown)
    assert "ensemble" not in everything
    assert "final procedure" in bullets(shown, "Transfer learning against training from scratch")[2]
    assert bullets(shown, "Takeaway")[2].endswith("make reproduce")
    one_refit = dict(single, model="03_efficientnet_lite0_views_refit")  # The refit of one seed.
    assert "the run the final model refits" in bullets(deck(one_refit, results, metadata), "Takeaway")[0]
    from_scratch = dict(single, model="02_cnn_cosine", validated_model="02_cnn_cosine")  # As in a smoke run.
    first = bullets(deck(from_scratch, results, metadata), "Transfer learning against training from scratch")[0]
    assert first.startswith("EfficientNet-Lite0 from ImageNet")  # Chapter 03's backbone, not the final model's.

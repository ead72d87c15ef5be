"""skinlib.split: lesion-grouped, stratified, seeded, and identical on every rerun."""

import pandas as pd
import pytest

from skinlib import data, split


@pytest.fixture(scope="module")
def fresh_split(real_metadata):
    return split.make_split(real_metadata)


def test_committed_manifest_is_reproduced_byte_for_byte(fresh_split):
    assert split.manifest_to_csv(fresh_split) == split.MANIFEST_PATH.read_text()


def test_row_order_of_the_metadata_does_not_matter(real_metadata, fresh_split):
    shuffled = real_metadata.sample(frac=1, random_state=7)
    assert split.make_split(shuffled).equals(fresh_split)


def test_no_lesion_crosses_splits_and_sizes_are_70_15_15(fresh_split):
    lesions = fresh_split.groupby("lesion_id")["split"].nunique()
    assert (lesions == 1).all()
    shares = fresh_split["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.70, abs=0.02)
    assert shares["val"] == pytest.approx(0.15, abs=0.01)
    assert shares["test"] == pytest.approx(0.15, abs=0.01)


def test_every_class_is_stratified(fresh_split):
    table = pd.crosstab(fresh_split["dx"], fresh_split["split"], normalize="index")
    assert (table["val"].between(0.10, 0.20)).all() and (table["test"].between(0.10, 0.20)).all()


def test_committed_manifest_loads_and_matches_the_data(real_metadata):
    manifest = split.load_manifest()
    assert len(manifest) == 10015 and list(manifest.columns) == split.MANIFEST_COLUMNS
    table = split.apply_split(real_metadata, manifest)
    assert table["split"].value_counts().to_dict() == {"train": 7009, "val": 1503, "test": 1503}
    summary = split.split_summary(manifest)
    assert summary.loc["lesions", "images"] == 7470


def test_another_seed_gives_another_split(real_metadata, fresh_split):
    other = split.make_split(real_metadata, seed=1)
    assert (other["split"] != fresh_split["split"]).mean() > 0.1


def test_crossing_lesion_and_bad_manifest_are_refused(tmp_path):
    crossing = pd.DataFrame({"image_id": ["ISIC_0000001", "ISIC_0000002"], "lesion_id": ["HAM_1", "HAM_1"],
                             "dx": ["nv", "nv"], "split": ["train", "val"]})
    with pytest.raises(data.DataError, match="appear in more than one split"):
        split.save_manifest(crossing, tmp_path / "manifest.csv")
    assert not (tmp_path / "manifest.csv").exists()
    (tmp_path / "bad.csv").write_text("image_id,split\nISIC_0000001,train\n")
    with pytest.raises(data.DataError, match=r"bad.csv: missing column\(s\) \['lesion_id', 'dx'\]"):
        split.load_manifest(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError, match="python -m skinlib split --write"):
        split.load_manifest(tmp_path / "absent.csv")


def test_apply_split_refuses_images_it_does_not_know(tiny_data):
    table = data.load_metadata(tiny_data)
    with pytest.raises(data.DataError, match=r"14 image\(s\) are not in the split manifest"):
        split.apply_split(table)
    with pytest.raises(ValueError, match="at least 20 lesions"):
        split.make_split(table)
    manifest = table[["image_id", "lesion_id", "dx"]].astype(str).assign(split="train")
    manifest.loc[0, "dx"] = "vasc"
    with pytest.raises(data.DataError, match="manifest's dx differs"):
        split.apply_split(table, manifest)


def test_lesion_share_keeps_whole_lesions_per_class_and_nests():
    manifest = split.load_manifest()
    train = manifest[manifest["split"] == "train"].reset_index(drop=True)
    quarter = split.lesion_share(train, 0.25, seed=0)
    half = split.lesion_share(train, 0.5, seed=0)
    assert set(quarter) < set(half)  # nested: a larger share adds lesions
    kept = train.iloc[half]
    # Whole lesions: every image of a kept lesion is kept.
    assert train["lesion_id"].isin(kept["lesion_id"]).sum() == len(kept)
    lesions = train.drop_duplicates("lesion_id")["dx"].value_counts()
    kept_lesions = kept.drop_duplicates("lesion_id")["dx"].value_counts()
    assert ((kept_lesions / lesions).reindex(lesions.index) - 0.5).abs().max() < 0.02  # per diagnosis
    assert set(split.lesion_share(train, 0.5, seed=1)) != set(half)
    for outside in (0.0, 1.5):
        with pytest.raises(ValueError, match="share must be in"):
            split.lesion_share(train, outside)

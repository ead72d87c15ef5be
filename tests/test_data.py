"""skinlib.data: finding the data, reading and validating the metadata."""

import io

import pytest

from skinlib import data
from tests.conftest import HEADER, jpeg_bytes, make_data_set


def metadata_text(*rows, header=HEADER):
    return "\n".join([header, *rows]) + "\n"


GOOD = "HAM_0000001,ISIC_0000001,mel,histo,55,male,back"


def read(text, name="HAM10000_metadata.csv"):
    handle = io.StringIO(text)
    handle.name = name
    return data.read_metadata(handle)


def test_tidy_columns_and_missing_values():
    table = read(metadata_text(GOOD, "HAM_0000002,ISIC_0000002,nv,follow_up,,unknown,unknown"))
    assert list(table["dx"].cat.categories) == list(data.CLASSES)
    assert table["label"].tolist() == [data.CLASSES.index("mel"), data.CLASSES.index("nv")]
    assert table["malignant"].tolist() == [True, False]
    assert table.loc[1, ["age", "sex", "localization"]].isna().all()
    assert table.loc[0, "age"] == 55.0


def test_missing_column_names_file_and_column():
    with pytest.raises(data.DataError, match=r"HAM10000_metadata\.csv: missing required column\(s\) \['dx'\]"):
        read(metadata_text("HAM_1,ISIC_0000001,histo,55,male,back",
                           header="lesion_id,image_id,dx_type,age,sex,localization"))


def test_unknown_label_names_label_and_line():
    with pytest.raises(data.DataError, match=r"unknown diagnosis label\(s\) \['melanoma'\].*line\(s\) 3"):
        read(metadata_text(GOOD, "HAM_0000002,ISIC_0000002,melanoma,histo,55,male,back"))


def test_duplicate_image_ids_are_refused():
    with pytest.raises(data.DataError, match=r"duplicate image_id\(s\) \['ISIC_0000001'\] at line\(s\) 2, 3"):
        read(metadata_text(GOOD, GOOD.replace("HAM_0000001", "HAM_0000002")))


def test_malformed_id_and_lesion_with_two_diagnoses_are_refused():
    with pytest.raises(data.DataError, match="malformed image_id"):
        read(metadata_text(GOOD.replace("ISIC_0000001", "IMG_1")))
    with pytest.raises(data.DataError, match="more than one diagnosis"):
        read(metadata_text(GOOD, "HAM_0000001,ISIC_0000002,nv,histo,55,male,back"))


def test_unreadable_table_is_a_data_error(tmp_path):
    path = tmp_path / "HAM10000_metadata.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\x00\xff")
    with pytest.raises(data.DataError, match="HAM10000_metadata.csv"):
        data.read_metadata(path)


def test_find_data_dir_explains_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"SKINLIB_DATA.*python -m skinlib download"):
        data.find_data_dir()
    with pytest.raises(FileNotFoundError, match="No HAM10000_metadata.csv"):
        data.find_data_dir(tmp_path)


@pytest.mark.parametrize("layout", ["flat", "kaggle", "dataverse"])
def test_every_layout_is_found(tmp_path, monkeypatch, layout):
    folder = make_data_set(tmp_path / "ham", layout=layout)
    monkeypatch.setenv(data.ENV_VAR, str(folder))
    table = data.load_metadata()
    assert len(table) == 14
    assert table["image_path"].notna().all() and table["mask_path"].notna().all()
    report = data.check_data()
    assert report.ok and report.n_images == 14
    assert len(report.duplicate_files) == (14 if layout == "kaggle" else 0)


def test_rows_without_image_raise_or_are_skipped_with_warning(tiny_data):
    (tiny_data / "images" / "ISIC_0000003.jpg").unlink()
    with pytest.raises(data.DataError, match=r"1 row\(s\) have no image file.*ISIC_0000003"):
        data.load_metadata(tiny_data)
    with pytest.warns(UserWarning, match="ISIC_0000003.*dropped"):
        table = data.load_metadata(tiny_data, missing_images="skip")
    assert len(table) == 13
    report = data.check_data(tiny_data)
    assert report.missing_images == ["ISIC_0000003"] and not report.ok
    assert "Rows without an image: 1" in str(report)


def test_images_without_row_and_corrupt_images_are_reported(tiny_data):
    (tiny_data / "images" / "ISIC_0009999.jpg").write_bytes(jpeg_bytes())
    (tiny_data / "images" / "ISIC_0000004.jpg").write_bytes(jpeg_bytes()[:300])
    report = data.check_data(tiny_data)
    assert [p.endswith("ISIC_0009999.jpg") for p in report.orphan_images] == [True]
    assert len(report.unreadable) == 1
    path, reason = report.unreadable[0]
    assert path.endswith("ISIC_0000004.jpg") and "truncated or corrupt" in reason
    assert not report.ok


def test_real_metadata(real_metadata):
    assert len(real_metadata) == 10015
    assert real_metadata["lesion_id"].nunique() == 7470
    counts = real_metadata["dx"].value_counts()
    assert counts.to_dict() == {"nv": 6705, "mel": 1113, "bkl": 1099, "bcc": 514, "akiec": 327, "vasc": 142, "df": 115}
    assert real_metadata["malignant"].sum() == 1113 + 514 + 327
    assert real_metadata["image_path"].notna().all() and real_metadata["mask_path"].notna().all()
    assert real_metadata["image_id"].is_monotonic_increasing


def test_real_data_check_finds_no_problem(real_data_dir):
    report = data.check_data(real_data_dir, decode=False)
    assert report.ok and report.n_images == 10015 and report.n_masks == 10015
    assert report.missing_values == {"age": 57, "sex": 57, "localization": 234}

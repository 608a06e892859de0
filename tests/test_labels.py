"""Every shared data format loads through its schema; bad labels name the file and line."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from faces_keras.errors import LabelsError, SchemaError
from faces_keras.labels import load_labels, load_schema, parse_utkface_name, schema_from_dict


def test_grids_csv_loads_with_positive_characters(data_dir):
    schema = load_schema("grids")
    frame = load_labels(schema, data_dir / "grids" / "faces-labels.csv")
    assert len(frame) == 458
    assert list(frame.columns[2:]) == ["sex", "glasses", "hat", "beard", "smile"]
    raw = (data_dir / "grids" / "faces-labels.csv").read_text().splitlines()
    first = raw[1].split(";")  # 1;F;N;N;N;Y
    assert frame.loc[0, "sex"] == (1 if first[1] == "M" else 0)
    assert frame.loc[0, "smile"] == (1 if first[5] == "Y" else 0)
    males = sum(line.split(";")[1] == "M" for line in raw[1:])
    assert frame["sex"].sum() == males


def test_original_format_with_hair_column(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("face_nr;sex;hair;glasses;hat;beard\n1;F;L;N;N;N\n2;M;S;Y;N;Y\n3;M;;N;Y;N\n")
    frame = load_labels(load_schema("original"), csv)
    assert frame["hair"].tolist() == [1, 0, -1]  # L positive, empty cell missing
    assert frame["sex"].tolist() == [0, 1, 1]
    assert frame["beard"].tolist() == [0, 1, 0]


def test_bad_character_names_file_and_line(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("face_nr;sex;glasses;hat;beard;smile\n1;F;N;N;N;Y\n2;X;N;N;N;Y\n")
    with pytest.raises(LabelsError, match=r"labels\.csv:3: label 'sex' has value 'X'"):
        load_labels(load_schema("grids"), csv)


@pytest.mark.parametrize("body, message", [
    ("face_nr;sex;glasses;hat;beard\n1;F;N;N;N\n", r"labels\.csv:1: missing column\(s\) \['smile'\]"),
    ("face_nr;sex;glasses;hat;beard;smile\n1;F;N;N;N;Y\n1;M;N;N;N;Y\n", r"labels\.csv:3: duplicate face_nr '1' \(first on line 2\)"),
    ("face_nr;sex;glasses;hat;beard;smile\n1;F;N;N;Y\n", r"labels\.csv:2: 5 fields, expected 6"),
])
def test_malformed_csv_rejected(tmp_path, body, message):
    csv = tmp_path / "labels.csv"
    csv.write_text(body)
    with pytest.raises(LabelsError, match=message):
        load_labels(load_schema("grids"), csv)


def test_celeba_attributes_subset_and_derived_beard(data_dir):
    schema = load_schema("celeba")
    frame = load_labels(schema, data_dir / "celeba" / "list_attr_celeba.txt")
    assert len(frame) == 8205
    all40 = load_labels(load_schema("celeba40"), data_dir / "celeba")
    assert all40.shape[1] == 2 + 40
    # beard is derived: not No_Beard
    assert np.array_equal(frame["beard"].to_numpy(), 1 - all40["No_Beard"].to_numpy())
    assert np.array_equal(frame["glasses"].to_numpy(), all40["Eyeglasses"].to_numpy())
    assert 0.02 < frame["hat"].mean() < 0.03  # Wearing_Hat 2.4% per the data README


def test_celeba_aligned_loads(data_dir):
    frame = load_labels(load_schema("celeba_aligned"), data_dir / "celeba_aligned")
    assert len(frame) == 558
    assert frame["image"].str.contains("img_align_celeba").all()


def test_celeba_bad_value_and_missing_image(tmp_path, data_dir):
    names = (data_dir / "celeba" / "list_attr_celeba.txt").read_text().splitlines()[1]
    (tmp_path / "img_celeba").mkdir()
    bad = tmp_path / "list_attr_celeba.txt"
    values = " ".join(["1"] * 39 + ["2"])
    bad.write_text(f"1\n{names}\nmissing.jpg {values}\n")
    schema = load_schema("celeba40")
    with pytest.raises(LabelsError, match=r"list_attr_celeba\.txt:3: attribute 'Young' has value '2'"):
        load_labels(schema, bad)
    bad.write_text(f"1\n{names}\nmissing.jpg {' '.join(['1'] * 40)}\n")
    with pytest.raises(LabelsError, match=r"missing\.jpg"):
        load_labels(schema, bad)


def test_utkface_heads_and_malformed_names_skipped(data_dir, caplog):
    schema = load_schema("utkface")
    with caplog.at_level(logging.WARNING):
        frame = load_labels(schema, data_dir / "utkface" / "crop_part1")
    files = list((data_dir / "utkface" / "crop_part1").iterdir())
    assert len(frame) == len(files) - 2
    assert "skipped 2 malformed" in caplog.text and "61_1_20170109142408075" in caplog.text
    assert set(frame["race"].unique()) <= set(range(5))
    ages = frame["age"].to_numpy()
    bands = np.array(schema["age_band"].bands)
    assert np.array_equal(frame["age_band"].to_numpy(), np.searchsorted(bands, ages, side="right") - 1)
    # gender 0 is male, and male is the positive class of `sex`
    row = frame[frame["id"].str.startswith("100_1_0")].iloc[0]
    assert row["sex"] == 0


def test_utkface_strict_names_the_file(data_dir):
    with pytest.raises(LabelsError, match=r"61_1_20170109142408075\.jpg\.chip\.jpg: not a UTKFace file name"):
        load_labels(load_schema("utkface"), data_dir / "utkface" / "crop_part1", strict=True)
    with pytest.raises(LabelsError, match="25_2_0_2017.jpg"):
        parse_utkface_name("25_2_0_2017.jpg")
    assert parse_utkface_name("25_1_3_20170116174525125.jpg.chip.jpg")["race"] == "3"


def test_fer2013_folder_per_class_with_given_split(data_dir):
    schema = load_schema("fer2013")
    frame = load_labels(schema, data_dir / "fer2013")
    assert len(frame) == 32298
    assert (frame["given_split"] == "test").sum() == 3589
    disgust = schema["emotion"].classes.index("disgust")
    assert (frame["emotion"] == disgust).sum() == 436 + 56


def test_olivetti_matlab_array(data_dir):
    frame = load_labels(load_schema("olivetti"), data_dir / "olivetti" / "olivettifaces.mat")
    assert len(frame) == 400
    assert frame["person"].tolist()[:11] == [0] * 10 + [1]


def test_schema_validation_messages():
    with pytest.raises(SchemaError, match="format must be one of"):
        schema_from_dict({"format": "xml", "labels": {"a": {"kind": "binary"}}}, "bad.yaml")
    with pytest.raises(SchemaError, match="label 'a': kind must be one of"):
        schema_from_dict({"format": "delimited", "labels": {"a": {"kind": "ternary"}}}, "bad.yaml")
    with pytest.raises(SchemaError, match="no schema named 'nope'"):
        load_schema("nope")
    with pytest.raises(SchemaError, match=r"unknown label\(s\) \['wings'\]"):
        load_schema("grids").select(["wings"])


def test_schema_round_trips_through_yaml(tmp_path):
    schema = load_schema("utkface")
    schema.dump(tmp_path / "s.yaml")
    again = load_schema(tmp_path / "s.yaml")
    assert again.labels == schema.labels and again.format == schema.format

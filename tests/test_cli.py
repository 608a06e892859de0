"""The command line: help for every subcommand, clear errors, and the quickstart end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

from faces_keras.cli import build_parser, main
from faces_keras.io import read_json

SUBCOMMANDS = ["quickstart", "prepare", "dataset", "train", "thresholds", "report", "predict", "export", "evaluate",
               "embed", "compare", "ensemble", "tune"]


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    listed = parser.format_help()
    for name in SUBCOMMANDS:
        assert name in listed
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: faces-keras " + name in capsys.readouterr().out


def test_console_script_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "faces_keras", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("faces-keras ")


def test_bad_labels_file_exits_2_naming_file_and_line(tmp_path, data_dir, capsys):
    labels = tmp_path / "faces-labels.csv"
    lines = (data_dir / "grids" / "faces-labels.csv").read_text().splitlines()
    lines[7] = lines[7].replace(";N;", ";Q;", 1)
    labels.write_text("\n".join(lines) + "\n")
    code = main(["prepare", str(tmp_path / "out"), "--schema", "grids", "--labels", str(labels),
                 "--photos", str(data_dir / "grids")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{labels}:8: label" in err and "'Q'" in err
    assert not (tmp_path / "out").exists()


def test_config_file_fills_flags_and_rejects_unknown_keys(tmp_path, data_dir, capsys):
    config = tmp_path / "prepare.yaml"
    config.write_text(f"schema: grids\nlabels_source: {data_dir / 'grids' / 'faces-labels.csv'}\nsize: 32\nlimit: 40\n")
    assert main(["prepare", str(tmp_path / "ds"), "--config", str(config), "--size", "48"]) == 0
    manifest = read_json(tmp_path / "ds" / "manifest.json")
    assert manifest["settings"]["size"] == 48 and manifest["count"] == 40  # the flag wins over the file
    config.write_text("schema: grids\nsizes: 32\n")
    assert main(["prepare", str(tmp_path / "ds2"), "--config", str(config)]) == 2
    assert "unknown setting 'sizes'" in capsys.readouterr().err


def test_config_file_keys_may_be_flag_names_and_the_command_line_still_wins(tmp_path, data_dir):
    grids = data_dir / "grids"
    config = tmp_path / "prepare.toml"
    # `labels` is the flag (--labels) of the setting labels_source; `detect-max-side` a dashed flag name.
    missing = tmp_path / "missing.csv"
    config.write_text(f'schema = "grids"\nlabels = "{missing}"\nlimit = 30\ndetect-max-side = 96\n')
    assert main(["prepare", str(tmp_path / "ds"), "--config", str(config),
                 "--labels", str(grids / "faces-labels.csv")]) == 0
    assert read_json(tmp_path / "ds" / "manifest.json")["count"] == 30
    from faces_keras.cli.flags import settings_from
    from faces_keras.training.config import TrainConfig

    args = build_parser().parse_args(["train", "ds", "--head-weight", "age=0.5", "--head-weight", "race = 2"])
    assert settings_from(TrainConfig, args).head_weights == {"age": 0.5, "race": 2.0}
    args = build_parser().parse_args(["train", "ds", "--head-weight", "age"])
    with pytest.raises(Exception, match="HEAD=WEIGHT"):
        settings_from(TrainConfig, args)


@pytest.mark.backend_subset
def test_quickstart_on_real_grid_photos(tmp_path, data_dir, capsys):
    out = tmp_path / "runs" / "qs"
    code = main(["quickstart", "--photos", str(data_dir / "grids"), "--labels",
                 str(data_dir / "grids" / "faces-labels.csv"), "--out", str(out), "--epochs", "1"])
    printed = capsys.readouterr().out
    assert code == 0
    metrics = read_json(out / "metrics.json")
    test_rows = metrics["heads"]["labels"]["test"]
    assert [r["label"] for r in test_rows] == ["sex", "glasses", "hat", "beard", "smile"]
    assert all(0 <= r["f1"] <= 1 and r["n"] == test_rows[0]["n"] for r in test_rows)
    for name in ("model.keras", "thresholds.json", "schema.yaml", "config.yaml", "report.html"):
        assert (out / name).is_file(), name
    assert "precision" in printed and str(out / "report.html") in printed


def test_quickstart_with_no_arguments_draws_its_own_faces(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["quickstart", "--faces", "300", "--epochs", "1"]) == 0
    assert (tmp_path / "runs" / "quickstart-data" / "photos" / "labels.csv").is_file()
    metrics = read_json(tmp_path / "runs" / "quickstart" / "metrics.json")
    assert [r["label"] for r in metrics["heads"]["labels"]["test"]] == ["sex", "hair", "glasses", "hat", "beard"]
    assert "report: runs/quickstart/report.html" in capsys.readouterr().out


def test_dataset_merge_from_the_command_line(tmp_path, data_dir, capsys):
    assert main(["prepare", str(tmp_path / "grids"), "--schema", "grids", "--labels",
                 str(data_dir / "grids" / "faces-labels.csv"), "--limit", "50"]) == 0
    assert main(["prepare", str(tmp_path / "utk"), "--schema", "utkface", "--labels",
                 str(data_dir / "utkface" / "crop_part1"), "--limit", "40"]) == 0
    capsys.readouterr()
    assert main(["dataset", "merge", str(tmp_path / "both"), str(tmp_path / "grids"), str(tmp_path / "utk")]) == 0
    out = capsys.readouterr().out
    assert "merged 90 faces" in out
    assert "glasses" in out and "labelled on 50 of 90" in out  # UTKFace faces do not label glasses
    assert "race" in out and "labelled on 40 of 90" in out



"""Settings declared once (faces_keras.settings) and the flags generated from them (faces_keras.cli.flags)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import pytest

from faces_keras.cli.flags import ConfigFile, add_settings, settings_from
from faces_keras.errors import ConfigError
from faces_keras.settings import setting, settings_of, validate


@dataclass(frozen=True)
class Inner:
    rate: float = setting(0.1, above=0, below=1, help="a rate")


@dataclass(frozen=True)
class Example:
    size: int = setting(64, at_least=8, help="a size")
    mode: str = setting("fast", choices=("fast", "slow"), help="a mode")
    gray: bool = setting(True, flag="--color", help="grayscale unless --color")
    names: tuple[str, ...] = setting((), flag="--name", help="names (repeatable, or comma-separated)")
    weights: dict[str, float] = setting(default_factory=dict, at_least=0, flag="--weight", metavar="NAME=W",
                                        help="weights")
    momentum: float | None = setting(None, above=0, below=1, flag="--ema", const=0.99, help="optional value")
    extra: dict | None = setting(default_factory=dict, flag="--no-extra", const=None, help="switch a mapping off")
    inner: Inner = setting(default_factory=Inner, cli=False, help="nested")

    def __post_init__(self):
        validate(self)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_settings(parser, Example)
    return parser.parse_args(argv)


def test_defaults_come_from_the_declarations_and_only_typed_flags_reach_the_namespace():
    args = parse([])
    assert vars(args) == {}  # every generated flag defaults to SUPPRESS
    assert settings_from(Example, args) == Example()


def test_each_flag_kind_is_generated_from_its_type():
    args = parse(["--size", "32", "--mode", "slow", "--color", "--name", "a,b", "--name", "c",
                  "--weight", "x=0.5", "--ema", "--no-extra", "--rate", "0.3"])
    got = settings_from(Example, args)
    assert (got.size, got.mode, got.gray, got.names) == (32, "slow", False, ("a", "b", "c"))
    assert got.weights == {"x": 0.5} and got.momentum == 0.99 and got.extra is None
    assert got.inner == Inner(rate=0.3)
    assert settings_from(Example, parse(["--ema", "0.9"])).momentum == 0.9


def test_the_command_line_beats_the_config_file_which_beats_the_default(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("size: 16\nmode: slow\ninner:\n  rate: 0.2\n")
    config = ConfigFile(path)
    got = settings_from(Example, parse(["--size", "24"]), config)
    assert (got.size, got.mode, got.inner.rate) == (24, "slow", 0.2)
    config.check_all_used("example")
    path.write_text("color: true\nno-extra: true\n")  # flag names mean what the flags mean
    got = settings_from(Example, parse([]), ConfigFile(path))
    assert got.gray is False and got.extra is None
    path.write_text("gray: false\nextra: {a: 1}\n")  # setting names mean the setting's value
    got = settings_from(Example, parse([]), ConfigFile(path))
    assert got.gray is False and got.extra == {"a": 1}


def test_bad_values_name_their_source(tmp_path):
    with pytest.raises(ConfigError, match=r"^--size: 4 is out of range; expected a value >= 8$"):
        settings_from(Example, parse(["--size", "4"]))
    path = tmp_path / "c.yaml"
    path.write_text("mode: medium\n")
    with pytest.raises(ConfigError, match=r"c.yaml: mode: 'medium' is not a choice; expected one of \['fast', 'slow'\]"):
        settings_from(Example, parse([]), ConfigFile(path))
    path.write_text("sizes: 3\n")
    config = ConfigFile(path)
    settings_from(Example, parse([]), config)
    with pytest.raises(ConfigError, match="unknown setting 'sizes' for `example`"):
        config.check_all_used("example")
    with pytest.raises(ConfigError, match=r"weights\['x'\]=-1.0 \(--weight\): expected a value >= 0"):
        Example(weights={"x": -1})
    with pytest.raises(ConfigError, match="size \\(--size\\): '64' is not an integer"):
        Example(size="64")  # the Python API takes no strings for numbers


def test_every_field_of_the_suites_settings_is_declared_once():
    from faces_keras.data.prepare import PrepareConfig
    from faces_keras.data.split import SplitConfig
    from faces_keras.models.config import ModelConfig
    from faces_keras.demo import QuickstartConfig
    from faces_keras.thresholds.tune import ThresholdConfig
    from faces_keras.training.config import TrainConfig

    for cls in (PrepareConfig, SplitConfig, ModelConfig, ThresholdConfig, TrainConfig, QuickstartConfig):
        declared = {f.name for f, _ in settings_of(cls)}
        assert declared == {f.name for f in dataclasses.fields(cls)}, cls.__name__
        assert all(meta.help for _, meta in settings_of(cls)), cls.__name__

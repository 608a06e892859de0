"""Flags generated from the settings dataclasses, and config files meeting the command line.

Each setting's flag, type, default, choices and help come from its
:func:`faces_keras.settings.setting` declaration. Generated flags default to
``argparse.SUPPRESS``, so the parsed namespace holds only what was typed: a
setting is then taken from the command line, else from ``--config``, else its
declared default.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any

from faces_keras.errors import ConfigError
from faces_keras.settings import UNSET, check_value, coerce, describe_default, field_types, settings_of, split_optional


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or TOML file of settings; keys are setting names or long flag names (dashes or underscores).

    Raises:
        ConfigError: the file is missing or does not parse; names the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start}); expected YAML or TOML settings") from None
    if path.suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {_one_line(exc)}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or _one_line(exc)
            raise ConfigError(f"{where}: not valid YAML: {problem}"
                              + (f" (column {mark.column + 1})" if mark is not None else "")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file holds a mapping of setting to value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


class ConfigFile:
    """The settings of one ``--config`` file, handed out once each; leftovers are unknown keys."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.values: dict[str, Any] = read_config_file(path) if path else {}
        self.used: set[str] = set()

    def take(self, *names: str) -> tuple[str, Any] | None:
        """The first of ``names`` (setting name, then flag name) the file sets, as (key, value)."""
        for name in names:
            key = name.lstrip("-").replace("-", "_")
            if key in self.values:
                self.used.add(key)
                return key, self.values[key]
        return None

    def where(self, key: str) -> str:
        return f"{self.path}: {key}"

    def check_all_used(self, command: str) -> None:
        unknown = sorted(set(self.values) - self.used)
        if unknown:
            raise ConfigError(f"{self.path}: unknown setting {unknown[0]!r} for `{command}`")


def option(args: argparse.Namespace, config: ConfigFile, name: str, default: Any = None, *,
           aliases: tuple[str, ...] = ()) -> Any:
    """A command's own option (an output folder, a positional): the command line, else the file, else default.

    ``aliases`` are other keys the file may use for it (the flag's name when it differs).
    """
    found = config.take(name, *aliases)  # taken even when the command line wins: a known key
    value = getattr(args, name, None)
    if value is not None:
        return value
    return default if found is None else found[1]


def _flag(f: dataclasses.Field, meta) -> str:
    return meta.flag or "--" + f.name.replace("_", "-")


def _dest(prefix: str, f: dataclasses.Field) -> str:
    return f"{prefix}{f.name}"


def _scalar_type(hint: Any) -> Any:
    return split_optional(hint)[0]


def _help(meta, f: dataclasses.Field) -> str:
    default = describe_default(f)
    text = meta.help
    if isinstance(default, bool) or default in (None, "", (), {}) or meta.const is not UNSET:
        return text
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    return f"{text} (default: {shown})"


def add_settings(parser: Any, cls: type, *,
                 exclude: typing.Iterable[str] = (), prefix: str = "") -> None:
    """Add a flag for every declared setting of ``cls`` (nested settings under their own prefix).

    Args:
        parser: the subcommand's parser or an argument group of it.
        cls: a settings dataclass.
        exclude: field names the command sets itself (e.g. ``dataset``, a positional).
        prefix: the namespace prefix of a nested settings class (``"model."``).
    """
    exclude = set(exclude)
    hints = field_types(cls)
    for f, meta in settings_of(cls):
        if f.name in exclude:
            continue
        hint = _scalar_type(hints[f.name])
        if not meta.cli:
            if dataclasses.is_dataclass(hint):
                add_settings(parser, hint, exclude=exclude, prefix=f"{prefix}{f.name}.")
            continue
        kwargs: dict[str, Any] = {"dest": _dest(prefix, f), "default": argparse.SUPPRESS, "help": _help(meta, f)}
        origin = typing.get_origin(hint)
        default = describe_default(f)
        if hint is bool:
            kwargs["action"] = "store_false" if default else "store_true"
        elif meta.const is not UNSET and hint in (int, float, str):
            kwargs.update(nargs="?", const=meta.const, type=hint, metavar=meta.metavar or f.name.upper())
        elif meta.const is not UNSET:
            kwargs.update(action="store_const", const=meta.const)
        elif origin in (dict, tuple):
            kwargs.update(action="append", metavar=meta.metavar or f.name.upper())
        else:
            kwargs.update(type=hint if hint in (int, float) else str, metavar=meta.metavar or f.name.upper())
            if meta.choices is not None:
                kwargs["choices"] = list(meta.choices)
                kwargs.pop("metavar")
        parser.add_argument(_flag(f, meta), **kwargs)


def _pairs(items: list[str], flag: str, metavar: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, _, value = str(item).partition("=")
        if not name.strip() or not value.strip():
            raise ConfigError(f"{flag} {item!r}: expected {metavar}, e.g. {metavar.split('=')[0].lower()}=VALUE")
        pairs[name.strip()] = value.strip()
    return pairs


def _from_command_line(value: Any, hint: Any, f, meta) -> Any:
    origin = typing.get_origin(_scalar_type(hint))
    if origin is dict and isinstance(value, list):
        return _pairs(value, _flag(f, meta), meta.metavar or "NAME=VALUE")
    if origin is tuple and isinstance(value, list):
        return tuple(part.strip() for item in value for part in str(item).split(",") if part.strip())
    return value


def settings_from(cls: type, args: argparse.Namespace, config: ConfigFile | None = None, *,
                  base: Any = None, prefix: str = "", exclude: typing.Iterable[str] = (),
                  **given: Any) -> Any:
    """Build ``cls`` from the command line, then the config file, then ``base`` or the declared defaults.

    Args:
        cls: a settings dataclass whose flags :func:`add_settings` added.
        args: the parsed namespace.
        config: the ``--config`` file's settings.
        base: settings to start from instead of the defaults (a run's config).
        prefix: as given to :func:`add_settings`.
        exclude: fields left to ``given`` or the defaults.
        **given: fields the command sets itself (a positional dataset, ...).

    Returns:
        The settings object, validated.

    Raises:
        ConfigError: a value of the wrong kind; names the file and key, or the flag.
    """
    config = config or ConfigFile(None)
    hints = field_types(cls)
    values: dict[str, Any] = {}
    exclude = set(exclude) | set(given)
    for f, meta in settings_of(cls):
        if f.name in exclude:
            continue
        hint = hints[f.name]
        nested = _scalar_type(hint)
        if not meta.cli and dataclasses.is_dataclass(nested):
            inner_base = getattr(base, f.name) if base is not None else None
            found = config.take(f.name)  # a nested mapping, as in a run's config.yaml
            if found is not None and isinstance(found[1], dict):
                inner_base = _from_mapping(nested, found[1], config.where(f.name), inner_base)
            values[f.name] = settings_from(nested, args, config, base=inner_base, prefix=f"{prefix}{f.name}.")
            continue
        dest = _dest(prefix, f)
        found = config.take(f.name, _flag(f, meta)) if meta.cli else config.take(f.name)
        if meta.cli and hasattr(args, dest):  # the command line wins over the file
            flag = _flag(f, meta)
            values[f.name] = check_value(f, meta, hint, _from_command_line(getattr(args, dest), hint, f, meta),
                                         flag, text=True)
        elif found is not None:
            key, value = found
            if key != f.name:  # the file used the flag's name: it means what the flag means
                value = _flag_meaning(f, meta, hint, value, config.where(key))
            values[f.name] = check_value(f, meta, hint, value, config.where(key), text=True)
    values.update(given)
    try:
        if base is not None:
            return dataclasses.replace(base, **values)
        return cls(**values)
    except ConfigError as exc:
        if config.path is not None and not str(exc).startswith(str(config.path)):
            raise ConfigError(f"{config.path}: {exc}") from None
        raise


def _flag_meaning(f: dataclasses.Field, meta, hint: Any, value: Any, where: str) -> Any:
    """``no-augmentation: true`` in a file sets what ``--no-augmentation`` sets (the flag's sense)."""
    scalar = _scalar_type(hint)
    if scalar is bool and describe_default(f) is True:  # a store_false flag (--color, --no-augmentation)
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not a switch; expected true or false")
        return not value
    if meta.const is not UNSET and scalar not in (int, float, str):  # a store_const flag
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not a switch; expected true or false")
        return meta.const if value else describe_default(f)
    return value


def _from_mapping(cls: type, mapping: dict[str, Any], where: str, base: Any) -> Any:
    """A nested settings mapping (``model:`` in a config file) converted field by field."""
    hints = field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in mapping.items():
        name = str(key).replace("-", "_")
        if name not in names:
            raise ConfigError(f"{where}.{key}: unknown setting of {cls.__name__}")
        values[name] = coerce(value, hints[name], f"{where}.{key}", text=True) if name in hints else value
    return dataclasses.replace(base, **values) if base is not None else cls(**values)

"""Settings declared once: each field's default, constraint and help, validated in one place.

The suite's settings are dataclasses (``TrainConfig``, ``PrepareConfig``,
``TuneConfig``, ...). Each field is declared with :func:`setting`, which records
its help text and its constraint (choices, bounds) beside its default, the way
scikit-learn declares ``_parameter_constraints``. :func:`validate` checks a
settings object against those declarations and against the field types, and
is the one place a value is judged; ``__post_init__`` calls it, and adds only
the checks that relate several fields. The command line (``faces_keras.cli``)
generates its flags, defaults, choices and help from the same declarations.

Nothing here imports Keras.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Callable

from faces_keras.errors import ConfigError

__all__ = ["UNSET", "Setting", "setting", "validate", "check_value", "settings_of", "field_types", "describe_default"]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "no const": None is a const of its own (``--no-augmentation`` sets None)


@dataclass(frozen=True)
class Setting:
    """What :func:`setting` records about one field (in ``field.metadata["setting"]``).

    Attributes:
        help: one line for ``--help`` and the docs.
        choices: the allowed values, or None.
        at_least / above / at_most / below: numeric bounds (inclusive / exclusive).
        flag: the long flag (default: ``--`` + the field name with dashes);
            None with ``cli=False``.
        metavar: the value's name in ``--help``.
        cli: whether the command line offers this setting as a flag.
        const: the value a bare flag stands for: with a value type, the flag's
            value is optional (``--ema`` alone means 0.99); for a mapping or
            None-able field it takes no value (``--no-augmentation`` sets None).
        each: a check of each item of a tuple or each value of a mapping
            (``each="objective"`` checks against ``choices``).
    """

    help: str
    choices: tuple[Any, ...] | None = None
    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None
    flag: str | None = None
    metavar: str | None = None
    cli: bool = True
    const: Any = UNSET
    each_choices: tuple[Any, ...] | None = None

    def bounds_text(self) -> str:
        low = f">= {self.at_least:g}" if self.at_least is not None else (
            f"> {self.above:g}" if self.above is not None else "")
        high = f"<= {self.at_most:g}" if self.at_most is not None else (
            f"< {self.below:g}" if self.below is not None else "")
        return " and ".join(t for t in (low, high) if t)


def setting(default: Any = MISSING, *, help: str, default_factory: Callable[[], Any] | Any = MISSING,
            choices: typing.Iterable[Any] | None = None, at_least: float | None = None,
            above: float | None = None, at_most: float | None = None, below: float | None = None,
            flag: str | None = None, metavar: str | None = None, cli: bool = True, const: Any = UNSET,
            each_choices: typing.Iterable[Any] | None = None) -> Any:
    """A dataclass field whose default, constraint and help are declared together.

    Args:
        default: the default value (or give ``default_factory``).
        help: one line describing the setting.
        default_factory: builds the default (for lists, dicts, nested settings).
        choices: allowed values.
        at_least, above, at_most, below: numeric bounds.
        flag: the long flag when it differs from the field name.
        metavar: the value's name in ``--help``.
        cli: offer the setting on the command line.
        const: the value a bare optional-value flag stands for.
        each_choices: allowed values of each item (tuples) or each value (mappings).

    Returns:
        A :func:`dataclasses.field`.
    """
    meta = Setting(help=help, choices=tuple(choices) if choices is not None else None, at_least=at_least,
                   above=above, at_most=at_most, below=below, flag=flag, metavar=metavar, cli=cli, const=const,
                   each_choices=tuple(each_choices) if each_choices is not None else None)
    kwargs: dict[str, Any] = {"metadata": {"setting": meta}}
    if default_factory is not MISSING:
        kwargs["default_factory"] = default_factory
    else:
        kwargs["default"] = default
    return field(**kwargs)


def settings_of(cls_or_obj: Any) -> list[tuple[dataclasses.Field, Setting]]:
    """The fields declared with :func:`setting`, with their declarations, in order."""
    return [(f, f.metadata["setting"]) for f in dataclasses.fields(cls_or_obj) if "setting" in f.metadata]


_HINTS: dict[type, dict[str, Any]] = {}


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field (``from __future__ import annotations`` leaves strings)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def describe_default(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _flag_of(f: dataclasses.Field, meta: Setting) -> str:
    return meta.flag or "--" + f.name.replace("_", "-")



_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def split_optional(hint: Any) -> tuple[Any, bool]:
    """``(X, True)`` for a hint ``X | None``, else ``(hint, False)``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        return (args[0] if len(args) == 1 else hint), optional
    return hint, False


def coerce(value: Any, hint: Any, where: str, text: bool = False) -> Any:
    """``value`` as the type ``hint`` declares, converting only without loss.

    Integers stand for floats, lists for tuples. With ``text`` (values read from
    a config file or typed on a command line), numeric strings stand for numbers
    too: YAML 1.1 reads ``1e-3`` as a string. Anything else of the wrong kind
    raises :class:`ConfigError` naming ``where`` and what was expected.
    """
    hint, optional = split_optional(hint)
    if value is None:
        if optional or hint is Any:
            return None
        raise ConfigError(f"{where}: expected {_expected(hint)}, not nothing")
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {value!r} is not a switch; expected true or false")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not an integer; expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and text:
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{where}: {value!r} is not an integer; expected an integer")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not a number; expected a number")
        if isinstance(value, str) and text:
            try:
                value = float(value.strip())
            except ValueError:
                pass
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise ConfigError(f"{where}: {value!r} is not finite; expected a finite number")
            return float(value)
        raise ConfigError(f"{where}: {value!r} is not a number; expected a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: {value!r} is not a string; expected a string")
    if origin is tuple:
        item_hint = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {value!r} is not a list; expected a list")
        return tuple(coerce(v, item_hint, f"{where}[{i}]", text) for i, v in enumerate(value))
    if origin is dict:
        key_hint, value_hint = (typing.get_args(hint) or (str, Any))
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {value!r} is not a mapping; expected NAME: VALUE pairs")
        return {coerce(k, key_hint, where, text): coerce(v, value_hint, f"{where}[{k!r}]", text)
                for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if isinstance(value, dict) and hasattr(hint, "from_dict"):
            return hint.from_dict(value)
        raise ConfigError(f"{where}: expected a mapping of {hint.__name__} settings")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {_expected(hint)}")
    return value


def _expected(hint: Any) -> str:
    return _NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def _check_bounds(value: Any, meta: Setting, where: str, shown: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    bad = ((meta.at_least is not None and value < meta.at_least)
           or (meta.above is not None and value <= meta.above)
           or (meta.at_most is not None and value > meta.at_most)
           or (meta.below is not None and value >= meta.below))
    if bad:
        said = "" if shown else f"{value!r} is out of range; "
        raise ConfigError(f"{where}: {said}expected a value {meta.bounds_text()}")


def check_value(f: dataclasses.Field, meta: Setting, hint: Any, value: Any, where: str,
                text: bool = False) -> Any:
    """One setting's value converted (:func:`coerce`) and checked against its declaration.

    Args:
        f: the dataclass field.
        meta: its :class:`Setting`.
        hint: its resolved type.
        value: the value to check.
        where: how messages name the value's source (``--epochs``, ``file.yaml: epochs``).
        text: the value was typed or read from a file (numeric strings allowed).

    Returns:
        The value, converted.

    Raises:
        ConfigError: naming ``where``, the value and what was expected.
    """
    return _check(f, meta, hint, value, where, text, shown=False)


def _check(f, meta: Setting, hint: Any, value: Any, where: str, text: bool, shown: bool,
           flag: str = "") -> Any:
    # shown: messages name the field as ``name=value (--flag)`` (the Python API);
    # else as their source followed by the value (a flag, a config file's key).
    value = coerce(value, hint, f"{where}{flag}" if shown else where, text=text)
    if value is None:
        return value
    head = f"{where}={value!r}{flag}" if shown else where
    said = "" if shown else f"{value!r} is not a choice; "
    if meta.choices is not None and value not in meta.choices:
        raise ConfigError(f"{head}: {said}expected one of {list(meta.choices)}")
    _check_bounds(value, meta, head, shown)
    if isinstance(value, (dict, tuple)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            item_head = f"{where}[{key!r}]={item!r}{flag}" if shown else f"{where}[{key!r}]"
            if meta.each_choices is not None and item not in meta.each_choices:
                said = "" if shown else f"{item!r} is not a choice; "
                raise ConfigError(f"{item_head}: {said}expected one of {list(meta.each_choices)}")
            _check_bounds(item, meta, item_head, shown)
    return value


def validate(obj: Any) -> None:
    """Check (and losslessly convert) every declared field of a settings dataclass.

    Args:
        obj: a dataclass instance whose fields were declared with :func:`setting`.

    Raises:
        ConfigError: one line naming the field, its flag, the value, and what was expected.
    """
    hints = field_types(type(obj))
    for f, meta in settings_of(obj):
        flag = f" ({_flag_of(f, meta)})" if meta.cli else ""
        value = _check(f, meta, hints.get(f.name, Any), getattr(obj, f.name), f.name, False, True, flag)
        object.__setattr__(obj, f.name, value)

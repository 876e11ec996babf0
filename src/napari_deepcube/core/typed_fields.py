"""Settings read back from a file, checked against the dataclass that declares them.

A model file carries its settings as JSON; an edited or damaged file can put
a string where a number belongs. :func:`typed_values` turns such a record into
the keyword arguments of the dataclass, or says which field is wrong, so that
the dataclass's own range checks only ever see values of the right type.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

from .errors import InputError


def typed_values(cls: type, values: Any, what: str) -> dict[str, Any]:
    """The keyword arguments of dataclass ``cls`` from a JSON record.

    Parameters
    ----------
    cls
        A dataclass whose fields are annotated with ``int``, ``float``,
        ``bool``, ``str``, ``tuple[int, ...]`` or one of these or None.
    values
        The record as read (a JSON object).
    what
        What the record is, for messages ("the model's settings").

    Raises
    ------
    InputError
        If ``values`` is not a mapping, names an unknown field, lacks a field
        without a default, or holds a value of the wrong type or a non-finite number.
    """
    if not isinstance(values, Mapping):
        raise InputError(f"{what} are not a record of named values")
    hints = get_type_hints(cls)
    known = {field.name for field in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise InputError(f"{what} name unknown settings {sorted(unknown)}; known ones are {sorted(known)}")
    required = {field.name for field in fields(cls) if field.default is MISSING}
    required -= {field.name for field in fields(cls) if field.default_factory is not MISSING}
    missing = required - set(values)
    if missing:
        raise InputError(f"{what} lack the settings {sorted(missing)}")
    return {name: _typed(hints[name], value, f"{what}: {name}") for name, value in values.items()}


def shown(value: Any, limit: int = 40) -> str:
    """A short one-line repr of a value read from a file, for a message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _typed(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        (single,) = [option for option in options if option is not type(None)]
        return _typed(single, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise InputError(f"{where} must be a list, got {shown(value)}")
        return tuple(_typed(get_args(hint)[0], item, where) for item in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false, got {shown(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where} must be a whole number, got {shown(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(f"{where} must be a finite number, got {shown(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"{where} must be text, got {shown(value)}")
        return value
    raise NotImplementedError(f"no check for settings of type {hint!r} ({where})")

"""Read an inventory file: YAML (safe loader) -> validated, frozen Inventory.

Every failure is one InventoryError with a one-line message `FILE: KEY.PATH: problem`;
pydantic's error records are translated here and never shown as they are.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.error import MarkedYAMLError

from hapair.errors import InventoryError
from hapair.inventory.fields import LoadContext, Loc, LocatedError, key_path
from hapair.inventory.model import Inventory


def load_inventory(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> Inventory:
    """Load and validate the inventory at `path`. Warnings: `inventory.warnings`.

    Relative paths inside (SSH key, secret files) start at the file's directory; `env`
    (default: os.environ) is where `{env: NAME}` secrets are read.
    """
    source = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InventoryError(source, "", "file not found") from None
    except IsADirectoryError:
        raise InventoryError(source, "", "is a directory, not a file") from None
    except OSError as exc:
        raise InventoryError(source, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(source, "", f"not UTF-8 text (byte {exc.start})") from None
    base_dir = Path(path).absolute().parent
    return parse_inventory(text, source=source, base_dir=base_dir, env=env)


def parse_inventory(
    text: str,
    *,
    source: str = "inventory.yaml",
    base_dir: Path,
    env: Mapping[str, str] | None = None,
) -> Inventory:
    """Validate inventory YAML text; `source` names it in messages."""
    data = parse_yaml(text, source)
    ctx = LoadContext(
        base_dir=base_dir, source=source, env=dict(os.environ if env is None else env)
    )
    try:
        return Inventory.model_validate(data, context=ctx)
    except ValidationError as exc:
        loc, problem = translate(exc.errors()[0])
        raise InventoryError(source, key_path_of(loc), problem) from None


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as exc:
        raise InventoryError(source, "", _yaml_problem(exc)) from None
    except YAMLError as exc:
        raise InventoryError(source, "", f"invalid YAML: {_one_line(str(exc))}") from None
    if data is None:
        raise InventoryError(source, "", "empty file (expected a mapping: version, cluster, ...)")
    if not isinstance(data, dict):
        raise InventoryError(source, "", f"top level must be a mapping, got {_type_name(data)}")
    return data


_DUP_KEY = re.compile(r'found duplicate key "(.*?)" with value')


def _yaml_problem(exc: MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = exc.problem or exc.context or "unreadable"
    dup = _DUP_KEY.search(problem)
    if dup:  # ruamel's message quotes both values; they could be anything, so drop them
        return f"invalid YAML{where}: duplicate key {dup.group(1)!r}"
    return f"invalid YAML{where}: {_one_line(problem)}"


# --- pydantic errors -> (key path, one-line problem) ------------------------------------------

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
}


def translate(err: Mapping[str, Any]) -> tuple[Loc, str]:
    """One pydantic error record -> (location, problem). Never echoes a whole input."""
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind in ("value_error", "assertion_error"):
        cause = ctx.get("error")
        if isinstance(cause, LocatedError):
            return (*loc, *cause.loc), cause.problem
        return loc, _one_line(str(cause) if cause is not None else err["msg"])
    if kind == "missing":
        return loc, "required key is missing"
    if kind in ("extra_forbidden", "invalid_key"):  # invalid_key: a key that is not a string
        return loc, _unknown_key(loc)
    if kind in _EXPECTED:
        return loc, f"expected {_EXPECTED[kind]}, got {_describe(value)}"
    if kind == "literal_error":
        return loc, f"{_short(value)} is not one of {ctx.get('expected')}"
    if kind == "too_short":
        return loc, f"needs at least {ctx.get('min_length')} item(s)"
    return loc, _one_line(str(err["msg"]))


def key_path_of(loc: Loc) -> str:
    # An unknown key that is not a string (YAML `1: x`) is still shown as a key.
    if loc and isinstance(loc[-1], int) and _is_mapping_loc(loc[:-1]):
        parent = key_path(loc[:-1])
        return f"{parent}.{loc[-1]}" if parent else str(loc[-1])
    return key_path(loc)


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return f"unknown key {key!r}"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
    return f"unknown key {key!r} ({hint})"


def _is_mapping_loc(loc: Loc) -> bool:
    return _model_at(loc) is not None


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc`, or None."""
    current: Any = Inventory
    for part in loc:
        if isinstance(part, str):
            if not (isinstance(current, type) and issubclass(current, BaseModel)):
                return None
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = _unwrap(field.annotation)
        else:
            if get_origin(current) is not tuple:
                return None
            current = _unwrap(get_args(current)[0])
    is_model = isinstance(current, type) and issubclass(current, BaseModel)
    return current if is_model else None


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and `X | None` down to the interesting type."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation


def _type_name(value: Any) -> str:
    match value:
        case bool():
            return "a boolean"
        case int():
            return "an integer"
        case float():
            return "a number"
        case str():
            return "a string"
        case None:
            return "an empty value"
        case list() | tuple():
            return "a list"
        case dict():
            return "a mapping"
        case datetime() | date():
            return "a date"
    return type(value).__name__


def _describe(value: Any) -> str:
    if isinstance(value, bool | int | float | str):
        return f"{_type_name(value)} {_short(value)}"
    return _type_name(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())

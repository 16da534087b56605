"""pydantic ``ValidationError`` -> diagnostics with YAML field paths and lines. Pure; used by the
loader when a manifest does not fit its schema.

pydantic reports locations with the aliases the user wrote (``httpStatus``) plus, for unions,
the names of union members (``int``, ``str``) that are not part of the document; walking the raw
data along the location keeps only the real part of the path.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from canarymesh.api.diagnostics import Diagnostic, make, render_value
from canarymesh.api.fieldpaths import format_path
from canarymesh.api.objects import FieldPath
from canarymesh.api.source import Source

__all__ = ["line_of", "schema_diagnostics", "without_bad_fields"]

_EXPECTED = {
    "int": "an integer",
    "string": "a string",
    "str": "a string",
    "bool": "true or false",
    "float": "a number",
    "tuple": "a list",
    "list": "a list",
    "dict": "a mapping",
    "model": "a mapping",
    "model_attributes": "a mapping",
}


def schema_diagnostics(
    error: ValidationError,
    raw: object,
    prefix: FieldPath,
    lines: Mapping[FieldPath, int],
    source: Source,
    label: str | None,
    group: str | None = None,
) -> list[Diagnostic]:
    """One diagnostic per distinct problem; type errors of union members at one path merge.
    ``group`` is the document's API group (Istio's kinds get Istio's code too)."""
    expected_at: dict[FieldPath, list[str]] = {}
    values: dict[FieldPath, object] = {}
    found: list[Diagnostic] = []

    def emit(code: str, path: FieldPath, value: str | None = None, **args: object) -> None:
        full = (*prefix, *path)
        line = line_of(lines, full, source.line)
        found.append(
            make(code, file=source.file, line=line, resource=label,
                 field=format_path(full), value=value, api_group=group, **args)
        )  # fmt: skip

    for item in error.errors():
        kind = item["type"]
        path = _real_path(raw, item["loc"], keep_last=kind == "missing")
        if kind == "extra_forbidden":
            emit("CM0101", path)
        elif kind == "missing":
            emit("CM0104", path)
        elif kind == "duration_type":
            emit("CM0107", path, render_value(item["input"]))
        elif kind == "literal_error":
            choices = str(item.get("ctx", {}).get("expected", "")).replace("'", "")
            choices = choices.replace(" or ", ", ")
            emit("CM0105", path, render_value(item["input"]), choices=choices)
        else:
            expected_at.setdefault(path, []).append(_expected(kind, item["msg"]))
            values[path] = item["input"]
    for path, expectations in expected_at.items():
        expected = " or ".join(dict.fromkeys(expectations))
        emit("CM0102", path, render_value(values[path]), expected=expected)
    return found


def _expected(kind: str, msg: str) -> str:
    for suffix in ("_type", "_parsing", "_from_float"):
        if kind.endswith(suffix):
            base = kind.removesuffix(suffix)
            if base in _EXPECTED:
                return _EXPECTED[base]
    return msg[0].lower() + msg[1:] if msg else "valid"


def _real_path(raw: object, loc: Sequence[int | str], *, keep_last: bool) -> FieldPath:
    """The prefix of ``loc`` that exists in ``raw`` (plus a missing last key, if asked)."""
    path: list[str | int] = []
    current = raw
    for index, part in enumerate(loc):
        in_mapping = isinstance(current, dict) and isinstance(part, str) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_mapping or in_list:
            current = current[part]  # type: ignore[index]
        else:
            if keep_last and index == len(loc) - 1 and isinstance(current, dict):
                path.append(part)
            break
        path.append(part)
    return tuple(path)


def line_of(lines: Mapping[FieldPath, int], path: FieldPath, default: int) -> int:
    """The line of ``path``, or of its nearest written ancestor, or ``default``."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return default


def without_bad_fields(
    error: ValidationError, raw: object
) -> tuple[object, tuple[FieldPath, ...]] | None:
    """``raw`` minus the mapping keys that hold the schema errors, and the paths removed.

    Lets validation still check the rest of a document that has, say, one quoted number, so the
    user sees every problem at once. None when removing keys cannot help: a required field is
    missing, or the bad value is a list item (removing it would shift the indexes of the rest).
    """
    removed: list[FieldPath] = []
    for item in error.errors():
        if item["type"] == "missing":
            return None
        path = _real_path(raw, item["loc"], keep_last=False)
        if not path or not isinstance(path[-1], str):
            return None
        removed.append(path)
    repaired = copy.deepcopy(raw)
    for path in dict.fromkeys(removed):
        parent = repaired
        for part in path[:-1]:
            parent = parent[part]  # type: ignore[index]
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return repaired, tuple(dict.fromkeys(removed))

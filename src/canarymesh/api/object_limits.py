"""The limits the Kubernetes API server puts on any object, whatever its kind. Pure; called by
the loader on every document (and every item of a List) before it is typed, so that objects the
local mesh only stores (an EnvoyFilter, a ConfigMap) are held to them too.

* the object as JSON: at most :data:`~canarymesh.api.limits.MAX_OBJECT_BYTES` (CM0705);
* ``metadata.annotations``, keys plus values: at most ``MAX_ANNOTATIONS_BYTES`` (CM0706);
* numbers JSON can carry: integers within 64 bits, no NaN or infinity (CM0103).

Each problem names the field that holds it; for the size of the whole object, the field that
holds most of it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from canarymesh.api.limits import (
    MAX_ANNOTATIONS_BYTES,
    MAX_INT64,
    MAX_OBJECT_BYTES,
    size_args,
)
from canarymesh.api.objects import FieldPath

__all__ = ["LimitProblem", "object_problems"]

# A run of digits long enough to be beyond 64 bits somewhere in the JSON text (a cheap test
# before walking the object).
_LONG_NUMBER = re.compile(r"\d{19}")


@dataclass(frozen=True, slots=True)
class LimitProblem:
    code: str
    path: FieldPath
    value: object | None = None
    args: dict[str, str] = field(default_factory=dict)


def object_problems(data: Mapping[str, object]) -> list[LimitProblem]:
    """Every limit ``data`` breaks; [] for an object the API server would store."""
    found = _annotations(data)
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or infinity
        found.extend(_numbers(data))
        return found
    size = len(text.encode("utf-8"))
    # Annotations too large make the object too large too; say it once, about the cause.
    if size > MAX_OBJECT_BYTES and not found:
        args = size_args(size, MAX_OBJECT_BYTES)
        found.append(LimitProblem("CM0705", _largest_path(data), None, args))
    if _LONG_NUMBER.search(text):
        found.extend(_numbers(data))
    return found


def _annotations(data: Mapping[str, object]) -> list[LimitProblem]:
    metadata = data.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(annotations, Mapping) or not annotations:
        return []
    sizes = {
        str(key): len(str(key).encode("utf-8")) + len(str(value).encode("utf-8"))
        for key, value in annotations.items()
    }
    total = sum(sizes.values())
    if total <= MAX_ANNOTATIONS_BYTES:
        return []
    path: FieldPath = ("metadata", "annotations")
    biggest = max(sizes, key=lambda key: sizes[key])
    if sizes[biggest] * 2 > total:
        path = (*path, biggest)
    args = size_args(total, MAX_ANNOTATIONS_BYTES)
    return [LimitProblem("CM0706", path, None, args)]


def _numbers(data: Mapping[str, object]) -> list[LimitProblem]:
    found: list[LimitProblem] = []
    for path, value in _leaves(data):
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and not -MAX_INT64 - 1 <= value <= MAX_INT64:
            expected = "an integer of at most 64 bits (JSON numbers the API server can read)"
            found.append(LimitProblem("CM0103", path, value, {"expected": expected}))
        elif isinstance(value, float) and not math.isfinite(value):
            expected = "a finite number (JSON has no NaN or infinity)"
            found.append(LimitProblem("CM0103", path, value, {"expected": expected}))
    return found


def _leaves(data: object) -> Iterator[tuple[FieldPath, object]]:
    stack: list[tuple[FieldPath, object]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, Mapping):
            stack.extend(((*path, str(k)), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))
        else:
            yield path, value


def _largest_path(data: object, depth: int = 4) -> FieldPath:
    """The field that holds more than half of ``data`` as JSON, followed down ``depth`` levels."""
    path: list[str | int] = []
    current = data
    for _ in range(depth):
        children: list[tuple[str | int, object]]
        if isinstance(current, Mapping):
            children = [(str(k), v) for k, v in current.items()]
        elif isinstance(current, list):
            children = list(enumerate(current))
        else:
            break
        if not children:
            break
        sizes = [(len(json.dumps(v, default=str)), k, v) for k, v in children]
        total = sum(size for size, _, _ in sizes)
        size, key, value = max(sizes, key=lambda item: item[0])
        if size * 2 <= total:
            break
        path.append(key)
        current = value
    return tuple(path)

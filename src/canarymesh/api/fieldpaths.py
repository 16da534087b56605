"""Field paths as users read them: ``spec.http[0].route[1].weight``. Pure; used by diagnostics.

Map keys that are not plain identifiers are quoted, so label keys stay readable:
``metadata.labels["app.kubernetes.io/name"]``.
"""

from __future__ import annotations

import json
import re

from canarymesh.api.objects import FieldPath

__all__ = ["format_path", "parse_path"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_path(path: FieldPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def parse_path(text: str) -> FieldPath:
    """The path :func:`format_path` printed as ``text`` (``spec.steps[1].pause``); a part it
    cannot read ends the path there."""
    parts: list[str | int] = []
    at = 0
    while at < len(text):
        found = _PART.match(text, at)
        if found is None:
            break
        name, index, quoted = found.groups()
        parts.append(name if name is not None else int(index) if index else json.loads(quoted))
        at = found.end()
    return tuple(parts)

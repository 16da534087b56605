"""Guards between the YAML parser and the objects built from it: nesting, aliases, tags, keys.

Pure; used by :mod:`canarymesh.api.yamldocs`. libyaml composes a document into a node graph in
which an alias is the very node of its anchor, so a "billion laughs" bomb is a few dozen nodes
until something walks it. :func:`measure` walks each node once (remembering the size of what
it has seen) and adds up what aliases and merge keys would repeat, so the bomb is refused in
milliseconds, before :class:`yamldocs._Converter` would spend a minute and gigabytes expanding
it. It also refuses aliases inside their own anchor (a cycle), and (with the converter, which
calls the same checks as it goes) nesting deeper than :data:`~canarymesh.api.limits.MAX_DEPTH`,
tags YAML's JSON subset has no meaning for, and keys that are not scalars.

:func:`peek_label` and :func:`largest_field` read a document's text without parsing it, to name
the object and the field of a document too large to parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from canarymesh.api.limits import MAX_ALIAS_BYTES, MAX_ALIAS_VALUES, MAX_DEPTH, format_size
from canarymesh.api.objects import FieldPath, raw_label

__all__ = [
    "Refusal",
    "Refused",
    "check_depth",
    "check_key",
    "check_tag",
    "largest_field",
    "measure",
    "peek_label",
]

_YAML = "tag:yaml.org,2002:"
_MERGE = _YAML + "merge"
# What sigs.k8s.io/yaml turns into JSON; !!set, !!omap, !!python/... and local tags (!foo)
# have no JSON meaning.
_STANDARD_TAGS = frozenset(
    _YAML + name
    for name in ("str", "int", "float", "bool", "null", "timestamp", "binary", "map", "seq")
) | {_MERGE}
# Bytes a value adds to the JSON form beyond its text: quotes and a separator.
_OVERHEAD = 3


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a composed document is not built: a code, the 0-based line in the document's text,
    the field path where it happened, and the message's arguments."""

    code: str
    line: int
    path: FieldPath
    args: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """Raised by the checks below (and by the converter that shares them)."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


@dataclass(slots=True)
class _Frame:
    node: Node
    path: FieldPath
    depth: int
    children: list[tuple[Node, FieldPath, int]]
    values: int = 1
    size: int = 2
    next: int = 0


@dataclass(slots=True)
class _Walk:
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    open: set[int] = field(default_factory=set)
    extra_values: int = 0
    extra_bytes: int = 0


def measure(root: Node) -> Refusal | None:
    """The first reason not to build ``root``, or None when it is safe to convert.

    Only a document with anchors needs it (aliases need an anchor): without one, nothing is
    repeated, and the converter's own checks (depth, tags, keys) suffice.
    """
    walk = _Walk()
    try:
        check_tag(root, ())
        if not isinstance(root, MappingNode | SequenceNode):
            return None
        stack = [_frame(root, (), 1)]
        walk.open.add(id(root))
        while stack:
            frame = stack[-1]
            if frame.next == len(frame.children):
                stack.pop()
                walk.open.discard(id(frame.node))
                walk.sizes[id(frame.node)] = (frame.values, frame.size)
                if stack:
                    stack[-1].values += frame.values
                    stack[-1].size += frame.size
                continue
            child, path, line = frame.children[frame.next]
            frame.next += 1
            values, size = _visit(walk, child, path, line, frame.depth, stack)
            frame.values += values
            frame.size += size
    except Refused as refused:
        return refused.refusal
    return None


def _visit(
    walk: _Walk, child: Node, path: FieldPath, line: int, depth: int, stack: list[_Frame]
) -> tuple[int, int]:
    """What ``child`` adds to its parent now (0, 0 when it is pushed to be walked later)."""
    key = id(child)
    if key in walk.open:
        problem = "an alias refers to a node that contains it (a cycle)"
        raise Refused(Refusal("CM0013", line, path, {"problem": problem}))
    seen = walk.sizes.get(key)
    if seen is not None:  # an alias (or merge key) repeats a node already measured
        walk.extra_values += seen[0]
        walk.extra_bytes += seen[1]
        if walk.extra_values > MAX_ALIAS_VALUES:
            raise Refused(Refusal("CM0704", line, path, {"limit": f"{MAX_ALIAS_VALUES:,} values"}))
        if walk.extra_bytes > MAX_ALIAS_BYTES:
            limit = format_size(MAX_ALIAS_BYTES)
            raise Refused(Refusal("CM0704", line, path, {"limit": limit}))
        return seen
    check_tag(child, path)
    if isinstance(child, ScalarNode):
        walk.sizes[key] = (1, len(child.value) + _OVERHEAD)
        return walk.sizes[key]
    check_depth(depth + 1, child.start_mark.line, path)
    stack.append(_frame(child, path, depth + 1))
    walk.open.add(key)
    return 0, 0


def _frame(node: Node, path: FieldPath, depth: int) -> _Frame:
    children: list[tuple[Node, FieldPath, int]] = []
    if isinstance(node, SequenceNode):
        line = node.start_mark.line
        children = [(item, (*path, i), line) for i, item in enumerate(node.value)]
    elif isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line
            check_key(key_node, value_node, path)
            child = (*path, key_node.value)
            children.append((key_node, child, key_line))
            children.append((value_node, child, key_line))
    return _Frame(node, path, depth, children)


def check_key(key: Node, value: Node, path: FieldPath) -> None:
    """A mapping key is a scalar; a merge key (<<) merges a mapping or a list of mappings."""
    if not isinstance(key, ScalarNode):
        problem = "a mapping key must be text or a number, not a mapping or a list"
        raise Refused(Refusal("CM0013", key.start_mark.line, path, {"problem": problem}))
    if key.tag == _MERGE:
        check_merge(value, key.start_mark.line, path)


def check_merge(value: Node, line: int, path: FieldPath) -> None:
    items = value.value if isinstance(value, SequenceNode) else [value]
    if not all(isinstance(item, MappingNode) for item in items):
        problem = "the value of a merge key (<<) must be a mapping or a list of mappings"
        raise Refused(Refusal("CM0013", line, (*path, "<<"), {"problem": problem}))


def check_depth(depth: int, line: int, path: FieldPath) -> None:
    if depth > MAX_DEPTH:
        raise Refused(Refusal("CM0703", line, path, {"limit": str(MAX_DEPTH)}))


def check_tag(node: Node, path: FieldPath) -> None:
    if node.tag not in _STANDARD_TAGS:
        tag = node.tag.replace(_YAML, "!!")
        problem = f"the tag {tag} is not supported: manifests use YAML's standard types"
        raise Refused(Refusal("CM0013", node.start_mark.line, path, {"problem": problem}))


# --- reading a document's text without parsing it ---------------------------------------------

_PEEK_CHARS = 64 * 1024
_TOP_KEY = re.compile(r"""^(?:"([^"]+)"|'([^']+)'|([^\s#'"\-][^:#]*?))\s*:(?:\s|$)""")
_NESTED_KEY = re.compile(r"""^(\s+)(?:"([^"]+)"|'([^']+)'|([^\s#'"\-][^:#]*?))\s*:(?:\s|$)""")
_SCALAR = re.compile(r"""^\s*["']?([^"'#\s]+)""")


def peek_label(text: str) -> str | None:
    """``ConfigMap default/big`` from the block-style head of a document, or None."""
    kind: str | None = None
    metadata: dict[str, object] = {}
    in_metadata = False
    for line in text[:_PEEK_CHARS].splitlines():
        top = _TOP_KEY.match(line)
        if top is not None:
            key = _key(top.group(1, 2, 3))
            in_metadata = key == "metadata"
            if key == "kind":
                kind = _scalar(line[top.end() :])
            continue
        nested = _NESTED_KEY.match(line)
        if in_metadata and nested is not None:
            key = _key(nested.group(2, 3, 4))
            if key in ("name", "namespace") and key not in metadata:
                metadata[key] = _scalar(line[nested.end() :])
    return raw_label({"kind": kind, "metadata": metadata})


def largest_field(text: str) -> FieldPath:
    """The top-level key of a block-style document that holds most of its text, and within it
    the child key that does (``("data", "big.json")``); () when there are none."""
    lines = text.splitlines(keepends=True)
    path: list[str | int] = []
    start, end, indent = 0, len(lines), ""
    for _ in range(2):
        best: tuple[int, str, int, int] | None = None
        current: tuple[str, int] | None = None
        size = 0
        for number in range(start, end):
            line = lines[number]
            found = _key_at(line, indent)
            if found is not None:
                if current is not None and (best is None or size > best[0]):
                    best = (size, current[0], current[1], number)
                current, size = (found, number), 0
            size += len(line)
        if current is not None and (best is None or size > best[0]):
            best = (size, current[0], current[1], end)
        if best is None:
            break
        path.append(best[1])
        start, end = best[2] + 1, best[3]
        indent = _child_indent(lines, start, end)
        if not indent:
            break
    return tuple(path)


def _key_at(line: str, indent: str) -> str | None:
    if not indent:
        top = _TOP_KEY.match(line)
        return _key(top.group(1, 2, 3)) if top else None
    nested = _NESTED_KEY.match(line)
    if nested is None or nested.group(1) != indent:
        return None
    return _key(nested.group(2, 3, 4))


def _child_indent(lines: list[str], start: int, end: int) -> str:
    for number in range(start, end):
        nested = _NESTED_KEY.match(lines[number])
        if nested is not None:
            return nested.group(1)
    return ""


def _key(groups: tuple[str | None, ...]) -> str:
    return next(group for group in groups if group is not None).strip()


def _scalar(rest: str) -> str | None:
    found = _SCALAR.match(rest)
    return found.group(1) if found else None

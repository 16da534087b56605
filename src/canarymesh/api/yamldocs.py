"""Multi-document YAML text -> plain data plus the line of every field. Pure; used by the loader.

Why not ``yaml.safe_load_all``: it forgets positions, keeps the last of two duplicate keys
silently, and stops the whole stream at the first syntax error. Here the text is split at
``---`` lines first, each document is composed on its own (so one broken document does not hide
the problems of the next), and the node tree is converted by hand to record where each key and
list item was written.

Hostile input stops before it costs anything (:mod:`canarymesh.api.limits`): a document larger
than ``MAX_DOCUMENT_BYTES`` is not parsed, and a composed one is measured by
:func:`canarymesh.api.yamlguard.measure` (nesting, alias expansion, tags, keys) before it is
converted. Every problem is a :class:`YamlProblem`; nothing here raises on bad input.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from canarymesh.api.fieldpaths import format_path
from canarymesh.api.limits import MAX_DEPTH, MAX_DOCUMENT_BYTES, size_args
from canarymesh.api.objects import FieldPath
from canarymesh.api.yamlguard import (
    Refusal,
    Refused,
    check_depth,
    check_key,
    check_tag,
    largest_field,
    measure,
    peek_label,
)

__all__ = ["YamlDocument", "YamlProblem", "parse_documents"]

_SEPARATOR = re.compile(r"^---(\s|$)")
# libyaml's composer when PyYAML was built with it: same nodes and marks, several times faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One non-empty document: its index in the stream, first line, data and field lines."""

    index: int
    line: int
    data: object
    field_lines: dict[FieldPath, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """A syntax error (CM0001), a duplicate key (CM0002), YAML that cannot be a manifest
    (CM0013) or a limit (CM07xx), with its 1-based line and, when known, the object and field."""

    code: str
    document: int
    line: int
    args: dict[str, str]
    resource: str | None = None
    field: str | None = None


def parse_documents(text: str) -> tuple[list[YamlDocument], list[YamlProblem]]:
    """Every non-empty document of ``text`` and every problem found, in stream order."""
    documents: list[YamlDocument] = []
    problems: list[YamlProblem] = []
    for index, (offset, chunk) in enumerate(_split(text)):
        # Characters are at most bytes: a long text is measured without encoding a copy of it.
        over = len(chunk) > MAX_DOCUMENT_BYTES
        size = len(chunk) if over else len(chunk.encode("utf-8", "surrogatepass"))
        if size > MAX_DOCUMENT_BYTES:
            args = size_args(size, MAX_DOCUMENT_BYTES)
            problems.append(_about(chunk, "CM0702", index, offset + 1, largest_field(chunk), args))
            continue
        try:
            node = yaml.compose(chunk, Loader=_LOADER)
        except yaml.YAMLError as exc:
            problems.append(_syntax_problem(chunk, index, offset, exc))
            continue
        if node is None:
            continue
        # Anchors are the only way a document repeats itself; most have none.
        refusal = measure(node) if "&" in chunk else None
        if refusal is not None:
            line = offset + refusal.line + 1
            problems.append(_about(chunk, refusal.code, index, line, refusal.path, refusal.args))
            continue
        converter = _Converter(offset, index)
        try:
            data = converter.convert(node, ())
        except Refused as exc:
            problem = exc.refusal
            line = offset + problem.line + 1
            problems.append(_about(chunk, problem.code, index, line, problem.path, problem.args))
            continue
        if data is None:
            continue
        line = offset + node.start_mark.line + 1
        documents.append(YamlDocument(index, line, data, converter.lines))
        problems.extend(converter.problems)
    return documents, problems


def _about(
    chunk: str, code: str, index: int, line: int, path: FieldPath, args: dict[str, str]
) -> YamlProblem:
    """A problem of a document that is not built, naming the object from its text (and the
    field, its first ten steps when it is deeper)."""
    field = format_path(path[:10]) + ("..." if len(path) > 10 else "")
    return YamlProblem(code, index, line, args, peek_label(chunk), field or None)


def _syntax_problem(chunk: str, index: int, offset: int, error: yaml.YAMLError) -> YamlProblem:
    """The syntax error of ``chunk``, worded by PyYAML's pure-Python parser: libyaml's wording
    ("did not find expected key") says less than PyYAML's ("expected <block end>...")."""
    if "maximum nesting depth" in str(error):  # libyaml's own limit, far above ours
        line = offset + _mark_line(error) + 1
        path = largest_field(chunk)
        return _about(chunk, "CM0703", index, line, path, {"limit": str(MAX_DEPTH)})
    label = peek_label(chunk)
    try:
        yaml.compose(chunk, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = offset + (mark.line + 1 if mark is not None else 1)
        problem = str(exc.problem or exc.context or "invalid YAML")
        if problem == "second occurrence" and exc.context and exc.context_mark:
            # 'found duplicate anchor ...; first occurrence' / 'second occurrence'
            first = offset + exc.context_mark.line + 1
            problem = f"{exc.context.split(';')[0]} (first on line {first})"
        return YamlProblem("CM0001", index, line, {"problem": problem}, label)
    except yaml.reader.ReaderError as exc:  # control characters and the like
        # One line, as every diagnostic: drop PyYAML's 'in "<unicode string>"' trailer.
        problem = str(exc).splitlines()[0]
        line = offset + chunk.count("\n", 0, exc.position) + 1
        return YamlProblem("CM0001", index, line, {"problem": problem}, label)
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        return YamlProblem("CM0001", index, offset + 1, {"problem": problem}, label)
    except RecursionError:  # the pure-Python composer recurses; libyaml's wording will do
        pass
    problem = str(getattr(error, "problem", None) or str(error).splitlines()[0])
    line = offset + _mark_line(error) + 1
    return YamlProblem("CM0001", index, line, {"problem": problem}, label)


def _mark_line(error: yaml.YAMLError) -> int:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    return int(mark.line) if mark is not None else 0


def _split(text: str) -> list[tuple[int, str]]:
    """(line offset, text) of each document; a leading preamble counts only if it has content."""
    chunks: list[tuple[int, list[str]]] = [(0, [])]
    for number, line in enumerate(text.splitlines()):
        if _SEPARATOR.match(line):
            chunks.append((number, []))
        chunks[-1][1].append(line)
    if not any(_has_content(line) for line in chunks[0][1]) and len(chunks) > 1:
        chunks = chunks[1:]
    return [(offset, "\n".join(lines) + "\n") for offset, lines in chunks]


def _has_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


_INT = "tag:yaml.org,2002:int"
# More digits than any 64-bit integer has, with room for signs, underscores and 0x prefixes;
# Python refuses to read integers of more than 4300 digits at all.
_MAX_INT_CHARS = 100


class _Converter:
    """Node tree -> Python data, recording the line of each key and list item.

    Recursive, and bounded: it refuses (:class:`~canarymesh.api.yamlguard.Refused`) a
    collection nested deeper than ``MAX_DEPTH`` before recursing into it, and
    :func:`~canarymesh.api.yamlguard.measure` has bounded what aliases repeat.
    """

    def __init__(self, offset: int, document: int) -> None:
        self.offset = offset
        self.document = document
        self.constructor = SafeConstructor()
        self.lines: dict[FieldPath, int] = {}
        self.problems: list[YamlProblem] = []

    def line_of(self, node: Node) -> int:
        return self.offset + node.start_mark.line + 1

    def convert(self, node: Node, path: FieldPath, depth: int = 1) -> object:
        check_tag(node, path)
        if isinstance(node, MappingNode):
            check_depth(depth, node.start_mark.line, path)
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            check_depth(depth, node.start_mark.line, path)
            items: list[object] = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = self.line_of(item)
                items.append(self.convert(item, (*path, index), depth + 1))
            return items
        return _plain(self._scalar(node, path))

    def _scalar(self, node: Node, path: FieldPath) -> object:
        if isinstance(node, ScalarNode) and node.tag == _INT and len(node.value) > _MAX_INT_CHARS:
            problem = f"an integer of {len(node.value)} digits is far beyond 64 bits"
            raise Refused(Refusal("CM0013", node.start_mark.line, path, {"problem": problem}))
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, OverflowError, TypeError, yaml.YAMLError) as exc:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problem = f"cannot read {str(node.value)[:40]!r} as {tag}: {reason}"
            raise Refused(
                Refusal("CM0013", node.start_mark.line, path, {"problem": problem})
            ) from None

    def _mapping(self, node: MappingNode, path: FieldPath, depth: int) -> dict[str, object]:
        for key_node, value_node in node.value:
            check_key(key_node, value_node, path)
        try:
            self.constructor.flatten_mapping(node)  # resolves YAML merge keys (<<)
        except yaml.YAMLError as exc:
            problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
            raise Refused(
                Refusal("CM0013", node.start_mark.line, path, {"problem": problem})
            ) from None
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            key = _key_text(self._scalar(key_node, path))
            line = self.line_of(key_node)
            child = (*path, key)
            if key in result:
                first = self.lines.get(child, line)
                args = {"key": key, "first": str(first)}
                self.problems.append(
                    YamlProblem("CM0002", self.document, line, args, field=format_path(child))
                )
            self.lines[child] = line
            result[key] = self.convert(value_node, child, depth + 1)
        return result


def _key_text(key: object) -> str:
    """Mapping keys as JSON sees them: Kubernetes converts YAML to JSON, where keys are text."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def _plain(value: object) -> object:
    # YAML timestamps become text, as they do in the JSON the API server receives.
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value

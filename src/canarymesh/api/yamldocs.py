"""Multi-document YAML text -> plain data plus the line of every field. Pure; used by the loader.

Why not ``yaml.safe_load_all``: it forgets positions, keeps the last of two duplicate keys
silently, and stops the whole stream at the first syntax error. Here the text is split at
``---`` lines first, each document is composed on its own (so one broken document does not hide
the problems of the next), and the node tree is converted by hand to record where each key and
list item was written.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode

from canarymesh.api.objects import FieldPath

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
    """A syntax error (CM0001) or a duplicate key (CM0002), with its 1-based line."""

    code: str
    document: int
    line: int
    args: dict[str, str]


def parse_documents(text: str) -> tuple[list[YamlDocument], list[YamlProblem]]:
    """Every non-empty document of ``text`` and every problem found, in stream order."""
    documents: list[YamlDocument] = []
    problems: list[YamlProblem] = []
    for index, (offset, chunk) in enumerate(_split(text)):
        try:
            node = yaml.compose(chunk, Loader=_LOADER)
        except yaml.YAMLError:
            problems.append(_syntax_problem(chunk, index, offset))
            continue
        if node is None:
            continue
        converter = _Converter(offset, index)
        data = converter.convert(node, ())
        if data is None:
            continue
        line = offset + node.start_mark.line + 1
        documents.append(YamlDocument(index, line, data, converter.lines))
        problems.extend(converter.problems)
    return documents, problems


def _syntax_problem(chunk: str, index: int, offset: int) -> YamlProblem:
    """The syntax error of ``chunk``, worded by PyYAML's pure-Python parser: libyaml's wording
    ("did not find expected key") says less than PyYAML's ("expected <block end>...")."""
    try:
        yaml.compose(chunk, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = offset + (mark.line + 1 if mark is not None else 1)
        problem = str(exc.problem or exc.context or "invalid YAML")
        return YamlProblem("CM0001", index, line, {"problem": problem})
    except yaml.YAMLError as exc:  # reader errors: control characters and the like
        # One line, as every diagnostic: drop PyYAML's 'in "<unicode string>"' trailer.
        problem = str(exc).splitlines()[0]
        return YamlProblem("CM0001", index, offset + 1, {"problem": problem})
    return YamlProblem("CM0001", index, offset + 1, {"problem": "invalid YAML"})


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


class _Converter:
    """Node tree -> Python data, recording the line of each key and list item."""

    def __init__(self, offset: int, document: int) -> None:
        self.offset = offset
        self.document = document
        self.constructor = SafeConstructor()
        self.lines: dict[FieldPath, int] = {}
        self.problems: list[YamlProblem] = []

    def line_of(self, node: Node) -> int:
        return self.offset + node.start_mark.line + 1

    def convert(self, node: Node, path: FieldPath) -> object:
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            items: list[object] = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = self.line_of(item)
                items.append(self.convert(item, (*path, index)))
            return items
        return _plain(self.constructor.construct_object(node, deep=True))

    def _mapping(self, node: MappingNode, path: FieldPath) -> dict[str, object]:
        self.constructor.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            key = _key_text(self.constructor.construct_object(key_node, deep=True))
            line = self.line_of(key_node)
            child = (*path, key)
            if key in result:
                first = self.lines.get(child, line)
                args = {"key": key, "first": str(first)}
                self.problems.append(YamlProblem("CM0002", self.document, line, args))
            self.lines[child] = line
            result[key] = self.convert(value_node, child)
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

"""The bad-input corpus: the cases of tests/golden/bad-inputs/cases.txt and those built here
(too large to keep in the repository, or bytes that are not UTF-8).

Each :class:`Case` is one input with one fault; ``expected.txt`` in the same directory holds the
one line the CLI prints for it. Shared by tests/unit/api/test_bad_inputs.py (every case through
``validate``, ``analyze`` and ``apply``) and the bomb measurements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from canarymesh.api.limits import (
    MAX_ANNOTATIONS_BYTES,
    MAX_DOCUMENT_BYTES,
    MAX_INPUT_BYTES,
    MAX_OBJECT_BYTES,
    MIB,
)

CORPUS = Path(__file__).parents[2] / "golden" / "bad-inputs"
CASES = CORPUS / "cases.txt"
EXPECTED = CORPUS / "expected.txt"


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    build: Callable[[], bytes]
    stdin: bool = False
    # Written sparse (a hole after the bytes) up to this size: a file too large to read.
    sparse_size: int = 0

    @property
    def filename(self) -> str:
        return "<stdin>" if self.stdin else f"{self.name}.yaml"

    def write(self, directory: Path) -> Path:
        path = directory / f"{self.name}.yaml"
        with path.open("wb") as handle:
            handle.write(self.build())
            if self.sparse_size:
                handle.truncate(self.sparse_size)
        return path


def _text(text: str) -> Callable[[], bytes]:
    return lambda: text.encode("utf-8")


def static_cases() -> list[Case]:
    cases: list[Case] = []
    name, stdin, lines = "", False, list[str]()
    for line in CASES.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("=== "):
            if name:
                cases.append(Case(name, _text("".join(lines)), stdin))
            header = line[4:].split()
            name, stdin, lines = header[0], header[1:] == ["<stdin"], []
        elif name:
            lines.append(line)
    cases.append(Case(name, _text("".join(lines)), stdin))
    return cases


HEAD = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\n"


def _config_map(value_size: int, key: str = "big.json") -> bytes:
    return HEAD + b"data:\n  small: x\n  " + key.encode() + b": " + b"x" * value_size + b"\n"


def _annotation(size: int) -> bytes:
    return (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  annotations:\n"
        b"    note: " + b"n" * size + b"\ndata:\n  a: b\n"
    )


def _many_annotations(count: int, size: int) -> bytes:
    notes = b"".join(b"    note-%d: " % i + b"n" * size + b"\n" for i in range(count))
    return b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  annotations:\n" + notes


def _scalar_bomb() -> bytes:
    # One 100 KiB string repeated by aliases: few values, many bytes.
    refs = b", ".join([b"*big"] * 20)
    return HEAD + b"big: &big " + b"b" * (100 * 1024) + b"\ndata:\n  list: [" + refs + b"]\n"


GENERATED = [
    # Bytes that are not UTF-8, and encodings Kubernetes does not read.
    Case("latin1-name", lambda: b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf\xe9\n"),
    Case("latin1-on-stdin", lambda: HEAD + b"data:\n  city: M\xfcnchen\n", stdin=True),
    Case("utf16-with-bom", lambda: "\ufeffapiVersion: v1\nkind: ConfigMap\n".encode("utf-16")),
    Case("overlong-slash", lambda: HEAD + b"data:\n  path: \xc0\xaf\n"),
    Case("truncated-sequence", lambda: HEAD + b"data:\n  euro: \xe2\x82\n"),
    Case("invalid-byte-in-comment", lambda: HEAD + b"# r\xe9sum\xe9\ndata:\n  a: b\n"),
    Case("nul-byte", lambda: HEAD + b"data:\n  a: b\x00c\n"),
    Case("control-character", lambda: HEAD + b"data:\n  a: b\x07c\n"),
    # Sizes.
    Case("file-beyond-the-input-limit", lambda: HEAD, sparse_size=MAX_INPUT_BYTES + MIB),
    Case("stdin-beyond-the-input-limit", lambda: HEAD + b"#" * (MAX_INPUT_BYTES + 1), stdin=True),
    Case("configmap-of-20-mb", lambda: _config_map(20 * 1000 * 1000)),
    Case("document-beyond-3-mib", lambda: _config_map(MAX_DOCUMENT_BYTES + 1, "blob")),
    Case("object-beyond-1-mib", lambda: _config_map(MAX_OBJECT_BYTES + 1)),
    Case("annotation-of-2-mb", lambda: _annotation(2 * 1000 * 1000)),
    Case("annotation-just-over-256-kib", lambda: _annotation(MAX_ANNOTATIONS_BYTES)),
    Case("many-annotations-over-256-kib", lambda: _many_annotations(40, 8 * 1024)),
    # Parser bombs too large to keep as text.
    Case("nesting-100000-levels", lambda: HEAD + b"data: " + b"[" * 100_000 + b"]" * 100_000),
    Case("aliases-repeat-a-100-kib-string", _scalar_bomb),
]


def all_cases() -> list[Case]:
    return static_cases() + GENERATED


def expected() -> dict[str, str]:
    rows = EXPECTED.read_text(encoding="utf-8").splitlines() if EXPECTED.exists() else []
    return dict(row.split(": ", 1) for row in rows)

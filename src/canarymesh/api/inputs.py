"""Manifests as text: files, standard input and API texts, bounded in size and strictly UTF-8.

Reads only what it is given (the loader's one piece of I/O). A file larger than
:data:`~canarymesh.api.limits.MAX_INPUT_BYTES` is not read beyond its first bytes (which still
name the object in the message), standard input is read up to the limit and no further, and
bytes that are not UTF-8 are refused with their line and column: Kubernetes reads manifests as
UTF-8 JSON, and a guess at another encoding would change what was meant.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from canarymesh.api.limits import MAX_INPUT_BYTES, format_size, size_args

__all__ = ["Input", "InputProblem", "check_text", "decode", "read_path", "read_stream"]

# What is read of a refused input: enough to name the object it starts with.
_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class InputProblem:
    """Why an input is not loaded: CM0010 (unreadable, not UTF-8) or CM0701 (too large), at a
    1-based line (0: the input as a whole)."""

    code: str
    line: int
    args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Input:
    """One input by the name diagnostics show. ``text`` is the whole text when ``problem`` is
    None; otherwise what could be decoded (bad bytes replaced), or only the head of a file too
    large to read, kept to name the object in the message."""

    name: str
    text: str
    problem: InputProblem | None = None


def read_path(path: Path) -> Input:
    """The file at ``path`` (or a pipe or device such as /dev/stdin), bounded and decoded."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_INPUT_BYTES:
                return _too_large(name, info.st_size, handle.read(_HEAD_BYTES))
            return _bounded(handle, name)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return Input(name, "", InputProblem("CM0010", 0, {"problem": f"cannot read: {reason}"}))


def read_stream(stream: BinaryIO, name: str = "<stdin>") -> Input:
    """Standard input (or any byte stream), read up to the limit and no further."""
    try:
        return _bounded(stream, name)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return Input(name, "", InputProblem("CM0010", 0, {"problem": f"cannot read: {reason}"}))


def _bounded(stream: BinaryIO, name: str) -> Input:
    data = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        return _too_large(name, None, data[:_HEAD_BYTES])
    return decode(data, name)


def _too_large(name: str, size: int | None, head: bytes) -> Input:
    if size is None:  # a stream: read up to the limit, no further
        args = {"size": f"more than {format_size(MAX_INPUT_BYTES)}"}
        args["limit"] = format_size(MAX_INPUT_BYTES)
    else:
        args = size_args(size, MAX_INPUT_BYTES)
    text = head.decode("utf-8", "replace")
    return Input(name, text, InputProblem("CM0701", 1, args))


def decode(data: bytes, name: str) -> Input:
    """``data`` as UTF-8 text, or the position of its first byte that is not UTF-8."""
    try:
        return Input(name, data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", "replace")
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            problem = "the text is UTF-16; manifests must be UTF-8"
            return Input(name, text, InputProblem("CM0010", 1, {"problem": problem}))
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - line_start + 1
        byte = data[exc.start]
        problem = f"byte 0x{byte:02X} (column {column}) is not UTF-8; manifests are UTF-8"
        return Input(name, text, InputProblem("CM0010", line, {"problem": problem}))


def check_text(text: str, name: str) -> Input:
    """Text that was decoded elsewhere (standard input in text mode, a JSON string of an API
    request): within the size limit, and free of lone surrogates, which are not UTF-8."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        column = exc.start - (text.rfind("\n", 0, exc.start) + 1) + 1
        code_point = f"U+{ord(text[exc.start]):04X}"
        problem = f"{code_point} (column {column}) is a lone surrogate, not UTF-8 text"
        shown = text.encode("utf-8", "replace").decode("utf-8")
        return Input(name, shown, InputProblem("CM0010", line, {"problem": problem}))
    if size > MAX_INPUT_BYTES:
        return _too_large(name, size, text[:_HEAD_BYTES].encode("utf-8"))
    return Input(name, text)

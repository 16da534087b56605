"""Where a resource came from: file, document index and line. Pure; built by the loader.

Every diagnostic and every translated object can point back to the YAML the user wrote.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UNKNOWN_SOURCE", "Source"]


@dataclass(frozen=True, slots=True)
class Source:
    """A position in the user's input.

    ``document`` is the 0-based index of the YAML document in ``file`` (counting ``---``
    separators, empty documents included, so the index matches what an editor shows).
    ``line`` is 1-based; 0 means unknown.
    """

    file: str
    document: int
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


UNKNOWN_SOURCE = Source(file="<memory>", document=0, line=0)

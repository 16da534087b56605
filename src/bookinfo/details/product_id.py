"""Pure: the product id of a details request, parsed the way the Ruby original parses it.

Called by :mod:`bookinfo.details.app`. The original takes the last segment of the path (Ruby's
``String#split`` drops trailing empty fields, so ``/details/5/`` is product 5) and converts it
with ``Integer()``, which accepts a sign, ``0x``/``0b``/``0o``/``0d`` prefixes, a leading ``0`` for
octal, underscores between digits and surrounding whitespace.
"""

from __future__ import annotations

import re

_RUBY_INTEGER = re.compile(
    r"""\s*(?P<sign>[+-]?)(?:
        0[xX](?P<hex>[0-9a-fA-F]+(?:_[0-9a-fA-F]+)*)
      | 0[bB](?P<bin>[01]+(?:_[01]+)*)
      | 0[dD](?P<dec_prefixed>[0-9]+(?:_[0-9]+)*)
      | 0[oO]?(?P<oct>[0-7]+(?:_[0-7]+)*)
      | (?P<dec>0|[1-9][0-9]*(?:_[0-9]+)*)
    )\s*""",
    re.VERBOSE,
)
_BASES = {"hex": 16, "bin": 2, "dec_prefixed": 10, "oct": 8, "dec": 10}


def parse_ruby_integer(text: str) -> int | None:
    """``Integer(text)`` in Ruby, or None where Ruby raises ArgumentError."""
    match = _RUBY_INTEGER.fullmatch(text)
    if match is None:
        return None
    for group, base in _BASES.items():
        digits = match.group(group)
        if digits is not None:
            value = int(digits.replace("_", ""), base)
            return -value if match.group("sign") == "-" else value
    return None  # pragma: no cover - the regex always sets one digit group


def product_id_from_path(path: str) -> int | None:
    """The id in ``/details/<id>``: the last non-empty-tail segment, or None when not numeric."""
    segments = path.split("/")
    while segments and segments[-1] == "":
        segments.pop()
    if not segments:
        return None
    return parse_ruby_integer(segments[-1])

"""Pure: which ratings route a request takes, and its product id, as httpdispatcher decides.

Called by :mod:`bookinfo.ratings.app`. The original registers GET and POST only, matches the
*pathname* (``/health`` exactly, ``/ratings/`` by the prefix regex ``^/ratings/[0-9]*``), and takes
the id from the *raw URL* with ``url.split('/').pop()`` and ``parseInt``: so ``/ratings/12abc`` is
12, ``/ratings/7?x=1`` is 7, and ``/ratings/abc`` is not a number (400).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Route(enum.Enum):
    HEALTH = "health"
    RATINGS = "ratings"
    NOT_FOUND = "not found"
    METHOD_NOT_ALLOWED = "method not allowed"


@dataclass(frozen=True, slots=True)
class Match:
    """The route, and for ``RATINGS`` the product id (None when not a number)."""

    route: Route
    product_id: int | None = None


_JS_NUMBER = re.compile(r"([+-]?)(?:0[xX]([0-9a-fA-F]*)|([0-9]*))")


def parse_js_int(text: str) -> int | None:
    """JavaScript's ``parseInt(text)`` without radix, or None for NaN.

    Leading whitespace is skipped, a ``0x`` prefix means hexadecimal, and parsing stops at the
    first character that is not a digit.
    """
    match = _JS_NUMBER.match(text.lstrip())
    if match is None:  # pragma: no cover - every group may be empty, so it matches any text
        return None
    sign, hexadecimal, decimal = match.groups()
    # After a "0x" prefix only hex digits count: parseInt("0x") is NaN, not 0.
    digits, base = (hexadecimal, 16) if hexadecimal is not None else (decimal, 10)
    if not digits:
        return None
    value = int(digits, base)
    return -value if sign == "-" else value


def match_request(method: str, raw_url: str) -> Match:
    """Route ``method raw_url`` (the request target as sent, query string included)."""
    if method not in ("GET", "POST"):
        return Match(Route.METHOD_NOT_ALLOWED)
    raw_url = _origin_form(raw_url)
    pathname = raw_url.split("?", 1)[0].split("#", 1)[0]
    if method == "GET" and pathname == "/health":
        return Match(Route.HEALTH)
    if pathname.startswith("/ratings/"):
        return Match(Route.RATINGS, parse_js_int(raw_url.split("/")[-1]))
    return Match(Route.NOT_FOUND)


def _origin_form(target: str) -> str:
    """``/path?query`` of a request target that a proxy may send as ``http://host/path?query``."""
    scheme, sep, rest = target.partition("://")
    if not sep or "/" in scheme:
        return target
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"

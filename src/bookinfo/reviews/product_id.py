"""Pure: the ``{productId}`` path parameter of reviews, converted as JAX-RS converts an ``int``.

Called by :mod:`bookinfo.reviews.app`. ``Integer.parseInt`` takes an optional sign and decimal
digits within 32 bits; anything else makes the path not match, which JAX-RS answers with 404.
"""

from __future__ import annotations

import re

_JAVA_INT = re.compile(r"[+-]?[0-9]+")
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


def parse_java_int(text: str) -> int | None:
    """``Integer.parseInt(text)``, or None where Java throws NumberFormatException."""
    if _JAVA_INT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if INT_MIN <= value <= INT_MAX else None

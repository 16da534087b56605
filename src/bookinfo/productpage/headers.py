"""The headers productpage sends on each backend call (spec §4.1 "Header propagation"). Pure.

Unlike details and reviews (``bookinfo.common.propagation``), productpage does not copy the
``x-b3-*`` headers verbatim: it re-encodes them by the rules in :mod:`.b3`. It never forwards an
incoming ``end-user``: only the signed session decides who the user is, so a client cannot pick
the ``end-user: jason`` routes by sending the header itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from bookinfo.common.propagation import FORWARDED_HEADERS
from bookinfo.productpage.b3 import outgoing_b3

# Copied unchanged when present (spec §4.1 item 3): the list details and reviews forward, less
# the b3 set (re-encoded) and end-user (taken from the session only).
VERBATIM_HEADERS: tuple[str, ...] = tuple(
    name for name in FORWARDED_HEADERS if not name.startswith("x-b3-") and name != "end-user"
)


def outgoing_headers(incoming: Mapping[str, str], user: str | None) -> dict[str, str]:
    """Headers for a backend call made while serving a request with ``incoming`` headers.

    ``incoming`` must be case-insensitive (aiohttp's ``CIMultiDictProxy`` is); ``user`` is the
    session's user name, or None when nobody is signed in.
    """
    headers = {name: incoming[name] for name in VERBATIM_HEADERS if name in incoming}
    headers.update(outgoing_b3(incoming))
    if user:
        headers["end-user"] = user
    return headers

"""Shell: the one outgoing call of details v2, ``GET <base>/books/v1/volumes?q=isbn:<ISBN>``.

Called by :mod:`bookinfo.details.app`. Every way the call can fail (refused, timed out, non-200,
not JSON) becomes a :class:`~bookinfo.details.book.BookLookupError` with a message for the client,
because the original answers any failure with 400 ``{"error": <message>}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import aiohttp

from bookinfo.details.book import BOOK_ISBN, BookLookupError


async def fetch_volumes(
    session: aiohttp.ClientSession,
    base_url: str,
    headers: Mapping[str, str],
    timeout: float,
    proxy: str | None = None,
) -> object:
    """The decoded JSON answer of the books API for Bookinfo's ISBN."""
    url = f"{base_url}/books/v1/volumes?q=isbn:{BOOK_ISBN}"
    try:
        async with session.get(
            url, headers=dict(headers), timeout=aiohttp.ClientTimeout(total=timeout), proxy=proxy
        ) as resp:
            body = await resp.read()
            status = resp.status
    except TimeoutError:
        raise BookLookupError(f"books API did not answer within {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise BookLookupError(f"books API unreachable: {exc}") from None
    if status != 200:
        raise BookLookupError(f"books API answered HTTP {status}")
    try:
        return json.loads(body)
    except ValueError:
        raise BookLookupError("books API answer is not valid JSON") from None

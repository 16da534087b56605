"""Shell: reviews' one outgoing call, ``GET <ratings>/ratings/<id>``, with no retry.

Called by :mod:`bookinfo.reviews.app`. Any failure (refused, timed out, non-200, not JSON) is
``None``: the caller then shows the ratings error for every reviewer, as the original does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import aiohttp

LOG = logging.getLogger("bookinfo.reviews")


async def fetch_ratings(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    timeout: float,
    proxy: str | None = None,
) -> object | None:
    """The decoded ratings answer, or None when ratings cannot be used."""
    # The original sets a connect timeout and a receive timeout of the same length (JAX-RS client
    # properties), not a deadline for the whole exchange; sock_connect/sock_read are the analogue.
    limits = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
    try:
        async with session.get(
            url, headers={**headers, "Accept": "application/json"}, timeout=limits, proxy=proxy
        ) as resp:
            if resp.status != 200:
                LOG.warning("ratings %s answered %d", url, resp.status)
                return None
            body = await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        LOG.warning("ratings %s failed: %s", url, exc or type(exc).__name__)
        return None
    try:
        answer: object = json.loads(body)
    except ValueError:
        LOG.warning("ratings %s answered 200 with a body that is not JSON", url)
        return None
    return answer

"""productpage's one outgoing HTTP session, shared by every handler of the process.

Like ``bookinfo.common.client`` but with ``trust_env=False``: the HTTP proxy (the sidecar on the
local mesh) is resolved once from the settings (:mod:`.proxy`) instead of per request, and the
session keeps no cookie jar, so a cookie one backend sets can never reach another user's calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bookinfo.common.client import CLIENT


async def client_session_ctx(app: web.Application) -> AsyncIterator[None]:
    """aiohttp ``cleanup_ctx``: open the shared session on startup, close it on shutdown."""
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=10)
    session = aiohttp.ClientSession(
        connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
    )
    app[CLIENT] = session
    yield
    await session.close()

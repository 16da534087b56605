"""The one outgoing HTTP session of a service process, shared by every handler.

``trust_env=True`` makes the session honour ``HTTP_PROXY``/``NO_PROXY``: on the local mesh the
application's sidecar Envoy is its HTTP proxy, which is how routing becomes per source workload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

CLIENT = web.AppKey("client", aiohttp.ClientSession)


async def client_session_ctx(app: web.Application) -> AsyncIterator[None]:
    """aiohttp ``cleanup_ctx``: open the shared session on startup, close it on shutdown."""
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=10)
    session = aiohttp.ClientSession(connector=connector, trust_env=True)
    app[CLIENT] = session
    yield
    await session.close()

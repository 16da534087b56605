"""The one outgoing HTTP session of a service process, shared by every handler.

On the local mesh the application's sidecar Envoy is its HTTP proxy, which is how routing becomes
per source workload. The session does not read the proxy from the environment per request
(``trust_env`` costs two thread hops per call): each service resolves its backends' proxy once
at startup with :mod:`bookinfo.common.proxy` and passes ``proxy=`` on its calls. No cookie jar, so
a cookie one backend sets can never reach another user's calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

CLIENT = web.AppKey("client", aiohttp.ClientSession)


async def client_session_ctx(app: web.Application) -> AsyncIterator[None]:
    """aiohttp ``cleanup_ctx``: open the shared session on startup, close it on shutdown."""
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=10)
    session = aiohttp.ClientSession(
        connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
    )
    app[CLIENT] = session
    yield
    await session.close()

"""Shell: the details aiohttp application, built by :func:`create_app` from :class:`Settings`.

Called by ``__main__`` and by tests. Routes follow the WEBrick original: ``/details`` and
everything below it share one handler for GET and POST, HEAD comes from GET, other methods get 405,
and any failure to produce a record is a 400 with ``{"error": <message>}``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bookinfo.common.client import CLIENT, client_session_ctx
from bookinfo.common.propagation import forward_headers
from bookinfo.common.server import access_log
from bookinfo.details.book import BookLookupError, book_from_volumes, default_book
from bookinfo.details.books_api import fetch_volumes
from bookinfo.details.product_id import product_id_from_path
from bookinfo.details.settings import Settings

SETTINGS = web.AppKey("settings", Settings)


def create_app(settings: Settings) -> web.Application:
    """A details app; v2 opens the shared client session, v1 makes no outgoing calls."""
    app = web.Application(middlewares=[access_log])
    app[SETTINGS] = settings
    if settings.enable_external_book_service:
        app.cleanup_ctx.append(client_session_ctx)
    # WEBrick's mount_proc serves GET and POST alike, for /health as for /details.
    app.router.add_get("/health", health)
    app.router.add_post("/health", health)
    for path in ("/details", "/details/{tail:.*}"):
        app.router.add_get(path, details)
        app.router.add_post(path, details)
    return app


async def health(request: web.Request) -> web.Response:
    return _json(200, {"status": "Details is healthy"})


async def details(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    product_id = product_id_from_path(request.path)
    if product_id is None:
        return _json(400, {"error": "please provide numeric product id"})
    if not settings.enable_external_book_service:
        return _json(200, default_book(product_id))
    try:
        payload = await fetch_volumes(
            request.app[CLIENT],
            settings.books_api_base_url,
            forward_headers(request.headers),
            settings.books_api_timeout,
            settings.books_api_proxy,
        )
        return _json(200, book_from_volumes(product_id, payload))
    except BookLookupError as exc:
        return _json(400, {"error": str(exc)})


def _json(status: int, body: dict[str, Any]) -> web.Response:
    # Ruby's to_json is compact and the original sets exactly "application/json": same bytes.
    text = json.dumps(body, separators=(",", ":"))
    return web.Response(
        status=status, body=text.encode(), headers={"Content-Type": "application/json"}
    )

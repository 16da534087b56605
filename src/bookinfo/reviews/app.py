"""Shell: the reviews aiohttp application, built by :func:`create_app` from :class:`Settings`.

Called by ``__main__`` and by tests. ``/reviews/<int>`` always answers 200: when ratings fail,
the failure is shown inside the document, never as the status.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bookinfo.common.client import CLIENT, client_session_ctx
from bookinfo.common.propagation import forward_headers
from bookinfo.common.server import access_log
from bookinfo.reviews.document import Ratings, reviews_document, stars_from_answer
from bookinfo.reviews.product_id import parse_java_int
from bookinfo.reviews.ratings_client import fetch_ratings
from bookinfo.reviews.settings import Settings

SETTINGS = web.AppKey("settings", Settings)


def create_app(settings: Settings) -> web.Application:
    """A reviews app; with ratings enabled it opens the shared client session."""
    app = web.Application(middlewares=[access_log])
    app[SETTINGS] = settings
    if settings.enable_ratings:
        app.cleanup_ctx.append(client_session_ctx)
    app.router.add_get("/health", health)
    app.router.add_get("/reviews/{product_id}", reviews)
    return app


async def health(request: web.Request) -> web.Response:
    return _json({"status": "Reviews is healthy"})


async def reviews(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    product_id = parse_java_int(request.match_info["product_id"])
    if product_id is None:
        # JAX-RS cannot convert the path parameter to int, so the resource does not match.
        raise web.HTTPNotFound()
    ratings = None
    if settings.enable_ratings:
        answer = await fetch_ratings(
            request.app[CLIENT],
            f"{settings.ratings_url}/{product_id}",
            forward_headers(request.headers),
            settings.ratings_timeout,
            settings.ratings_proxy,
        )
        ratings = Ratings(settings.star_color, stars_from_answer(answer))
    document = reviews_document(product_id, settings.podname, settings.clustername, ratings)
    return _json(document)


def _json(body: dict[str, Any]) -> web.Response:
    # JAX-RS answers "application/json" without a charset; the ", " and ": " separators match
    # the original's hand-built JSON closely enough for every client that parses it.
    return web.Response(
        body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )

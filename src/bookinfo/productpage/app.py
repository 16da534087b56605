"""``create_app(settings)``: builds productpage's aiohttp application. Called by ``__main__``
and by tests; reads nothing from the environment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from bookinfo.common.client import CLIENT, client_session_ctx
from bookinfo.common.server import access_log
from bookinfo.productpage import api, pages
from bookinfo.productpage.appkeys import BACKENDS, METRICS, RENDERER, SESSIONS, SETTINGS
from bookinfo.productpage.backends import Backends
from bookinfo.productpage.metrics import CONTENT_TYPE, Metrics
from bookinfo.productpage.render import Renderer
from bookinfo.productpage.session import SessionCodec
from bookinfo.productpage.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[access_log])
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[RENDERER] = Renderer()
    app[SESSIONS] = SessionCodec(settings.secret_key)
    app.cleanup_ctx.append(client_session_ctx)
    app.cleanup_ctx.append(_backends_ctx)
    add_routes(app.router)
    return app


def add_routes(router: web.UrlDispatcher) -> None:
    # Every other path is a 404 and every other method a 405, from aiohttp's router.
    router.add_get("/", pages.index)
    router.add_get("/index.html", pages.index)
    router.add_get("/health", pages.health)
    router.add_post("/login", pages.login)
    router.add_get("/logout", pages.logout)
    router.add_get("/productpage", pages.productpage)
    router.add_get("/api/v1/products", api.products)
    router.add_get("/api/v1/products/{id}", api.product_details)
    router.add_get("/api/v1/products/{id}/reviews", api.product_reviews)
    router.add_get("/api/v1/products/{id}/ratings", api.product_ratings)
    router.add_get("/metrics", metrics)
    router.add_static("/static", STATIC_DIR)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _backends_ctx(app: web.Application) -> AsyncIterator[None]:
    app[BACKENDS] = Backends(app[CLIENT], app[SETTINGS], app[METRICS])
    yield

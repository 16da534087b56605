"""Shell: the ratings aiohttp application, built by :func:`create_app` from :class:`Settings`.

Called by ``__main__`` and by tests. One catch-all route hands every request to
:func:`~bookinfo.ratings.routing.match_request`, which mirrors the original's dispatcher; the
randomness and the clock are parameters, so tests can make the fault modes deterministic.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bookinfo.common.server import access_log
from bookinfo.ratings.faults import Mode, is_healthy, mode_of, plan_ratings
from bookinfo.ratings.routing import Route, match_request
from bookinfo.ratings.settings import Settings
from bookinfo.ratings.store import RatingsStore


class _State:
    """Everything a request handler needs, fixed when the app is built."""

    def __init__(
        self, settings: Settings, draw: Callable[[], float], clock: Callable[[], float]
    ) -> None:
        self.settings = settings
        self.mode = mode_of(settings.service_version)
        self.draw = draw
        self.clock = clock
        self.started = clock()
        self.store = RatingsStore()

    def elapsed(self) -> float:
        return self.clock() - self.started


STATE = web.AppKey("state", _State)


def create_app(
    settings: Settings,
    draw: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """A ratings app; the fault periods count from this call."""
    app = web.Application(middlewares=[access_log])
    app[STATE] = _State(settings, draw, clock)
    app.router.add_route("*", "/{path:.*}", dispatch)
    return app


async def dispatch(request: web.Request) -> web.Response:
    state = request.app[STATE]
    match = match_request(request.method, request.raw_path)
    if match.route is Route.METHOD_NOT_ALLOWED:
        # Deliberate fix: the original's dispatcher throws on any method but GET and POST and the
        # request hangs until the client gives up. A caller must never hang, so answer 405.
        response = _json(405, {"error": f"method {request.method} not allowed, use GET or POST"})
        response.headers["Allow"] = "GET, POST"
        return response
    if match.route is Route.NOT_FOUND:
        return web.Response(status=404)
    if match.route is Route.HEALTH:
        if is_healthy(state.mode, state.settings.faults, state.elapsed()):
            return _json(200, {"status": "Ratings is healthy"})
        return _json(500, {"status": "Ratings is not healthy"})
    if match.product_id is None:
        return _json(400, {"error": "please provide numeric product ID"})
    if request.method == "POST":
        return await _post(state, match.product_id, await request.read())
    return await _get(state, match.product_id)


async def _post(state: _State, product_id: int, body: bytes) -> web.Response:
    try:
        ratings = json.loads(body)
    except ValueError:
        ratings = None
    # The original stores any JSON value; only an object can hold reviewers' ratings, so anything
    # else is refused with the same message instead of breaking every later GET.
    if not isinstance(ratings, dict):
        return _json(400, {"error": "please provide valid ratings JSON"})
    if state.mode is Mode.DATABASE:
        return _json(501, {"error": "Post not implemented for database backed ratings"})
    return _json(200, state.store.put(product_id, ratings))


async def _get(state: _State, product_id: int) -> web.Response:
    if state.mode is Mode.DATABASE:
        return await _get_from_database(state.settings, product_id)
    plan = plan_ratings(state.mode, state.settings.faults, state.draw(), state.elapsed())
    if plan.unavailable:
        return _json(503, {"error": "Service unavailable"})
    if plan.delay > 0:
        await asyncio.sleep(plan.delay)
    return _json(200, state.store.get(product_id))


async def _get_from_database(settings: Settings, product_id: int) -> web.Response:
    # Imported here: the two database drivers double the start-up time of every other mode.
    from bookinfo.ratings import database

    try:
        if settings.db_type == "mysql":
            ratings = await database.mysql_ratings(settings.mysql, settings.db_timeout)
        else:
            ratings = await database.mongo_ratings(settings.mongo_url, settings.db_timeout)
    except database.ConnectFailed:
        if settings.db_type == "mysql":
            # The original writes this body without a status, so Node sends 200; reviews then
            # finds no "ratings" and shows the ratings error (bookinfo-spec §8.9).
            return _json(200, {"error": "could not connect to ratings database"})
        return _json(500, {"error": "could not connect to ratings database"})
    except database.QueryFailed:
        if settings.db_type == "mysql":
            return _json(500, {"error": "could not perform select"})
        return _json(500, {"error": "could not load ratings from database"})
    return _json(200, {"id": product_id, "ratings": ratings})


def _json(status: int, body: dict[str, Any]) -> web.Response:
    # JSON.stringify is compact, and the original's header is exactly "application/json".
    text = json.dumps(body, separators=(",", ":"), default=str)
    return web.Response(
        status=status, body=text.encode(), headers={"Content-Type": "application/json"}
    )

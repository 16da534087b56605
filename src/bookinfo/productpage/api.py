"""productpage's JSON API, ``/api/v1/products[/<id>[/reviews|/ratings]]`` (spec §4.1).

Unlike the page, these routes pass the backend's status on (500 when the call raised), with a
fixed error body. Registered by :func:`bookinfo.productpage.app.create_app`.
"""

from __future__ import annotations

import json

from aiohttp import web

from bookinfo.productpage.appkeys import BACKENDS
from bookinfo.productpage.backends import CallResult
from bookinfo.productpage.catalog import PRODUCTS
from bookinfo.productpage.headers import outgoing_headers
from bookinfo.productpage.pages import current_user


def unavailable(what: str) -> dict[str, str]:
    return {"error": f"Sorry, product {what} are currently unavailable for this book."}


async def products(request: web.Request) -> web.Response:
    return _json([product.as_json() for product in PRODUCTS], 200)


async def product_details(request: web.Request) -> web.Response:
    result = await request.app[BACKENDS].details(request.match_info["id"], _headers(request))
    return _pass_on(result, "details")


async def product_reviews(request: web.Request) -> web.Response:
    result = await request.app[BACKENDS].reviews(request.match_info["id"], _headers(request))
    return _pass_on(result, "reviews")


async def product_ratings(request: web.Request) -> web.Response:
    result = await request.app[BACKENDS].ratings(request.match_info["id"], _headers(request))
    return _pass_on(result, "ratings")


def _headers(request: web.Request) -> dict[str, str]:
    return outgoing_headers(request.headers, current_user(request))


def _pass_on(result: CallResult, what: str) -> web.Response:
    if result.ok:
        return _json(result.data, 200)
    return _json(unavailable(what), result.status)


def _json(data: object, status: int) -> web.Response:
    # json.dumps' default separators (", " and ": ") match the original's simplejson output.
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")

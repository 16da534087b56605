"""productpage's HTML routes: the index, the product page, health, sign in and sign out.

Registered by :func:`bookinfo.productpage.app.create_app`; the data comes from
:mod:`.backends`, the markup from :mod:`.render`.
"""

from __future__ import annotations

from aiohttp import web

from bookinfo.productpage.appkeys import BACKENDS, RENDERER, SESSIONS, SETTINGS
from bookinfo.productpage.catalog import PAGE_PRODUCT
from bookinfo.productpage.headers import outgoing_headers
from bookinfo.productpage.session import COOKIE_NAME, InvalidUserName
from bookinfo.productpage.view import build_page_view, service_tree

# Pages whose content depends on the session cookie must not be shared by caches.
VARY_COOKIE = {"Vary": "Cookie"}


def current_user(request: web.Request) -> str | None:
    return request.app[SESSIONS].load(request.cookies.get(COOKIE_NAME))


async def index(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    tree = service_tree(
        f"{request.scheme}://{request.host}",
        settings.details_url,
        settings.reviews_url,
        settings.ratings_url,
    )
    return web.Response(text=request.app[RENDERER].index(tree), content_type="text/html")


async def health(request: web.Request) -> web.Response:
    return web.Response(text="Product page is healthy", content_type="text/html")


async def productpage(request: web.Request) -> web.Response:
    user = current_user(request)
    headers = outgoing_headers(request.headers, user)
    backends = request.app[BACKENDS]
    product_id = str(PAGE_PRODUCT.id)
    # details first, then reviews, one after the other, as the original does (spec §4.0).
    details = await backends.details(product_id, headers)
    reviews = await backends.reviews_with_flood(product_id, headers)
    view = build_page_view(
        PAGE_PRODUCT,
        user,
        details.data if details.ok else None,
        reviews.data if reviews.ok else None,
    )
    # Always 200, whatever the backends did: the errors are part of the page.
    html = request.app[RENDERER].product_page(view)
    return web.Response(text=html, content_type="text/html", headers=VARY_COOKIE)


async def login(request: web.Request) -> web.Response:
    """Any user name is accepted and ``passwd`` is ignored, as in the original (no auth)."""
    form = await request.post()
    username = form.get("username")
    if not isinstance(username, str):
        raise web.HTTPBadRequest(text="POST /login needs the form field 'username'\n")
    try:
        cookie = request.app[SESSIONS].dump(username)
    except InvalidUserName as err:
        raise web.HTTPBadRequest(text=f"invalid username: {err}\n") from None
    response = _back_to_referer(request)
    response.set_cookie(COOKIE_NAME, cookie, httponly=True, path="/")
    return response


async def logout(request: web.Request) -> web.Response:
    response = _back_to_referer(request)
    response.del_cookie(COOKIE_NAME, path="/", httponly=True)
    return response


def _back_to_referer(request: web.Request) -> web.Response:
    # The original redirects to the Referer and, without one, sends the literal "Location: None"
    # (spec §4.1). We send such clients to the product page instead: a deliberate fix.
    location = request.headers.get("Referer") or "/productpage"
    return web.Response(status=302, headers={"Location": location, **VARY_COOKIE})

"""``nginx`` as its image runs without a configuration of its own: the default server's welcome
page at ``/`` (and ``/index.html``), its ``/50x.html``, nginx's 404 page for anything else,
``Server: nginx/<version>`` (``NGINX_VERSION``, from the image's tag), GET and HEAD only."""

from __future__ import annotations

import os
from collections.abc import Mapping

from aiohttp import web

from canarymesh.runtime.local.standins import serve

__all__ = ["create_app"]

_WELCOME = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""
_ERROR = """<html>
<head><title>{status}</title></head>
<body>
<center><h1>{status}</h1></center>
<hr><center>nginx/{version}</center>
</body>
</html>
"""
_PAGES = {"/": _WELCOME, "/index.html": _WELCOME, "/50x.html": _ERROR}


def create_app(env: Mapping[str, str]) -> web.Application:
    version = env.get("NGINX_VERSION", "1.27")
    headers = {"Server": f"nginx/{version}"}

    async def page(request: web.Request) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            status = "405 Not Allowed"
            body = _ERROR.format(status=status, version=version)
            return web.Response(status=405, text=body, content_type="text/html", headers=headers)
        found = _PAGES.get(request.path)
        if found is None:
            body = _ERROR.format(status="404 Not Found", version=version)
            return web.Response(status=404, text=body, content_type="text/html", headers=headers)
        if request.path == "/50x.html":
            found = _ERROR.format(status="An error occurred.", version=version)
        return web.Response(text=found, content_type="text/html", headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    return app


if __name__ == "__main__":
    serve("nginx", create_app, os.environ)

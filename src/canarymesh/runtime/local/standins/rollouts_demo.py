"""Argo Rollouts' demo app (``argoproj/rollouts-demo``), as its ``main.go`` behaves:
``GET /color`` answers the color (``"blue"``, text/plain) of ``COLOR`` (the image's tag; a random
one without), after ``LATENCY`` seconds, with a 500 as often as ``ERROR_RATE`` makes the real
app answer one; ``POST /color`` takes the same per-color overrides (``delayLength``,
``return500``); ``/`` is a page that polls ``/color``.

The published ``bad-<color>`` images are built with ``ERROR_RATE=15`` and the app answers 500
when a random 0..99 is *at least* ``ERROR_RATE``, so they fail about 85% of requests; this
stand-in does the same, because a rollout of ``bad-red`` must look as it does on a cluster.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Mapping

from aiohttp import web

from canarymesh.runtime.local.standins import serve

__all__ = ["COLORS", "create_app"]

COLORS = ("red", "orange", "yellow", "green", "blue", "purple")
_PAGE = """<!DOCTYPE html>
<html><head><title>Argo Rollouts Demo</title></head>
<body><h1>Argo Rollouts Demo</h1><div id="bubbles"></div>
<script>
setInterval(async () => {
  const answer = await fetch("/color");
  const color = answer.ok ? JSON.parse(await answer.text()) : "black";
  const dot = document.createElement("span");
  dot.textContent = "\u25cf"; dot.style.color = color;
  document.getElementById("bubbles").prepend(dot);
}, 100);
</script></body></html>
"""


def create_app(env: Mapping[str, str], rng: random.Random | None = None) -> web.Application:
    color = env.get("COLOR", "")
    latency = float(env.get("LATENCY") or 0)
    error_rate = int(env.get("ERROR_RATE") or 0)
    pick = rng or random.Random()

    async def get_color(request: web.Request) -> web.Response:
        body = await request.read()
        overrides: list[dict[str, object]] = []
        if body and body != b'"[]"':
            try:
                overrides = list(json.loads(body))
            except (ValueError, TypeError) as err:
                return web.Response(status=500, text=str(err))
        answer = color or pick.choice(COLORS)
        mine = next((o for o in overrides if isinstance(o, dict) and o.get("color") == answer), {})
        asked = mine.get("delayLength")
        delay = float(asked) if isinstance(asked, int | float) and asked > 0 else latency
        if delay > 0:
            await asyncio.sleep(delay)
        chance = mine.get("return500")
        overridden = isinstance(chance, int) and chance > 0 and chance >= pick.randrange(100)
        failing = error_rate > 0 and pick.randrange(100) >= error_rate
        status = 500 if overridden or failing else 200
        return web.Response(
            status=status,
            text=f'"{answer}"',
            content_type="text/plain",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/color", get_color)
    app.router.add_get("/", page)
    return app


if __name__ == "__main__":
    serve("rollouts-demo", create_app, os.environ)

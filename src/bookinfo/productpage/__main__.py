"""``python -m bookinfo.productpage [PORT] [--host HOST]``: the process edge of productpage."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from bookinfo.common.server import serve
from bookinfo.productpage.app import create_app
from bookinfo.productpage.settings import Settings


def build(env: Mapping[str, str]) -> web.Application:
    """The only place productpage reads the environment."""
    return create_app(Settings.from_env(env))


if __name__ == "__main__":
    serve("productpage", build)

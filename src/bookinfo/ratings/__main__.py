"""``python -m bookinfo.ratings [PORT] [--host HOST]``: the process edge of ratings."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from bookinfo.common.server import serve
from bookinfo.ratings.app import create_app
from bookinfo.ratings.settings import Settings


def build(env: Mapping[str, str]) -> web.Application:
    """The only place ratings reads the environment."""
    return create_app(Settings.from_env(env))


if __name__ == "__main__":
    serve("ratings", build)

"""``python -m bookinfo.reviews [PORT] [--host HOST]``: the process edge of reviews."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from bookinfo.common.server import serve
from bookinfo.reviews.app import create_app
from bookinfo.reviews.settings import Settings


def build(env: Mapping[str, str]) -> web.Application:
    """The only place reviews reads the environment."""
    return create_app(Settings.from_env(env))


if __name__ == "__main__":
    serve("reviews", build)

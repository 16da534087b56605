"""``python -m bookinfo.details [PORT] [--host HOST]``: the process edge of details."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from bookinfo.common.server import serve
from bookinfo.details.app import create_app
from bookinfo.details.settings import Settings


def build(env: Mapping[str, str]) -> web.Application:
    """The only place details reads the environment."""
    return create_app(Settings.from_env(env))


if __name__ == "__main__":
    serve("details", build)

"""The typed keys under which productpage's application holds its parts."""

from __future__ import annotations

from aiohttp import web

from bookinfo.productpage.backends import Backends
from bookinfo.productpage.metrics import Metrics
from bookinfo.productpage.render import Renderer
from bookinfo.productpage.session import SessionCodec
from bookinfo.productpage.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
RENDERER = web.AppKey("renderer", Renderer)
SESSIONS = web.AppKey("sessions", SessionCodec)
# Set at startup, once the shared client session exists.
BACKENDS = web.AppKey("backends", Backends)

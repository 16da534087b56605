"""``create_app(settings)``: the dashboard's aiohttp application. Called by ``canarymesh dashboard``
and by the tests (in process, or served on a loopback port for the browser tests).

Each ``/api/*`` handler fetches raw answers from :mod:`canarymesh.dashboard.sources`, hands them to
a pure view model of :mod:`canarymesh.views` and returns it as JSON; the page
(``static/index.html`` + ``static/app.js``) polls these and draws them. Without a local mesh (a
cluster's Prometheus only) the config view is empty and nothing can be changed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from canarymesh import __version__
from canarymesh.analysis.panels import panel_query
from canarymesh.api.analyze import analyze
from canarymesh.api.loader import load_text
from canarymesh.dashboard.rollouts import RolloutsApi
from canarymesh.dashboard.settings import DashboardSettings
from canarymesh.dashboard.sources import MeshApi, PromSource, SourceError, TraceSource
from canarymesh.errors import ConfigError
from canarymesh.runtime.local.store import yaml_text
from canarymesh.views.config import config_view
from canarymesh.views.mesh_graph import mesh_graph
from canarymesh.views.promjson import instant
from canarymesh.views.service import SERIES, service_view
from canarymesh.views.traces import trace_summary, waterfall

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
SETTINGS: web.AppKey[DashboardSettings] = web.AppKey("settings", DashboardSettings)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A PromQL range: digits and a unit. Anything else would be spliced into the query text.
_WINDOW = re.compile(r"^[1-9][0-9]{0,4}(s|m|h)$")
_SERVICE = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
# Qualified kinds the config view lists (the store's keys; see canarymesh get).
_ISTIO = "networking.istio.io"
CONFIG_KINDS = (
    "deployment.apps",
    "service",
    "serviceaccount",
    f"virtualservice.{_ISTIO}",
    f"destinationrule.{_ISTIO}",
    f"gateway.{_ISTIO}",
    f"serviceentry.{_ISTIO}",
    f"sidecar.{_ISTIO}",
    "peerauthentication.security.istio.io",
    "authorizationpolicy.security.istio.io",
    "httproute.gateway.networking.k8s.io",
    "gateway.gateway.networking.k8s.io",
    "canary.canarymesh.io",
)


def to_json(value: object) -> web.Response:
    body = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value  # type: ignore[arg-type]
    return web.json_response(body, dumps=lambda v: json.dumps(v, allow_nan=False))


class Dashboard:
    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.prometheus = PromSource(settings.prometheus_url) if settings.prometheus_url else None
        self.tracing = TraceSource(settings.tracing_url) if settings.tracing_url else None
        self.mesh = MeshApi(settings.state_dir) if settings.state_dir else None
        self.rollouts = RolloutsApi(settings.state_dir, self.mesh, self.prometheus)

    async def close(self, app: web.Application) -> None:
        for source in (self.prometheus, self.tracing):
            if source is not None:
                await source.close()

    def _prom(self) -> PromSource:
        if self.prometheus is None:
            raise ConfigError("no Prometheus: start the dashboard with --prometheus-url")
        return self.prometheus

    def _traces(self) -> TraceSource:
        if self.tracing is None:
            raise ConfigError("no trace collector: start the dashboard with --tracing-url")
        return self.tracing

    async def info(self, request: web.Request) -> web.Response:
        s = self.settings
        return to_json(
            {
                "version": __version__,
                "mode": s.mode,
                "prometheus": s.prometheus_url,
                "tracing": s.tracing_url,
                "refresh_seconds": s.refresh_seconds,
                "read_only": s.state_dir is None,
            }
        )

    async def graph(self, request: web.Request) -> web.Response:
        window = _window(request)
        prom = self._prom()
        names = ("edge-request-rate", "edge-error-rate", "edge-p99")
        rates, errors, p99s = [
            await prom.query(panel_query(n, {"interval": window})) for n in names
        ]
        return to_json(mesh_graph(rates, errors, p99s, window))

    async def services(self, request: web.Request) -> web.Response:
        data = await self._prom().query(panel_query("services", {"interval": _window(request)}))
        names = {s.labels.get("destination_service", "") for s in instant(data)}
        found = sorted(names - {"", "unknown"})
        return to_json({"services": found})

    async def service(self, request: web.Request) -> web.Response:
        window = _window(request)
        service = request.query.get("service", "")
        if not _SERVICE.match(service):
            raise ConfigError(
                f"service must be a host name (reviews.default.svc...), not {service!r}"
            )
        end = time.time()
        span = self.settings.chart_range_seconds
        # A chart is a few hundred pixels wide: more points than that cost bytes and render time
        # and show nothing more (bench/dashboard.py measures the difference).
        step = max(1.0, span / self.settings.chart_points)
        # A literal host in a PromQL regex: each dot escaped, and the backslash escaped for the
        # string literal it sits in.
        variables = {"interval": window, "service": service.replace(".", "\\\\.")}
        prom = self._prom()
        results = {
            name: await prom.query_range(panel_query(name, variables), end - span, end, step)
            for name in SERIES
        }
        return to_json(service_view(service, window, results))

    async def config(self, request: web.Request) -> web.Response:
        if self.mesh is None:
            return to_json(config_view([], [], []))
        documents = await self.mesh.resources(CONFIG_KINDS)
        loaded = load_text(yaml_text(documents), "applied")
        diagnostics = [*loaded.diagnostics, *analyze(loaded.resources)]
        proxies = [p.model_dump(mode="json") for p in await self.mesh.proxy_status()]
        return to_json(config_view(documents, diagnostics, proxies))

    async def trace_services(self, request: web.Request) -> web.Response:
        return to_json({"services": await self._traces().services()})

    async def traces(self, request: web.Request) -> web.Response:
        q = request.query
        params = {"limit": q.get("limit", "20")}
        if q.get("service"):
            params["serviceName"] = q["service"]
        if q.get("operation"):
            params["spanName"] = q["operation"]
        if q.get("min_ms"):
            params["minDuration"] = str(int(float(q["min_ms"]) * 1000))
        if q.get("error") in ("1", "true"):
            params["error"] = "true"
        found = await self._traces().search(params)
        now, settle = int(time.time() * 1_000_000), self.settings.trace_settle_us
        summaries = [dataclasses.asdict(trace_summary(t, now, settle)) for t in found if t]
        return to_json({"traces": summaries})

    async def trace(self, request: web.Request) -> web.Response:
        trace_id = request.match_info["trace_id"]
        if not re.fullmatch(r"[0-9a-f]{16,32}", trace_id):
            raise ConfigError(f"a trace id is 16 or 32 hex digits, not {trace_id!r}")
        spans = await self._traces().trace(trace_id)
        now = int(time.time() * 1_000_000)
        return to_json(waterfall(spans, now, self.settings.trace_settle_us))

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")


def _window(request: web.Request) -> str:
    window = request.query.get("window", "1m")
    if not _WINDOW.match(window):
        raise ConfigError(f"window must be a PromQL range such as 30s, 5m or 1h, not {window!r}")
    return window


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConfigError as err:
        return web.json_response({"error": str(err)}, status=400)
    except SourceError as err:
        return web.json_response({"error": str(err)}, status=503)


def create_app(settings: DashboardSettings) -> web.Application:
    dashboard = Dashboard(settings)
    app = web.Application(middlewares=[errors_as_json])
    app[SETTINGS] = settings
    app.add_routes(
        [
            web.get("/", dashboard.index),
            web.get("/api/info", dashboard.info),
            web.get("/api/graph", dashboard.graph),
            web.get("/api/services", dashboard.services),
            web.get("/api/service", dashboard.service),
            web.get("/api/config", dashboard.config),
            web.get("/api/trace-services", dashboard.trace_services),
            web.get("/api/traces", dashboard.traces),
            web.get("/api/trace/{trace_id}", dashboard.trace),
            web.get("/api/rollouts", dashboard.rollouts.list),
            web.post("/api/rollouts/{namespace}/{name}/{command}", dashboard.rollouts.act),
            web.static("/static", STATIC),
        ]
    )
    app.on_cleanup.append(dashboard.close)
    return app

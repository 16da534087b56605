"""The local mesh's span collector: a Zipkin-compatible HTTP server with a bounded in-memory store.

Started by :mod:`canarymesh.runtime.local.daemon` in the control plane's loop; its port becomes
``MeshSettings.tracing_port``, so every sidecar and the gateway send their spans here
(:mod:`canarymesh.xds.tracing`). The dashboard reads it through Zipkin's own query API
(``/api/v2/services``, ``/api/v2/spans``, ``/api/v2/traces``, ``/api/v2/trace/{id}``), so a
real Zipkin or Jaeger (which speaks the same API) can stand in for it on a cluster.

The store keeps the newest ``max_traces`` traces: a mesh under load sends thousands of spans a
second and only the recent ones are worth looking at.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from aiohttp import web

from canarymesh.errors import TemporaryError
from canarymesh.runtime.local.sockets import restrict_socket

__all__ = ["SpanStore", "TraceQuery", "TracingCollector"]

Span = dict[str, object]
_NOT_SPANS = "the body must be a JSON array of spans (Zipkin v2)"


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """Zipkin's search: every given condition must hold for one span of the trace."""

    service: str | None = None
    operation: str | None = None
    min_duration_us: int = 0
    error: bool = False
    limit: int = 20

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> TraceQuery:
        try:
            return cls(
                service=params.get("serviceName") or None,
                operation=params.get("spanName") or None,
                min_duration_us=int(params.get("minDuration") or 0),
                error=params.get("error", "") in ("1", "true"),
                limit=max(1, min(int(params.get("limit") or 20), 1000)),
            )
        except ValueError as err:
            raise web.HTTPBadRequest(text=f"bad search parameter: {err}") from None

    def matches(self, spans: Iterable[Span]) -> bool:
        return any(self._span_matches(span) for span in spans)

    def _span_matches(self, span: Span) -> bool:
        if self.service and service_of(span) != self.service:
            return False
        if self.operation and span.get("name") != self.operation:
            return False
        if int(cast(int, span.get("duration", 0))) < self.min_duration_us:
            return False
        return not self.error or "error" in cast(dict[str, str], span.get("tags", {}))


def service_of(span: Span) -> str:
    endpoint = span.get("localEndpoint")
    if isinstance(endpoint, dict):
        return str(endpoint.get("serviceName", "unknown"))
    return "unknown"


class SpanStore:
    """The newest ``max_traces`` traces, oldest evicted first; spans grouped by trace id."""

    def __init__(self, max_traces: int = 5000, max_spans_per_trace: int = 500) -> None:
        self.max_traces = max_traces
        self.max_spans = max_spans_per_trace
        self._traces: OrderedDict[str, list[Span]] = OrderedDict()
        self.received = 0

    def add(self, spans: Iterable[object]) -> int:
        added = 0
        for span in spans:
            if not isinstance(span, dict) or not span.get("traceId") or not span.get("id"):
                continue
            trace_id = str(span["traceId"])
            # Envoy sends 128-bit ids; a 64-bit caller's id is the same trace padded with zeros.
            trace_id = trace_id.rjust(32, "0")
            span["traceId"] = trace_id
            bucket = self._traces.get(trace_id)
            if bucket is None:
                bucket = self._traces[trace_id] = []
                while len(self._traces) > self.max_traces:
                    self._traces.popitem(last=False)
            if len(bucket) < self.max_spans:
                bucket.append(cast(Span, span))
                added += 1
        self.received += added
        return added

    def trace(self, trace_id: str) -> list[Span] | None:
        return self._traces.get(trace_id.rjust(32, "0"))

    def services(self) -> list[str]:
        return sorted({service_of(s) for spans in self._traces.values() for s in spans})

    def operations(self, service: str) -> list[str]:
        return sorted(
            {
                str(s.get("name", ""))
                for spans in self._traces.values()
                for s in spans
                if service_of(s) == service
            }
        )

    def search(self, query: TraceQuery) -> list[list[Span]]:
        """Newest first."""
        found: list[list[Span]] = []
        for spans in reversed(self._traces.values()):
            if query.matches(spans):
                found.append(list(spans))
                if len(found) >= query.limit:
                    break
        return found


class TracingCollector:
    """The HTTP side of :class:`SpanStore` on 127.0.0.1."""

    def __init__(self, store: SpanStore | None = None) -> None:
        self.store = store or SpanStore()
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Pod networks: the proxies send spans over the Unix socket only (owned by their user),
        # so the loopback port, which anyone may reach, answers queries but takes no spans.
        self.spans_from_unix_only = False

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.add_routes(
            [
                web.post("/api/v2/spans", self._post_spans),
                web.get("/api/v2/services", self._services),
                web.get("/api/v2/spans", self._operations),
                web.get("/api/v2/traces", self._traces),
                web.get("/api/v2/trace/{trace_id}", self._trace),
                web.get("/health", self._health),
            ]
        )
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = cast(object, site._server)  # the bound port when port=0
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        return self.port

    async def start_unix(self, path: Path, owner: tuple[int, int] | None = None) -> str:
        """Also take spans on the Unix socket ``path``, where the pods' proxies send them."""
        if self._runner is None:
            raise TemporaryError("start the collector's HTTP port first", delay=0.0)
        path.unlink(missing_ok=True)
        await web.UnixSite(self._runner, str(path)).start()
        restrict_socket(path, owner)
        return str(path)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _post_spans(self, request: web.Request) -> web.Response:
        on_unix = isinstance(
            request.transport and request.transport.get_extra_info("sockname"), str
        )
        if self.spans_from_unix_only and not on_unix:
            return web.json_response(
                {"error": "spans are taken from the mesh's proxies only"}, status=403
            )
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, list):
            return web.json_response({"error": _NOT_SPANS}, status=400)
        self.store.add(body)
        return web.Response(status=202)

    async def _services(self, request: web.Request) -> web.Response:
        return web.json_response(self.store.services())

    async def _operations(self, request: web.Request) -> web.Response:
        return web.json_response(self.store.operations(request.query.get("serviceName", "")))

    async def _traces(self, request: web.Request) -> web.Response:
        return web.json_response(self.store.search(TraceQuery.from_params(request.query)))

    async def _trace(self, request: web.Request) -> web.Response:
        spans = self.store.trace(request.match_info["trace_id"])
        if spans is None:
            return web.json_response({"error": "no such trace"}, status=404)
        return web.json_response(spans)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "UP", "spans": self.store.received})

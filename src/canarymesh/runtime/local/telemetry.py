"""The local mesh's telemetry collector: a gRPC access-log (ALS) server every Envoy logs to, and
an HTTP ``/metrics`` endpoint with Istio's standard metrics for Prometheus.

The local control plane starts one :class:`TelemetryCollector`, puts the port of :meth:`start` in
``MeshSettings.telemetry_port`` (so ``canarymesh.xds`` points the ``canarymesh_telemetry`` cluster
at it) and gives Prometheus the port of :meth:`serve_metrics` to scrape.

With an ``authenticate`` function (the local control plane always passes one), a stream is
counted only if the token in its gRPC metadata proves the proxy its first message names, and its
log name is that proxy's (``<proxy id>|inbound|outbound|gateway``); any other stream is refused
(PERMISSION_DENIED) and counted in ``canarymesh_telemetry_rejected_streams_total``, so no
process but the mesh's own proxies writes a metric, and each only as itself.

Each ALS stream names its proxy once, on its first message (``identifier.node.id`` and
``log_name`` = ``<proxy id>|<direction>``); the stream keeps that identity. ``outbound`` and
``gateway`` logs report ``source``, ``inbound`` logs ``destination``
(:mod:`canarymesh.xds.telemetry` explains the headers that carry the peers' identities).

The per-request path is kept cheap: the fields the labels depend on are read straight from the
protobuf into a tuple, and that tuple finds the label set's series in a per-stream cache. Only a
new tuple converts the entry to proto3 JSON and runs the pure mapping
(:func:`canarymesh.xds.telemetry.labels_from_log_entry`), so the labels are exactly the mapping's.
``bench/telemetry.py`` measures it (about 13 us of CPU per entry, 15x the textbook path).

TCP connections are logged once, when they close, so ``istio_tcp_connections_opened_total``
counts a connection at its close, not at its open as Istio does. Their peers come from the
``addresses`` callable (or inbound addresses learned from logs) and from certificate principals.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
from aiohttp import web
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from canarymesh.api.canary import GROUP_HEADER
from canarymesh.errors import TemporaryError
from canarymesh.runtime.local.config_canary_metrics import ConfigCanaryMetrics
from canarymesh.runtime.local.sockets import serve_grpc_on_socket
from canarymesh.runtime.local.telemetry_metrics import HttpSeries, IstioMetrics, TcpSeries
from canarymesh.xds import names
from canarymesh.xds.telemetry import (
    UNKNOWN,
    PeerInfo,
    Reporter,
    claimed_source,
    labels_from_log_entry,
    labels_from_tcp_entry,
    principal_namespace,
)

__all__ = ["TelemetryCollector", "reporter_of"]

log = logging.getLogger(__name__)

_UNKNOWN_PEER = PeerInfo()
# Label sets are few (workloads x services x codes x flags); the bound only guards against a
# misbehaving peer header making every request new.
_CACHE_LIMIT = 20_000
_ADDRESS_LIMIT = 4096
_NOT_SET = 0  # AccessLogType.NotSet (older Envoys)
_TCP_END = 3  # AccessLogType.TcpConnectionEnd


def reporter_of(log_name: str) -> Reporter:
    """``<proxy>|inbound`` reports ``destination``; outbound and gateway logs report ``source``."""
    return "destination" if log_name.rpartition("|")[2] == "inbound" else "source"


def _address(address: Any) -> str:
    socket = address.socket_address
    return f"{socket.address}:{socket.port_value}"


def _sans(common: Any) -> tuple[str, ...]:
    return tuple(
        san.uri for san in common.tls_properties.peer_certificate_properties.subject_alt_name
    )


def _http_key(entry: Any, pod_network: bool = False) -> tuple[object, ...]:
    """Every field :func:`labels_from_log_entry` reads, raw: equal keys, equal labels (in a pod
    network the peers' addresses too, which name the other side).

    Unequal keys may still give equal labels (a certificate's subject, say); they then share
    one series, since :meth:`IstioMetrics.http_series` is keyed by label values.
    """
    common = entry.common_properties
    request = entry.request
    request_headers = request.request_headers
    response = entry.response
    tls = common.tls_properties
    return (
        request.authority,
        request_headers.get(names.SOURCE_PEER_HEADER),
        request_headers.get(names.DESTINATION_SERVICE_HEADER),
        request_headers.get("content-type"),
        request_headers.get(GROUP_HEADER),  # the release group tag
        response.response_headers.get(names.DESTINATION_PEER_HEADER),
        # An unset code reads as 0, which the mapping also reports as "0".
        response.response_code.value,
        common.upstream_cluster,
        common.response_flags.SerializeToString(deterministic=True),
        tls.tls_version,
        tls.peer_certificate_properties.SerializeToString(deterministic=True),
        tls.tls_sni_hostname,
        common.downstream_remote_address.socket_address.address if pod_network else "",
        common.upstream_remote_address.socket_address.address if pod_network else "",
    )


def _duration_ms(common: Any) -> float:
    if not common.HasField("time_to_last_downstream_tx_byte"):
        return 0.0
    value = common.time_to_last_downstream_tx_byte
    return float(value.seconds * 1000 + value.nanos / 1e6)


def _as_json(entry: Any) -> dict[str, Any]:
    return cast(dict[str, Any], json_format.MessageToDict(entry, preserving_proto_field_name=True))


@dataclass(slots=True)
class _Stream:
    """One ALS stream: which proxy and direction it logs for, fixed by its first message."""

    node_id: str = ""
    log_name: str = ""
    reporter: Reporter = "source"
    local: PeerInfo = _UNKNOWN_PEER
    known: bool = False
    http: dict[tuple[object, ...], HttpSeries] = field(default_factory=dict)
    # (destination_service, response_code) of each cached HTTP series: a config canary's labels.
    http_target: dict[tuple[object, ...], tuple[str, str]] = field(default_factory=dict)
    tcp: dict[tuple[object, ...], TcpSeries] = field(default_factory=dict)
    token: str | None = None
    authenticated: bool = False


class Rejected(Exception):
    """An access-log stream the collector will not count (its reason is the message)."""


class TelemetryCollector:
    """ALS server plus ``/metrics``; start both inside the control plane's event loop."""

    def __init__(
        self,
        peers: Callable[[str], PeerInfo | None],
        registry: CollectorRegistry | None = None,
        *,
        addresses: Callable[[str], PeerInfo | None] | None = None,
        services: Callable[[str], frozenset[str] | None] | None = None,
        pod_network: bool = False,
        authenticate: Callable[[str | None, str], bool] | None = None,
        known: Callable[[], frozenset[tuple[str, str]]] | None = None,
        config_set: Callable[[str], tuple[str, str] | None] | None = None,
        max_series: int = 10_000,
    ) -> None:
        """``peers`` maps a proxy's node id to its workload; ``addresses`` (optional) maps a
        sidecar's inbound ``host:port`` (a pod's IP with ``pod_network``) to its workload,
        naming the destination of outbound TCP connections (which carry no exchange headers).
        Without it the collector learns those addresses from the inbound logs it has seen.

        With ``pod_network`` the other side of every request is the pod behind its remote
        address (pods cannot forge their address), never what a header claims; ``services``
        names the services that select a proxy, the only ones its inbound logs may name.

        ``config_set`` names the config canary and set (``canary``/``stable``) a proxy is in,
        if any: its requests are also counted in :class:`ConfigCanaryMetrics`."""
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = IstioMetrics(self.registry, max_series=max_series)
        self.config_metrics = ConfigCanaryMetrics(self.registry)
        self._config_set = config_set
        # destination_service -> the proxies whose outbound requests reached it (bounded by the
        # proxies and services the mesh runs: labels are folded before they get here).
        self._callers: dict[str, set[str]] = {}
        # (workload, namespace) of every proxy the mesh runs: other label values are folded.
        self._known = known
        self._peers = peers
        self._addresses = addresses
        self._services = services
        self._pod_network = pod_network
        self._authenticate = authenticate
        self.rejected = Counter(
            "canarymesh_telemetry_rejected_streams",
            "Access-log streams refused: no or a wrong proxy token, or another proxy's log name.",
            ["reason"],
            registry=self.registry,
        )
        self.folded = Counter(
            "canarymesh_telemetry_folded_labels",
            "Workload labels of no running workload, counted as unknown.",
            registry=self.registry,
        )
        self.dropped = Counter(
            "canarymesh_telemetry_dropped_entries",
            "Access-log entries that could not be counted (malformed).",
            registry=self.registry,
        )
        self._learned: dict[str, PeerInfo] = {}
        self._by_principal: dict[str, PeerInfo | None] = {}
        self._server: grpc.aio.Server | None = None
        self._runner: web.AppRunner | None = None
        self.entries = 0
        self.errors = 0

    # -- servers --------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen for Envoy's access logs on ``host:port`` (0 picks a port); returns the port."""
        server = grpc.aio.server()
        als_pb2_grpc.add_AccessLogServiceServicer_to_server(_Servicer(self), server)
        bound = int(server.add_insecure_port(f"{host}:{port}"))
        if bound == 0:
            raise TemporaryError(f"telemetry server could not bind {host}:{port}", delay=1.0)
        await server.start()
        self._server = server
        return bound

    async def start_unix(self, path: Path, owner: tuple[int, int] | None = None) -> str:
        """Listen for access logs on the Unix socket ``path`` (0600, owned by ``owner``)."""
        self._server = await serve_grpc_on_socket(
            path,
            owner,
            lambda server: als_pb2_grpc.add_AccessLogServiceServicer_to_server(
                _Servicer(self), server
            ),
        )
        return str(path)

    async def serve_metrics(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve ``GET /metrics`` (Prometheus text format); returns the port."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        try:
            sock = socket.create_server((host, port))
        except OSError as err:
            raise TemporaryError(
                f"metrics server could not bind {host}:{port}: {err}", delay=1
            ) from err
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0.5)
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        # Rendered in a thread: a large registry must not stall the control plane's loop (the
        # collector snapshots its series first, see IstioMetrics.collect).
        body = await asyncio.to_thread(generate_latest, self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # -- ingestion (the servicer calls these; tests and bench/ call them directly) --------------

    def new_stream(self, token: str | None = None) -> _Stream:
        return _Stream(token=token)

    def ingest(self, stream: _Stream, message: als_pb2.StreamAccessLogsMessage) -> None:
        """Count one ALS message (a batch of entries) of ``stream``; bad entries are skipped.

        Rejected when the stream does not prove it is the proxy it names."""
        if message.HasField("identifier"):
            identifier = message.identifier
            self._check(stream, identifier.node.id, identifier.log_name)
            self._identify(stream, identifier.node.id, identifier.log_name)
        elif self._authenticate is not None and not stream.authenticated:
            self._reject("no identifier on the first message")
        elif not stream.known and stream.node_id:
            # The proxy may log before the runtime registered it: ask again, once per batch.
            self._identify(stream, stream.node_id, stream.log_name)
        if message.HasField("http_logs"):
            self._ingest_http(stream, message.http_logs.log_entry)
        elif message.HasField("tcp_logs"):
            self._ingest_tcp(stream, message.tcp_logs.log_entry)

    def _check(self, stream: _Stream, node_id: str, log_name: str) -> None:
        if self._authenticate is None:
            return
        if stream.authenticated and node_id == stream.node_id:
            return
        if not self._authenticate(stream.token, node_id):
            self._reject("no proxy token" if not stream.token else "a token of another proxy")
        proxy, _, direction = log_name.rpartition("|")
        if proxy != node_id or direction not in ("inbound", "outbound", "gateway"):
            self._reject("a log name that is not the proxy's own")
        stream.authenticated = True

    def _reject(self, reason: str) -> None:
        self.rejected.labels(reason).inc()
        raise Rejected(reason)

    def _skip(self, stream: _Stream) -> None:
        # Never let one odd entry end the stream: Envoy would reconnect and the batch be lost.
        self.dropped.inc()
        self.errors += 1
        log.exception("telemetry: could not count an access log of %s", stream.log_name)

    def _identify(self, stream: _Stream, node_id: str, log_name: str) -> None:
        try:
            local = self._peers(node_id) if node_id else None
        except Exception:
            # A failing lookup must not end the stream: its requests count as from ``unknown``.
            log.exception("telemetry: peers(%r) failed", node_id)
            local = None
        stream.node_id, stream.log_name = node_id, log_name
        stream.reporter = reporter_of(log_name)
        stream.known = local is not None
        new_local = local or _UNKNOWN_PEER
        if new_local != stream.local:
            stream.local = new_local
            stream.http.clear()
            stream.http_target.clear()
            stream.tcp.clear()
        if local is not None and local.principal != UNKNOWN:
            seen = self._by_principal.get(local.principal, local)
            # Workloads sharing a service account cannot be told apart by certificate.
            self._by_principal[local.principal] = local if seen == local else None

    def _ingest_http(self, stream: _Stream, entries: Any) -> None:
        cache = stream.http
        member = None
        if self._config_set is not None and stream.known:
            member = self._config_set(stream.node_id)
        for entry in entries:
            try:
                key = _http_key(entry, self._pod_network)
                series = cache.get(key)
                if series is None:
                    series = self._new_http_series(stream, entry, key)
                request, response = entry.request, entry.response
                duration = _duration_ms(entry.common_properties)
                series.record(
                    duration,
                    request.request_headers_bytes + request.request_body_bytes,
                    response.response_headers_bytes + response.response_body_bytes,
                )
                if member is not None:
                    service, code = stream.http_target[key]
                    self.config_metrics.record((*member, stream.reporter, service, code), duration)
            except Exception:
                self._skip(stream)
        self.entries += len(entries)

    def _new_http_series(self, stream: _Stream, entry: Any, key: tuple[object, ...]) -> HttpSeries:
        peer = self._remote_pod(stream, entry.common_properties) if self._pod_network else None
        services = self._services(stream.node_id) if self._services is not None else None
        labels = labels_from_log_entry(
            _as_json(entry), stream.reporter, stream.local, peer, services
        )
        labels = self._bounded(labels)
        series = self.metrics.http_series(labels)
        if len(stream.http) >= _CACHE_LIMIT:
            stream.http.clear()
            stream.http_target.clear()
        stream.http[key] = series
        service = labels["destination_service"]
        stream.http_target[key] = (service, labels["response_code"])
        if stream.reporter == "source" and stream.known:
            self._callers.setdefault(service, set()).add(stream.node_id)
        if stream.reporter == "destination":
            self._learn(_address(entry.common_properties.downstream_local_address), stream)
        return series

    def callers_of(self, service: str) -> set[str]:
        """The proxies whose outbound requests reached ``service`` (its FQDN) so far."""
        return set(self._callers.get(service, ()))

    def _ingest_tcp(self, stream: _Stream, entries: Any) -> None:
        for entry in entries:
            try:
                self._count_tcp(stream, entry)
            except Exception:
                self._skip(stream)
        self.entries += len(entries)

    def _count_tcp(self, stream: _Stream, entry: Any) -> None:
        common = entry.common_properties
        if common.access_log_type not in (_TCP_END, _NOT_SET):
            # The mesh logs a connection once, when it ends (opened and closed are counted
            # then); on-connect and periodic entries would count it twice.
            return
        if self._pod_network:
            peer = self._remote_pod(stream, common)
            if stream.reporter == "destination":
                peer = claimed_source(_sans(common)[0] if _sans(common) else UNKNOWN, peer)
        elif stream.reporter == "destination":
            self._learn(_address(common.downstream_local_address), stream)
            peer = self._caller(common)
        else:
            peer = self._callee(_address(common.upstream_remote_address))
        key = (
            common.upstream_cluster,
            common.response_flags.SerializeToString(deterministic=True),
            _sans(common),
            common.tls_properties.tls_sni_hostname,
            peer,
        )
        series = stream.tcp.get(key)
        if series is None:
            labels = labels_from_tcp_entry(_as_json(entry), stream.reporter, stream.local, peer)
            series = self.metrics.tcp_series(self._bounded(labels))
            if len(stream.tcp) >= _CACHE_LIMIT:
                stream.tcp.clear()
            stream.tcp[key] = series
        props = entry.connection_properties
        series.record(props.received_bytes, props.sent_bytes, 1, 1)

    def _learn(self, address: str, stream: _Stream) -> None:
        if stream.known and self._learned.get(address) != stream.local:
            if len(self._learned) >= _ADDRESS_LIMIT:
                self._learned.clear()
            self._learned[address] = stream.local

    def _bounded(self, labels: dict[str, str]) -> dict[str, str]:
        """``labels`` with any workload the mesh does not run folded into ``unknown``: a label
        value comes from the mesh's own records, never from whatever a header claims."""
        known = self._known
        if known is None:
            return labels
        workloads = known()
        for side in ("source", "destination"):
            workload = labels[f"{side}_workload"]
            namespace = labels[f"{side}_workload_namespace"]
            if workload == UNKNOWN or (workload, namespace) in workloads:
                continue
            self.folded.inc()
            principal = labels[f"{side}_principal"]
            labels = {
                **labels,
                f"{side}_workload": UNKNOWN,
                f"{side}_app": UNKNOWN,
                f"{side}_version": UNKNOWN,
                f"{side}_canonical_service": UNKNOWN,
                f"{side}_canonical_revision": "latest",
                f"{side}_workload_namespace": principal_namespace(principal),
            }
        return labels

    def _remote_pod(self, stream: _Stream, common: Any) -> PeerInfo:
        """In a pod network, the other side of a logged request: the pod behind its address."""
        remote = (
            common.downstream_remote_address
            if stream.reporter == "destination"
            else common.upstream_remote_address
        )
        return self._by_address(remote.socket_address.address) or _UNKNOWN_PEER

    def _by_address(self, address: str) -> PeerInfo | None:
        return self._addresses(address) if self._addresses is not None else None

    def _callee(self, address: str) -> PeerInfo:
        found = self._addresses(address) if self._addresses is not None else None
        return found or self._learned.get(address) or _UNKNOWN_PEER

    def _caller(self, common: Any) -> PeerInfo:
        sans = _sans(common)
        if not sans:
            return _UNKNOWN_PEER
        found = self._by_principal.get(sans[0])
        if found is not None:
            return found
        # Known principal, unknown workload: Istio would still name the principal and namespace.
        namespace = sans[0].split("/ns/", 1)[1].split("/", 1)[0] if "/ns/" in sans[0] else UNKNOWN
        return PeerInfo(namespace=namespace, principal=sans[0])


class _RefusalLog:
    """Refused streams, logged once per :data:`REFUSAL_LOG_EVERY` seconds with how many were
    refused meanwhile: a flood of them must not turn into a flood of log lines written on the
    event loop (each refusal is counted in the metrics all the same)."""

    def __init__(self) -> None:
        self.last = -REFUSAL_LOG_EVERY
        self.quiet = 0

    def note(self, peer: str, reason: str) -> None:
        now = time.monotonic()
        if now - self.last < REFUSAL_LOG_EVERY:
            self.quiet += 1
            return
        also = f" (and {self.quiet} more since the last line)" if self.quiet else ""
        log.warning("telemetry: refused a stream %s: %s%s", peer, reason, also)
        self.last, self.quiet = now, 0


REFUSAL_LOG_EVERY = 10.0
_REFUSALS = _RefusalLog()


class _Servicer(als_pb2_grpc.AccessLogServiceServicer):  # type: ignore[misc]
    def __init__(self, collector: TelemetryCollector) -> None:
        self._collector = collector

    async def StreamAccessLogs(
        self, request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage], context: Any
    ) -> als_pb2.StreamAccessLogsResponse:
        metadata = dict(context.invocation_metadata() or ())
        stream = self._collector.new_stream(metadata.get(names.PROXY_TOKEN_METADATA))
        try:
            async for message in request_iterator:
                self._collector.ingest(stream, message)
        except grpc.RpcError:
            pass  # the proxy went away; what it sent is counted
        except Rejected as err:
            _REFUSALS.note(context.peer(), str(err))
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(err))
        return als_pb2.StreamAccessLogsResponse()

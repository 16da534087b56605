"""Istio's standard metrics in a prometheus-client registry: names, label order, buckets, and the
pre-bound series one request or connection increments.

:class:`canarymesh.runtime.local.telemetry.TelemetryCollector` owns one :class:`IstioMetrics` and
caches the :class:`HttpSeries`/:class:`TcpSeries` it returns by label tuple, so the per-request
path never looks up a label set twice. Names, labels and buckets follow Istio's ``istio_stats``
filter (bookinfo-spec section 7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "BYTES_BUCKETS",
    "DURATION_BUCKETS",
    "HTTP_LABELS",
    "ISTIO_TAG",
    "TCP_LABELS",
    "HttpSeries",
    "IstioMetrics",
    "TcpSeries",
]

# The Istio release whose proxy these metrics imitate (the spec's snapshot of Istio master).
ISTIO_TAG = "1.32-dev"

# All 25 labels in the proxy's order.
HTTP_LABELS: tuple[str, ...] = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_canonical_service",
    "source_canonical_revision",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_cluster",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
    "response_code",
    "grpc_response_status",
)
# TCP metrics carry no response code and no gRPC status.
TCP_LABELS: tuple[str, ...] = tuple(
    name for name in HTTP_LABELS if name not in ("response_code", "grpc_response_status")
)

# Envoy's default histogram buckets, which Istio's proxy keeps for all three distributions (ms for
# durations, bytes for sizes): what ``histogram_quantile`` over Istio's metrics expects.
DURATION_BUCKETS: tuple[float, ...] = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)
BYTES_BUCKETS = DURATION_BUCKETS


@dataclass(frozen=True, slots=True)
class HttpSeries:
    """The four children one HTTP request increments, bound to one label set."""

    requests: Counter
    duration: Histogram
    request_bytes: Histogram
    response_bytes: Histogram

    def record(self, duration_ms: float, request_bytes: int, response_bytes: int) -> None:
        self.requests.inc()
        self.duration.observe(duration_ms)
        self.request_bytes.observe(request_bytes)
        self.response_bytes.observe(response_bytes)


@dataclass(frozen=True, slots=True)
class TcpSeries:
    """The four TCP children of one label set."""

    sent: Counter
    received: Counter
    opened: Counter
    closed: Counter

    def record(self, received: int, sent: int, opened: int, closed: int) -> None:
        if received:
            self.received.inc(received)
        if sent:
            self.sent.inc(sent)
        if opened:
            self.opened.inc(opened)
        if closed:
            self.closed.inc(closed)


class IstioMetrics:
    """Istio's standard metric families registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry, istio_tag: str = ISTIO_TAG) -> None:
        # prometheus-client appends ``_total`` to counter names itself.
        self.requests = Counter(
            "istio_requests", "Requests seen by a proxy.", HTTP_LABELS, registry=registry
        )
        self.duration = Histogram(
            "istio_request_duration_milliseconds",
            "Request duration in milliseconds.",
            HTTP_LABELS,
            registry=registry,
            buckets=DURATION_BUCKETS,
        )
        self.request_bytes = Histogram(
            "istio_request_bytes",
            "HTTP request size (headers and body) in bytes.",
            HTTP_LABELS,
            registry=registry,
            buckets=BYTES_BUCKETS,
        )
        self.response_bytes = Histogram(
            "istio_response_bytes",
            "HTTP response size (headers and body) in bytes.",
            HTTP_LABELS,
            registry=registry,
            buckets=BYTES_BUCKETS,
        )
        self.tcp_sent = Counter(
            "istio_tcp_sent_bytes",
            "Bytes sent to the downstream during TCP connections.",
            TCP_LABELS,
            registry=registry,
        )
        self.tcp_received = Counter(
            "istio_tcp_received_bytes",
            "Bytes received from the downstream during TCP connections.",
            TCP_LABELS,
            registry=registry,
        )
        self.tcp_opened = Counter(
            "istio_tcp_connections_opened",
            "TCP connections opened.",
            TCP_LABELS,
            registry=registry,
        )
        self.tcp_closed = Counter(
            "istio_tcp_connections_closed",
            "TCP connections closed.",
            TCP_LABELS,
            registry=registry,
        )
        self.build = Gauge(
            "istio_build", "Istio component build info.", ("component", "tag"), registry=registry
        )
        self.build.labels("proxy", istio_tag).set(1)

    def http_series(self, labels: Mapping[str, str]) -> HttpSeries:
        """Children for ``labels`` (every name of :data:`HTTP_LABELS`; KeyError if one lacks)."""
        values = [labels[name] for name in HTTP_LABELS]
        return HttpSeries(
            self.requests.labels(*values),
            self.duration.labels(*values),
            self.request_bytes.labels(*values),
            self.response_bytes.labels(*values),
        )

    def tcp_series(self, labels: Mapping[str, str]) -> TcpSeries:
        """Children for ``labels`` (every name of :data:`TCP_LABELS`)."""
        values = [labels[name] for name in TCP_LABELS]
        return TcpSeries(
            self.tcp_sent.labels(*values),
            self.tcp_received.labels(*values),
            self.tcp_opened.labels(*values),
            self.tcp_closed.labels(*values),
        )

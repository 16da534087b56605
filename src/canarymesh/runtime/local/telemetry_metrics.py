"""Istio's standard metrics in a prometheus-client registry: names, label order, buckets, and the
pre-bound series one request or connection increments.

:class:`canarymesh.runtime.local.telemetry.TelemetryCollector` owns one :class:`IstioMetrics` and
caches the :class:`HttpSeries`/:class:`TcpSeries` it returns by raw-field tuple, so the
per-request path never looks up a label set twice; Prometheus reads them through
:meth:`IstioMetrics.collect` (prometheus-client's custom-collector protocol). Names, labels and
buckets follow Istio's ``istio_stats`` filter (bookinfo-spec section 7).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from typing import cast

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = [
    "BYTES_BUCKETS",
    "DURATION_BUCKETS",
    "HTTP_LABELS",
    "ISTIO_TAG",
    "TCP_LABELS",
    "HttpSeries",
    "IstioMetrics",
    "TcpSeries",
    "bucket_bounds",
]

# The Istio release whose proxy these metrics imitate (the spec's snapshot of Istio master).
ISTIO_TAG = "1.32-dev"

# All 25 labels in the proxy's order, then the tag a release group needs (empty on requests of
# no group, which Prometheus stores as no label: Istio's ``tagOverrides`` adds it the same way).
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
    "canarymesh_group",
)
# TCP metrics carry no response code and no gRPC status.
TCP_LABELS: tuple[str, ...] = tuple(
    name
    for name in HTTP_LABELS
    if name not in ("response_code", "grpc_response_status", "canarymesh_group")
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


class _Histogram:
    """One histogram series: per-bucket counts (the last is +Inf) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.total = 0.0

    def cumulative(self, bounds: tuple[str, ...]) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, count in zip(bounds, self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class HttpSeries:
    """What one label set of HTTP requests has counted.

    Plain ints and lists, not prometheus-client children: everything runs on the collector's
    event loop (ALS streams and ``/metrics`` alike), so the children's per-call locks bought
    nothing and cost about half of the per-request time.
    """

    __slots__ = ("duration", "request_bytes", "requests", "response_bytes")

    def __init__(self) -> None:
        self.requests = 0
        self.duration = _Histogram(len(DURATION_BUCKETS))
        self.request_bytes = _Histogram(len(BYTES_BUCKETS))
        self.response_bytes = _Histogram(len(BYTES_BUCKETS))

    def record(self, duration_ms: float, request_bytes: int, response_bytes: int) -> None:
        self.requests += 1
        # bisect_left: the first bucket whose bound is >= the value (Prometheus' ``le``).
        duration = self.duration
        duration.counts[bisect_left(DURATION_BUCKETS, duration_ms)] += 1
        duration.total += duration_ms
        sizes = self.request_bytes
        sizes.counts[bisect_left(BYTES_BUCKETS, request_bytes)] += 1
        sizes.total += request_bytes
        sizes = self.response_bytes
        sizes.counts[bisect_left(BYTES_BUCKETS, response_bytes)] += 1
        sizes.total += response_bytes


class TcpSeries:
    """What one label set of TCP connections has counted."""

    __slots__ = ("closed", "opened", "received", "sent")

    def __init__(self) -> None:
        self.sent = self.received = self.opened = self.closed = 0

    def record(self, received: int, sent: int, opened: int, closed: int) -> None:
        self.received += received
        self.sent += sent
        self.opened += opened
        self.closed += closed


# prometheus-client's own spelling of ``le`` (``1.0``, ``3.6e+06``); the function is untyped.
_go_float = cast(Callable[[float], str], floatToGoString)


def bucket_bounds(buckets: tuple[float, ...]) -> tuple[str, ...]:
    """The ``le`` label values of ``buckets`` as prometheus-client spells them, then +Inf."""
    return (*(_go_float(b) for b in buckets), "+Inf")


def _is_overflow(labels: Mapping[str, str]) -> bool:
    return all(value == "unknown" for name, value in labels.items() if name != "reporter")


class IstioMetrics(Collector):
    """Istio's standard metric families, registered as one collector in ``registry``.

    At most ``max_series`` label sets per family: past that, a new label set is counted in the
    family's overflow series (every label ``unknown`` but the reporter), so no stream of odd
    values can grow ``/metrics`` without bound; ``overflowed`` counts what went there.
    """

    def __init__(
        self, registry: CollectorRegistry, istio_tag: str = ISTIO_TAG, max_series: int = 10_000
    ) -> None:
        self._http: dict[tuple[str, ...], HttpSeries] = {}
        self._tcp: dict[tuple[str, ...], TcpSeries] = {}
        self._tag = istio_tag
        self.max_series = max_series
        self.overflowed = 0
        self._duration_bounds = bucket_bounds(DURATION_BUCKETS)
        self._bytes_bounds = bucket_bounds(BYTES_BUCKETS)
        registry.register(self)

    def http_series(self, labels: Mapping[str, str]) -> HttpSeries:
        """The series of ``labels`` (every name of :data:`HTTP_LABELS`; KeyError if one lacks)."""
        key = tuple(labels[name] for name in HTTP_LABELS)
        found = self._http.get(key)
        if found is None:
            if len(self._http) >= self.max_series and not _is_overflow(labels):
                return self.http_series(self._overflow(labels, HTTP_LABELS))
            found = self._http[key] = HttpSeries()
        return found

    def _overflow(self, labels: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
        self.overflowed += 1
        folded = {name: "unknown" for name in names}
        folded["reporter"] = labels["reporter"]
        return folded

    def tcp_series(self, labels: Mapping[str, str]) -> TcpSeries:
        """The series of ``labels`` (every name of :data:`TCP_LABELS`)."""
        key = tuple(labels[name] for name in TCP_LABELS)
        found = self._tcp.get(key)
        if found is None:
            if len(self._tcp) >= self.max_series and not _is_overflow(labels):
                return self.tcp_series(self._overflow(labels, TCP_LABELS))
            found = self._tcp[key] = TcpSeries()
        return found

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "istio_requests", "Requests seen by a proxy.", labels=HTTP_LABELS
        )
        histograms = [
            (
                HistogramMetricFamily(name, doc, labels=HTTP_LABELS, unit=""),
                attribute,
                bounds,
            )
            for name, doc, attribute, bounds in (
                (
                    "istio_request_duration_milliseconds",
                    "Request duration in milliseconds.",
                    "duration",
                    self._duration_bounds,
                ),
                (
                    "istio_request_bytes",
                    "HTTP request size (headers and body) in bytes.",
                    "request_bytes",
                    self._bytes_bounds,
                ),
                (
                    "istio_response_bytes",
                    "HTTP response size (headers and body) in bytes.",
                    "response_bytes",
                    self._bytes_bounds,
                ),
            )
        ]
        # A snapshot: a test or tool may scrape from another thread while the loop counts.
        for values, series in list(self._http.items()):
            requests.add_metric(values, series.requests)
            for family, attribute, bounds in histograms:
                histogram: _Histogram = getattr(series, attribute)
                family.add_metric(values, histogram.cumulative(bounds), histogram.total)
        yield requests
        for family, _, _ in histograms:
            yield family
        for name, doc, attribute in (
            ("istio_tcp_sent_bytes", "Bytes sent during TCP connections.", "sent"),
            ("istio_tcp_received_bytes", "Bytes received during TCP connections.", "received"),
            ("istio_tcp_connections_opened", "TCP connections opened.", "opened"),
            ("istio_tcp_connections_closed", "TCP connections closed.", "closed"),
        ):
            counter = CounterMetricFamily(name, doc, labels=TCP_LABELS)
            for values, tcp in list(self._tcp.items()):
                counter.add_metric(values, getattr(tcp, attribute))
            yield counter
        build = GaugeMetricFamily(
            "istio_build", "Istio component build info.", labels=("component", "tag")
        )
        build.add_metric(("proxy", self._tag), 1)
        yield build

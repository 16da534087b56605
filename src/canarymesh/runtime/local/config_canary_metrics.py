"""Requests of the sidecars a config canary split, by the set each sidecar is in.

Istio's standard metrics cannot tell a client on the changed config from one on the current
config (both are the same workload and version), so the collector also counts what the labelled
sidecars report here, with the config canary and the set (``canary``/``stable``) as labels:
``canarymesh_config_canary_requests_total`` and
``canarymesh_config_canary_request_duration_milliseconds`` (Istio's buckets), reported by
``source`` (a client's outbound requests: routing changes) or ``destination`` (a workload's
inbound requests: policy changes). The controller judges the canary set against the stable one.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from canarymesh.runtime.local.telemetry_metrics import DURATION_BUCKETS, bucket_bounds

__all__ = ["CONFIG_CANARY_LABELS", "ConfigCanaryMetrics"]

CONFIG_CANARY_LABELS = ("config_canary", "set", "reporter", "destination_service", "response_code")
# Two sets, two reporters, a few services and codes: anything past this is a flood, not traffic.
_MAX_SERIES = 2_000


class _Series:
    __slots__ = ("counts", "requests", "total")

    def __init__(self) -> None:
        self.requests = 0
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.total = 0.0


class ConfigCanaryMetrics(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._series: dict[tuple[str, ...], _Series] = {}
        self._bounds = bucket_bounds(DURATION_BUCKETS)
        self.dropped = 0
        registry.register(self)

    def record(self, labels: tuple[str, str, str, str, str], duration_ms: float) -> None:
        series = self._series.get(labels)
        if series is None:
            if len(self._series) >= _MAX_SERIES:
                self.dropped += 1
                return
            series = self._series[labels] = _Series()
        series.requests += 1
        series.counts[bisect_left(DURATION_BUCKETS, duration_ms)] += 1
        series.total += duration_ms

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "canarymesh_config_canary_requests",
            "Requests of the sidecars a config canary split, by set.",
            labels=CONFIG_CANARY_LABELS,
        )
        durations = HistogramMetricFamily(
            "canarymesh_config_canary_request_duration_milliseconds",
            "Request duration in milliseconds at the sidecars a config canary split, by set.",
            labels=CONFIG_CANARY_LABELS,
        )
        for labels, series in list(self._series.items()):
            requests.add_metric(labels, series.requests)
            running, buckets = 0, []
            for bound, count in zip(self._bounds, series.counts, strict=True):
                running += count
                buckets.append((bound, float(running)))
            durations.add_metric(labels, buckets, series.total)
        yield requests
        yield durations

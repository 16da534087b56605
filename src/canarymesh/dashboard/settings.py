"""The dashboard's settings: where its data comes from and what it may do. Built by the CLI
(``canarymesh dashboard``) or by tests; nothing here reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from canarymesh.xds.tracing import FLUSH_INTERVAL_MS

__all__ = ["DashboardSettings"]

# Envoy's own Zipkin flush interval (a cluster's proxies keep it unless told otherwise).
ENVOY_DEFAULT_FLUSH_SECONDS = 5.0
# What a span may take besides the flush: the POST to the collector, a loaded machine.
TRACE_MARGIN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    # Prometheus with Istio's standard metrics (the local mesh's, or a cluster's).
    prometheus_url: str | None
    # A Zipkin-compatible query API (the local mesh's collector, or a cluster's Zipkin/Jaeger).
    tracing_url: str | None = None
    # A running local mesh: config, proxy status and rollouts come from its API.
    state_dir: Path | None = None
    # Seconds between the page's refreshes.
    refresh_seconds: float = 5.0
    # Range of the service view's charts, in seconds.
    chart_range_seconds: int = 900
    # Points per series in a chart (the query_range step is the range divided by this).
    chart_points: int = 240
    # How long after its newest span a trace may still be receiving spans (None: the proxies'
    # flush interval, the local mesh's or Envoy's default, plus a margin).
    trace_settle_seconds: float | None = None

    @property
    def mode(self) -> str:
        return "local" if self.state_dir is not None else "cluster"

    @property
    def trace_settle_us(self) -> int:
        seconds = self.trace_settle_seconds
        if seconds is None:
            local = self.mode == "local"
            flush = FLUSH_INTERVAL_MS / 1000 if local else ENVOY_DEFAULT_FLUSH_SECONDS
            seconds = flush + TRACE_MARGIN_SECONDS
        return int(seconds * 1_000_000)

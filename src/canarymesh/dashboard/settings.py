"""The dashboard's settings: where its data comes from and what it may do. Built by the CLI
(``canarymesh dashboard``) or by tests; nothing here reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DashboardSettings"]


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

    @property
    def mode(self) -> str:
        return "local" if self.state_dir is not None else "cluster"

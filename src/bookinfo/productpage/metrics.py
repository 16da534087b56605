"""productpage's own Prometheus metric, ``request_result``, in a registry owned by one app.

A per-app registry (not prometheus_client's global one) lets tests build several apps in one
process and keeps every count tied to the app that made the call.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

# The original serves /metrics as text/html. We send the Prometheus text format's own type; 0.0.4
# because that is what the Prometheus we scrape with (Debian's 2.x) negotiates.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class Metrics:
    """The ``request_result`` counter: one increment per logical backend call."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_result = Counter(
            "request_result",
            "Results of requests",
            ["destination_app", "response_code"],
            registry=self.registry,
        )

    def record(self, destination_app: str, response_code: int) -> None:
        self._request_result.labels(
            destination_app=destination_app, response_code=str(response_code)
        ).inc()

    def count(self, destination_app: str, response_code: int) -> float:
        """The current value of one series (0 when it was never incremented)."""
        value = self.registry.get_sample_value(
            "request_result_total",
            {"destination_app": destination_app, "response_code": str(response_code)},
        )
        return value or 0.0

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

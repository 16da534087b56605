"""``PrometheusSource``: the ``MetricsSource`` port (:mod:`canarymesh.ports`) over the local
mesh's Prometheus (or any Prometheus URL).

Built by the canary controller, whose loop is synchronous (one decision at a time, like an
operator's reconcile): it drives the mesh's async :class:`PrometheusClient` on a private event
loop, so the query code and its error handling exist once. An unreachable Prometheus raises
``TemporaryError`` (``PrometheusUnavailable``), which the controller reports as "metrics
offline": the rollout holds and never promotes.
"""

from __future__ import annotations

import asyncio
import datetime

from canarymesh.ports import Sample
from canarymesh.runtime.local.prometheus import PrometheusClient

__all__ = ["PrometheusSource"]


class PrometheusSource:
    def __init__(self, base_url: str, timeout: float = 3.0) -> None:
        self.base_url = base_url
        self._runner = asyncio.Runner()
        self._client = PrometheusClient(base_url, timeout=timeout)

    def query(self, promql: str, at: datetime.datetime) -> tuple[Sample, ...]:
        result = self._runner.run(self._client.query(promql, at.timestamp()))
        return tuple(Sample(tuple(sorted(s.labels.items())), s.value) for s in result.samples)

    def is_online(self) -> bool:
        return self._runner.run(self._client.is_online())

    def close(self) -> None:
        self._runner.run(self._client.close())
        self._runner.close()

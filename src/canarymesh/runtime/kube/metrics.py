"""The controller's :class:`~canarymesh.ports.MetricsSource` over a cluster's Prometheus HTTP
API (the Istio addon by default; URL configurable, an ``Authorization`` header optional). Shell;
built by the in-cluster entry point from its settings.

It reuses the local mesh's query client (:class:`canarymesh.runtime.local.prometheus.
PrometheusClient`, the one place that parses ``/api/v1/query``): the only import this package
makes from the local runtime, allowed by name in the import-linter contract. The port is
synchronous and the client asynchronous, so each call runs on a short-lived event loop; a query
every few seconds makes that cost irrelevant.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping

from canarymesh.ports import Sample
from canarymesh.runtime.local.prometheus import PrometheusClient

__all__ = ["KubeMetricsSource"]


class KubeMetricsSource:
    def __init__(self, url: str, *, authorization: str | None = None, timeout: float = 5.0) -> None:
        self.url = url
        self._headers: Mapping[str, str] = {"Authorization": authorization} if authorization else {}
        self._timeout = timeout

    def query(self, promql: str, at: datetime.datetime) -> tuple[Sample, ...]:
        """Raises TemporaryError (PrometheusUnavailable) when Prometheus does not answer."""
        return asyncio.run(self._query(promql, at.timestamp()))

    def is_online(self) -> bool:
        return asyncio.run(self._online())

    def _client(self) -> PrometheusClient:
        return PrometheusClient(self.url, timeout=self._timeout, headers=self._headers)

    async def _query(self, promql: str, at: float) -> tuple[Sample, ...]:
        async with self._client() as prometheus:
            result = await prometheus.query(promql, at)
        return tuple(Sample(tuple(sorted(s.labels.items())), s.value) for s in result.samples)

    async def _online(self) -> bool:
        async with self._client() as prometheus:
            return await prometheus.is_online()

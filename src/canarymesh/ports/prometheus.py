"""The one Prometheus query client, and the controller's ``MetricsSource`` over it.

:class:`PrometheusClient` speaks Prometheus' HTTP API (``/api/v1/query``, ``/api/v1/query_range``,
``/-/ready``) to any Prometheus: the local mesh's (:class:`canarymesh.runtime.local.prometheus.
LocalPrometheus` runs it), a cluster's (optionally behind an ``Authorization`` header), or the
one the dashboard is pointed at. It is the only place that reads Prometheus' answers off the
wire; the dashboard's views shape the raw ``data`` objects it returns
(:mod:`canarymesh.views.promjson`).

:class:`PrometheusSource` is the :class:`~canarymesh.ports.MetricsSource` port over it, used by
the canary controller on both runtimes. The controller loop is synchronous (one decision at a
time, like an operator's reconcile), so the source runs the async client on an event loop of
its own for each call. An unreachable Prometheus raises ``TemporaryError``
(:class:`PrometheusUnavailable`), which the controller reports as "metrics offline": the
rollout holds and never promotes.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

import aiohttp

from canarymesh.errors import ConfigError, TemporaryError
from canarymesh.ports import Sample

__all__ = [
    "PrometheusClient",
    "PrometheusQueryError",
    "PrometheusSource",
    "PrometheusUnavailable",
    "QueryResult",
]

JsonDict = dict[str, object]


class PrometheusUnavailable(TemporaryError):
    """Prometheus did not answer (not started yet, restarting, overloaded): try again later."""


class PrometheusQueryError(ConfigError):
    """Prometheus refused the query itself (bad PromQL, wrong type): fix the query."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    """An instant query's answer; a scalar comes back as one sample without labels."""

    result_type: Literal["vector", "scalar"]
    samples: tuple[Sample, ...]

    def value(self, default: float = math.nan) -> float:
        """The single value of a one-series result (``default`` when empty)."""
        if len(self.samples) > 1:
            raise PrometheusQueryError(f"expected one series, got {len(self.samples)}")
        return self.samples[0].value if self.samples else default


class PrometheusClient:
    """Prometheus' HTTP API against any Prometheus; ``async with`` closes the session."""

    def __init__(
        self, base_url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # e.g. Authorization for a cluster's Prometheus behind a proxy (canarymesh.runtime.kube)
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def is_online(self) -> bool:
        try:
            status, _ = await self._get("/-/ready", {})
        except PrometheusUnavailable:
            return False
        return status == 200

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        """An instant query, as samples (instant vectors and scalars only)."""
        return _parse_data(promql, await self.query_data(promql, at))

    async def query_data(self, promql: str, at: float | None = None) -> JsonDict:
        """An instant query's ``data`` object as Prometheus sent it (any result type)."""
        params = {"query": promql} | ({"time": repr(at)} if at is not None else {})
        return await self._data("/api/v1/query", promql, params)

    async def query_range(self, promql: str, start: float, end: float, step: float) -> JsonDict:
        """A range query's ``data`` object (a matrix) as Prometheus sent it."""
        params = {"query": promql, "start": repr(start), "end": repr(end), "step": repr(step)}
        return await self._data("/api/v1/query_range", promql, params)

    async def _data(self, path: str, promql: str, params: Mapping[str, str]) -> JsonDict:
        status, text = await self._get(path, params)
        try:
            body = cast(JsonDict, json.loads(text))
        except ValueError:
            raise PrometheusUnavailable(f"{self.base_url}: not JSON ({status})", delay=5) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            body = body if isinstance(body, dict) else {}
            reason = f"{body.get('errorType')}: {body.get('error')}"
            if status in (400, 422):
                raise PrometheusQueryError(f"query {promql!r} refused: {reason}")
            raise PrometheusUnavailable(f"query {promql!r} failed ({status}) {reason}", delay=5)
        return cast(JsonDict, body["data"])

    async def _get(self, path: str, params: Mapping[str, str]) -> tuple[int, str]:
        if self._session is None:
            # trust_env=False: HTTP_PROXY is the mesh apps' variable, never ours.
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, trust_env=False, headers=self._headers
            )
        try:
            async with self._session.get(self.base_url + path, params=params) as response:
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            message = f"Prometheus at {self.base_url} unreachable: {err!r}"
            raise PrometheusUnavailable(message, delay=5) from err


def _labels(metric: object) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(cast(dict[str, str], metric or {}).items()))


def _parse_data(promql: str, data: Mapping[str, object]) -> QueryResult:
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and isinstance(result, list):
        return QueryResult("scalar", (Sample((), float(result[1]), float(result[0])),))
    if kind == "vector" and isinstance(result, list):
        samples = []
        for series in cast(list[dict[str, object]], result):
            timestamp, value = cast(list[object], series["value"])
            labels = _labels(series.get("metric"))
            samples.append(Sample(labels, float(cast(str, value)), float(cast(float, timestamp))))
        return QueryResult("vector", tuple(samples))
    raise PrometheusQueryError(
        f"query {promql!r} returned a {kind}; only instant vectors and scalars are supported"
    )


class PrometheusSource:
    """The ``MetricsSource`` port over :class:`PrometheusClient`. Synchronous: each call runs
    on a short-lived event loop with its own session, so nothing outlives it; a query every few
    seconds makes that cost irrelevant."""

    def __init__(
        self, base_url: str, *, authorization: str | None = None, timeout: float = 5.0
    ) -> None:
        self.base_url = base_url
        self._headers = {"Authorization": authorization} if authorization else {}
        self._timeout = timeout

    def query(self, promql: str, at: datetime.datetime) -> tuple[Sample, ...]:
        """Raises TemporaryError (PrometheusUnavailable) when Prometheus does not answer."""
        return asyncio.run(self._query(promql, at.timestamp()))

    def is_online(self) -> bool:
        return asyncio.run(self._online())

    def _client(self) -> PrometheusClient:
        return PrometheusClient(self.base_url, timeout=self._timeout, headers=self._headers)

    async def _query(self, promql: str, at: float) -> tuple[Sample, ...]:
        async with self._client() as prometheus:
            return (await prometheus.query(promql, at)).samples

    async def _online(self) -> bool:
        async with self._client() as prometheus:
            return await prometheus.is_online()

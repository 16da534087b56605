"""Where the dashboard's data comes from: Prometheus' HTTP API (through the one query client,
:class:`canarymesh.ports.prometheus.PrometheusClient`), a Zipkin query API and the local mesh's
control-plane API. Thin I/O only; the view models in :mod:`canarymesh.views` shape it.

Called by :mod:`canarymesh.dashboard.app`. Answers are Prometheus' and Zipkin's JSON as they come,
so the views are tested against the same JSON the tests can store as files.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar, cast

import aiohttp

from canarymesh.errors import CanaryMeshError, ConfigError, TemporaryError
from canarymesh.ports.prometheus import PrometheusClient
from canarymesh.runtime.local.api_client import ApiClient
from canarymesh.runtime.local.api_models import Document, ProxyStatus

__all__ = ["MeshApi", "PromSource", "SourceError", "TraceSource"]

JsonDict = dict[str, object]
T = TypeVar("T")


class SourceError(TemporaryError):
    """A data source did not answer; the page shows the message and tries again."""


class _Http:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def get_json(self, path: str, params: Mapping[str, str]) -> object:
        if self._session is None:
            # trust_env=False: HTTP_PROXY is the mesh apps' variable, never the dashboard's.
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        try:
            async with self._session.get(self.base_url + path, params=params) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            raise SourceError(f"{self.base_url} unreachable: {err!r}", delay=2) from err
        try:
            body = json.loads(text)
        except ValueError:
            raise SourceError(f"{self.base_url}{path}: not JSON ({status})", delay=2) from None
        if status >= 400:
            raise SourceError(f"{self.base_url}{path} answered {status}: {text[:300]}", delay=2)
        return body

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class PromSource:
    """Instant and range queries; returns the ``data`` object of the answer. Any failure, the
    query's included, is a :class:`SourceError`: the page shows it and polls again."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = PrometheusClient(self.base_url, timeout=timeout)

    async def query(self, promql: str) -> JsonDict:
        try:
            return await self._client.query_data(promql)
        except CanaryMeshError as err:
            raise SourceError(f"Prometheus: {err}", delay=2) from err

    async def query_range(self, promql: str, start: float, end: float, step: float) -> JsonDict:
        try:
            return await self._client.query_range(promql, start, end, step)
        except CanaryMeshError as err:
            raise SourceError(f"Prometheus: {err}", delay=2) from err

    async def close(self) -> None:
        await self._client.close()


class TraceSource(_Http):
    """Zipkin's v2 query API."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        super().__init__(base_url, timeout)

    async def services(self) -> list[str]:
        return cast(list[str], await self.get_json("/api/v2/services", {}))

    async def search(self, params: Mapping[str, str]) -> list[list[JsonDict]]:
        return cast(list[list[JsonDict]], await self.get_json("/api/v2/traces", params))

    async def trace(self, trace_id: str) -> list[JsonDict]:
        return cast(list[JsonDict], await self.get_json(f"/api/v2/trace/{trace_id}", {}))


class MeshApi:
    """The local control plane's API (the blocking client's typed calls, run in a thread)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    async def resources(
        self, kinds: Sequence[str], namespace: str | None = None, name: str | None = None
    ) -> tuple[Document, ...]:
        return await self._call(lambda api: api.resources(kinds, namespace, name))

    async def proxy_status(self) -> tuple[ProxyStatus, ...]:
        return await self._call(lambda api: api.proxy_status())

    async def _call(self, call: Callable[[ApiClient], T]) -> T:
        def run() -> T:
            return call(ApiClient.for_state_dir(self.state_dir, timeout=10.0))

        try:
            return await asyncio.to_thread(run)
        except ConfigError:
            raise
        except TemporaryError as err:
            raise SourceError(str(err), delay=2) from err

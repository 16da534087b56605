"""A small local mesh for the runtime's integration tests: an ADS server, supervised Envoys, and
aiohttp upstreams that answer with their own name; plus hand-written Envoy resources.

The resources here are minimal on purpose (the real translation lives in ``canarymesh.xds``): a
STATIC cluster per upstream, one HTTP listener using RDS, one route configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from canarymesh.mesh.model import MeshSettings, ProxyNode, ProxyPorts, StatsInclusion
from canarymesh.runtime.local import codec
from canarymesh.runtime.local.ads import AdsServer
from canarymesh.runtime.local.envoy import EnvoyAdmin, envoy_spec, write_bootstrap
from canarymesh.runtime.local.supervisor import Supervisor
from canarymesh.xds.bootstrap import build_ads_bootstrap
from canarymesh.xds.snapshot import XdsSnapshot, build_snapshot
from tests.support.processes import free_port

Resource = dict[str, Any]
_ADS = {"ads": {}, "resource_api_version": "V3"}
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = "envoy.extensions.filters.http.router.v3.Router"


def socket_address(port: int) -> Resource:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def cluster(name: str, port: int, transport_socket: Resource | None = None) -> Resource:
    resource: Resource = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(port)}}]}],
        },
    }
    if transport_socket is not None:
        resource["transport_socket"] = transport_socket
    return resource


def http_listener(
    name: str, port: int, route_name: str, transport_socket: Resource | None = None
) -> Resource:
    hcm = {
        "@type": "type.googleapis.com/" + _HCM,
        "stat_prefix": name,
        "rds": {"route_config_name": route_name, "config_source": _ADS},
        "http_filters": [
            {"name": "envoy.filters.http.router", "typed_config": {"@type": _type(_ROUTER)}}
        ],
    }
    chain: Resource = {
        "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]
    }
    if transport_socket is not None:
        chain["transport_socket"] = transport_socket
    return {"name": name, "address": socket_address(port), "filter_chains": [chain]}


def weighted_routes(
    name: str, weights: Mapping[str, int], extra_routes: Sequence[Resource] = ()
) -> Resource:
    split = [{"name": c, "weight": w} for c, w in sorted(weights.items()) if w > 0]
    route = {"match": {"prefix": "/"}, "route": {"weighted_clusters": {"clusters": split}}}
    return {
        "name": name,
        "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [*extra_routes, route]}],
    }


def snapshot(
    node_id: str,
    clusters: Sequence[Resource],
    listeners: Sequence[Resource],
    routes: Sequence[Resource],
) -> XdsSnapshot:
    """The xds package's own snapshot type, so the server is tested with what it will serve."""
    by_type = {codec.CLUSTER: clusters, codec.LISTENER: listeners, codec.ROUTE: routes}
    return build_snapshot(node_id, by_type)


def _type(name: str) -> str:
    return "type.googleapis.com/" + name


@dataclass
class Proxy:
    """A running Envoy: its node id, admin client and admin port."""

    node_id: str
    admin: EnvoyAdmin
    admin_port: int


@dataclass
class Mesh:
    ads: AdsServer
    supervisor: Supervisor
    tmp: Path
    client: aiohttp.ClientSession
    proxies: dict[str, Proxy] = field(default_factory=dict)

    async def start_envoy(self, node_id: str) -> Proxy:
        admin_port = free_port()
        # These tests read Envoy's cluster and HTTP stats as evidence, which Istio's default
        # stats matcher leaves out: asked for as a pod's statsInclusionPrefixes would.
        node = ProxyNode(
            node_id, "sidecar", "default", node_id, (), "default", ProxyPorts(admin_port),
            stats_inclusion=StatsInclusion(prefixes=("cluster.", "http.")),
        )  # fmt: skip
        config = build_ads_bootstrap(node, MeshSettings(), self.ads.port)
        path = write_bootstrap(self.tmp / f"{node_id}.json", config)
        spec = envoy_spec(node_id, path, self.tmp / "logs", admin_port, backoff_initial=0.1)
        await self.supervisor.start(spec, ready_timeout=10.0)
        proxy = Proxy(node_id, EnvoyAdmin(admin_port), admin_port)
        self.proxies[node_id] = proxy
        return proxy

    async def get(self, port: int, path: str = "/") -> tuple[int, str]:
        async with self.client.get(f"http://127.0.0.1:{port}{path}") as response:
            return response.status, await response.text()

    async def bodies(self, port: int, count: int) -> dict[str, int]:
        """How many of ``count`` sequential requests each upstream answered."""
        seen: dict[str, int] = {}
        for _ in range(count):
            _, body = await self.get(port)
            seen[body] = seen.get(body, 0) + 1
        return seen


@contextlib.asynccontextmanager
async def running_mesh(tmp: Path) -> AsyncIterator[Mesh]:
    ads = AdsServer()
    await ads.start()
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        Supervisor() as supervisor,
        aiohttp.ClientSession(timeout=timeout, trust_env=False) as client,
    ):
        mesh = Mesh(ads, supervisor, tmp, client)
        try:
            yield mesh
        finally:
            for proxy in mesh.proxies.values():
                await proxy.admin.close()
            await supervisor.stop_all()
            await mesh.ads.stop(0)


@contextlib.asynccontextmanager
async def upstreams(*names: str) -> AsyncIterator[dict[str, int]]:
    """aiohttp servers that answer every request with their name; yields name -> port."""
    runners: list[web.AppRunner] = []
    ports: dict[str, int] = {}
    try:
        for name in names:
            runner = web.AppRunner(_named_app(name), access_log=None)
            await runner.setup()
            ports[name] = free_port()
            await web.TCPSite(runner, "127.0.0.1", ports[name]).start()
            runners.append(runner)
        yield ports
    finally:
        for runner in runners:
            await runner.cleanup()


def _named_app(name: str) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=name)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def eventually(probe: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Await ``probe()`` until it is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await probe():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)

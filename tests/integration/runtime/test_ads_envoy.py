"""The ADS server programming a real Envoy: routing, weight changes, NACKs, an Envoy restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import cast

import pytest

from canarymesh.runtime.local import codec
from canarymesh.runtime.local.ads import AdsServer
from canarymesh.runtime.local.xds_status import SyncState
from canarymesh.xds.snapshot import XdsSnapshot
from tests.integration.runtime.harness import (
    Mesh,
    cluster,
    eventually,
    http_listener,
    running_mesh,
    snapshot,
    upstreams,
    weighted_routes,
)
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

NODE = "reviews-v1-abc"
V1, V2 = "outbound|9080|v1|reviews", "outbound|9080|v2|reviews"


def _config(
    ports: dict[str, int], listen: int, weights: dict[str, int], bad: bool = False
) -> XdsSnapshot:
    extra = [{"match": {"safe_regex": {"regex": "a("}}, "route": {"cluster": V1}}] if bad else []
    return snapshot(
        NODE,
        [cluster(V1, ports["v1"]), cluster(V2, ports["v2"])],
        [http_listener("front", listen, "9080")],
        [weighted_routes("9080", weights, extra)],
    )


async def _route_to(mesh: Mesh, listen: int, body: str) -> bool:
    try:
        return (await mesh.get(listen)) == (200, body)
    except OSError:
        return False


def test_snapshot_routes_and_weight_flip_is_live_within_100ms(tmp_path: Path) -> None:
    async def scenario() -> None:
        listen = free_port()
        async with upstreams("v1", "v2") as ports, running_mesh(tmp_path) as mesh:
            mesh.ads.set_snapshot(NODE, _config(ports, listen, {V1: 100}))
            await mesh.start_envoy(NODE)
            assert await mesh.get(listen) == (200, "v1")
            status = await mesh.ads.wait_settled(NODE)
            assert status.synced, status
            assert [t.type_name for t in status.types] == [
                "Cluster",
                "Listener",
                "RouteConfiguration",
            ]

            mesh.ads.set_snapshot(NODE, _config(ports, listen, {V1: 90, V2: 10}))
            await mesh.ads.wait_settled(NODE)
            split = await mesh.bodies(listen, 100)
            assert split.get("v1", 0) >= 70, split

            started = time.perf_counter()
            mesh.ads.set_snapshot(NODE, _config(ports, listen, {V1: 10, V2: 90}))
            status = await mesh.ads.wait_settled(NODE, timeout=1.0)
            elapsed = time.perf_counter() - started
            assert status.synced and elapsed < 0.1, (elapsed, status)
            split = await mesh.bodies(listen, 100)
            assert split.get("v2", 0) >= 70, split

            admin = mesh.proxies[NODE].admin
            assert await admin.ready()
            dump = json.dumps(await admin.config_dump("dynamic_route_configs"))
            assert '"name": "outbound|9080|v2|reviews", "weight": 90' in dump, dump
            statuses = cast(list[dict[str, str]], (await admin.clusters())["cluster_statuses"])
            names = {c["name"] for c in statuses}
            assert {V1, V2} <= names, names
            # Only the routes changed, so only the routes were sent again.
            stats = await admin.stats("cluster_manager.cds|listener_manager.lds")
            assert stats["cluster_manager.cds.update_success"] == 1, stats
            assert stats["listener_manager.lds.update_success"] == 1, stats

    asyncio.run(scenario())


def test_bad_regex_is_nacked_with_envoys_reason_and_old_config_keeps_serving(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        listen = free_port()
        async with upstreams("v1", "v2") as ports, running_mesh(tmp_path) as mesh:
            mesh.ads.set_snapshot(NODE, _config(ports, listen, {V1: 100}))
            proxy = await mesh.start_envoy(NODE)
            await mesh.ads.wait_settled(NODE)

            mesh.ads.set_snapshot(NODE, _config(ports, listen, {V2: 100}, bad=True))
            status = await mesh.ads.wait_settled(NODE)
            routes = status.type(codec.ROUTE)
            assert routes.state is SyncState.NACKED
            assert routes.error is not None and "missing )" in routes.error, routes
            assert status.type(codec.CLUSTER).state is SyncState.SYNCED
            assert status.errors == {"RouteConfiguration": routes.error}
            assert await mesh.bodies(listen, 5) == {"v1": 5}

            # The rejected version is not sent again: Envoy saw exactly one rejection.
            await asyncio.sleep(0.3)
            stats = await proxy.admin.stats(r"rds\.9080\.")
            assert stats["http.front.rds.9080.update_rejected"] == 1, stats

            mesh.ads.set_snapshot(NODE, _config(ports, listen, {V2: 100}))
            status = await mesh.ads.wait_settled(NODE)
            assert status.synced and status.errors == {}, status
            assert await mesh.bodies(listen, 5) == {"v2": 5}

    asyncio.run(scenario())


def test_killed_envoy_is_restarted_and_resyncs_to_the_current_snapshot(tmp_path: Path) -> None:
    async def scenario() -> None:
        listen = free_port()
        async with upstreams("v1", "v2") as ports, running_mesh(tmp_path) as mesh:
            mesh.ads.set_snapshot(NODE, _config(ports, listen, {V1: 100}))
            await mesh.start_envoy(NODE)
            assert await mesh.get(listen) == (200, "v1")
            before = mesh.supervisor.child_status(NODE)
            assert before.pid is not None

            os.kill(before.pid, signal.SIGKILL)
            # Changed while the proxy is down: the new Envoy must come up with this.
            current = _config(ports, listen, {V2: 100})
            mesh.ads.set_snapshot(NODE, current)
            await eventually(lambda: _route_to(mesh, listen, "v2"), timeout=10)

            after = mesh.supervisor.child_status(NODE)
            assert after.restarts == 1 and after.pid not in (None, before.pid), after
            status = await mesh.ads.wait_settled(NODE)
            assert status.synced and status.snapshot_version == current.version, status

    asyncio.run(scenario())


def test_envoy_keeps_serving_without_the_control_plane_and_resyncs_when_it_returns(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        listen = free_port()
        async with upstreams("v1", "v2") as ports, running_mesh(tmp_path) as mesh:
            mesh.ads.set_snapshot(NODE, _config(ports, listen, {V1: 100}))
            await mesh.start_envoy(NODE)
            port = mesh.ads.port
            await mesh.ads.stop(0)
            await asyncio.sleep(0.3)
            assert await mesh.bodies(listen, 5) == {"v1": 5}

            # A restarted control plane knows nothing of the proxy until it reconnects.
            mesh.ads = AdsServer()
            await mesh.ads.start(port=port)
            mesh.ads.set_snapshot(NODE, _config(ports, listen, {V2: 100}))
            await eventually(lambda: _route_to(mesh, listen, "v2"), timeout=5)
            assert (await mesh.ads.wait_settled(NODE)).synced
            assert mesh.supervisor.child_status(NODE).restarts == 0

    asyncio.run(scenario())

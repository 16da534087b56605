"""The dashboard's trace list and waterfall say whether a trace is whole, still arriving, or
missing spans for good; against the local mesh's real span collector on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from canarymesh.dashboard.app import create_app
from canarymesh.dashboard.settings import DashboardSettings
from canarymesh.runtime.local.tracing import TracingCollector
from canarymesh.xds.tracing import FLUSH_INTERVAL_MS

MESH = "outbound|9080||{}.default.svc.cluster.local"


def spans(trace: str, end_us: int, *, with_details: bool = True) -> list[dict[str, object]]:
    def span(span_id: str, parent: str | None, service: str, kind: str, upstream: str) -> Any:
        body = {
            "traceId": trace,
            "id": span_id,
            "name": "productpage:9080",
            "kind": kind,
            "timestamp": end_us - 2000,
            "duration": 2000,
            "localEndpoint": {"serviceName": service},
            "tags": {"upstream_cluster": upstream, "response_flags": "-"},
        }
        return body | ({"parentId": parent} if parent else {})

    found = [
        span("a" * 16, None, "istio-ingressgateway", "SERVER", MESH.format("productpage")),
        span("b" * 16, "a" * 16, "productpage-v1", "SERVER", "inbound|9080||"),
        span("c" * 16, "b" * 16, "productpage-v1", "CLIENT", MESH.format("details")),
    ]
    if with_details:
        found.append(span("d" * 16, "c" * 16, "details-v1", "SERVER", "inbound|9080||"))
    return found


def test_the_local_settle_time_is_the_mesh_flush_interval_and_a_margin() -> None:
    local = DashboardSettings(None, state_dir=None)
    assert local.trace_settle_us == 6_000_000  # a cluster's Envoys keep the default 5 s
    mesh = DashboardSettings(None, state_dir=Path("/nonexistent"))
    assert mesh.trace_settle_us == (FLUSH_INTERVAL_MS + 1000) * 1000
    assert DashboardSettings(None, trace_settle_seconds=0.5).trace_settle_us == 500_000


def test_traces_are_complete_receiving_or_partial() -> None:
    now = int(time.time() * 1_000_000)
    old, fresh, broken = "1" * 32, "2" * 32, "3" * 32
    posted = [
        *spans(old, now - 10_000_000),  # whole, and long done
        *spans(fresh, now),  # whole, but its proxies may not all have flushed yet
        *spans(broken, now - 60_000_000, with_details=False),  # details never reported
    ]
    out: dict[str, Any] = {}

    async def main() -> None:
        collector = TracingCollector()
        port = await collector.start()
        try:
            async with aiohttp.ClientSession(trust_env=False) as http:
                url = f"http://127.0.0.1:{port}/api/v2/spans"
                async with http.post(url, data=json.dumps(posted)) as response:
                    assert response.status == 202
            settings = DashboardSettings(
                None, tracing_url=f"http://127.0.0.1:{port}", trace_settle_seconds=1.2
            )
            async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
                listed = await (await client.get("/api/traces?limit=10")).json()
                out["states"] = {t["trace_id"]: t["state"] for t in listed["traces"]}
                out["waterfall"] = await (await client.get(f"/api/trace/{broken}")).json()
        finally:
            await collector.stop()

    asyncio.run(main())
    assert out["states"] == {old: "complete", fresh: "receiving", broken: "partial"}
    waterfall = out["waterfall"]
    assert (waterfall["state"], waterfall["missing_parents"], waterfall["missing_children"]) == (
        "partial",
        0,
        1,
    )

"""The dashboard app in process (aiohttp's TestClient) against a fake Prometheus on 127.0.0.1
that answers canned JSON and records the PromQL it was sent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from canarymesh.dashboard.app import create_app
from canarymesh.dashboard.settings import DashboardSettings
from tests.unit.views.promdata import edge, matrix, vector

Check = Callable[[TestClient[Any, Any], list[str]], Awaitable[None]]


def fake_prometheus(seen: list[str]) -> web.Application:
    async def query(request: web.Request) -> web.Response:
        promql = request.query["query"]
        seen.append(promql)
        if "histogram_quantile" in promql:
            data = vector([(edge("productpage-v1", "details-v1"), 8.5)])
        elif 'response_code=~"5.."' in promql:
            data = vector([(edge("productpage-v1", "details-v1"), 0.5)])
        elif "by (destination_service)" in promql:
            data = vector(
                [
                    ({"destination_service": "details.default.svc.cluster.local"}, 1),
                    ({"destination_service": "unknown"}, 1),
                ]
            )
        else:
            data = vector([(edge("productpage-v1", "details-v1"), 2.0)])
        return web.json_response({"status": "success", "data": data})

    async def query_range(request: web.Request) -> web.Response:
        seen.append(request.query["query"])
        if request.query["step"] != "3.75":
            return web.json_response(
                {"status": "error", "errorType": "bad_data", "error": "step"}, status=400
            )
        data = matrix([({"destination_version": "v1"}, [1, 1])])
        return web.json_response({"status": "success", "data": data})

    app = web.Application()
    app.add_routes([web.get("/api/v1/query", query), web.get("/api/v1/query_range", query_range)])
    return app


def run(check: Check, prometheus: bool = True) -> list[str]:
    seen: list[str] = []

    async def main() -> None:
        async with TestServer(fake_prometheus(seen), host="127.0.0.1") as prom:
            url = str(prom.make_url("")) if prometheus else None
            settings = DashboardSettings(url, chart_range_seconds=900)
            async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
                await check(client, seen)

    asyncio.run(main())
    return seen


def test_graph_endpoint_serves_the_view_model_from_the_panel_queries() -> None:
    async def check(client: TestClient[Any, Any], seen: list[str]) -> None:
        response = await client.get("/api/graph?window=5m")
        assert response.status == 200
        graph = await response.json()
        assert [n["workload"] for n in graph["nodes"]] == ["productpage-v1", "details-v1"]
        (only,) = graph["edges"]
        assert (only["rps"], only["error_pct"], only["p99_ms"], only["health"]) == (
            2.0,
            25.0,
            8.5,
            "failing",
        )
        assert len(seen) == 3 and all("[5m]" in q for q in seen)

    run(check)


def test_service_endpoints_escape_the_host_and_range_over_the_chart() -> None:
    async def check(client: TestClient[Any, Any], seen: list[str]) -> None:
        services = await (await client.get("/api/services")).json()
        assert services == {"services": ["details.default.svc.cluster.local"]}
        response = await client.get("/api/service?service=details.default.svc.cluster.local")
        assert response.status == 200, await response.text()
        view = await response.json()
        assert [r["version"] for r in view["versions"]] == ["v1"]
        assert view["versions"][0]["share_pct"] == 100.0
        ranged = seen[1:]
        assert len(ranged) == 5
        assert all(
            'destination_service=~"details\\\\.default\\\\.svc\\\\.cluster\\\\.local"' in q
            for q in ranged
        )

    run(check)


def test_bad_input_is_a_clear_400_and_a_missing_source_is_named() -> None:
    async def check(client: TestClient[Any, Any], seen: list[str]) -> None:
        bad_window = await client.get("/api/graph?window=1m])) or vector(1")
        assert bad_window.status == 400
        assert "window must be a PromQL range" in (await bad_window.json())["error"]
        bad_service = await client.get('/api/service?service=a"b')
        assert bad_service.status == 400
        bad_trace = await client.get("/api/trace/xyz")
        assert bad_trace.status == 400
        no_tracing = await client.get("/api/traces")
        assert "--tracing-url" in (await no_tracing.json())["error"]
        assert seen == []

    run(check)


def test_without_prometheus_the_graph_says_so_and_config_is_empty() -> None:
    async def check(client: TestClient[Any, Any], seen: list[str]) -> None:
        graph = await client.get("/api/graph")
        assert graph.status == 400
        assert "--prometheus-url" in (await graph.json())["error"]
        config = await (await client.get("/api/config")).json()
        assert config == {"resources": [], "findings": [], "proxies": [], "nacked": 0}
        info = await (await client.get("/api/info")).json()
        assert info["mode"] == "cluster" and info["read_only"] is True
        page = await client.get("/")
        assert page.status == 200 and "Canary Mesh" in await page.text()

    run(check, prometheus=False)


def test_an_unreachable_prometheus_is_a_503() -> None:
    async def main() -> None:
        settings = DashboardSettings("http://127.0.0.1:9", chart_range_seconds=900)
        async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
            response = await client.get("/api/graph")
            assert response.status == 503
            assert "unreachable" in (await response.json())["error"]

    asyncio.run(main())

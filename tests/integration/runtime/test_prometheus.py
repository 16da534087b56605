"""Debian's Prometheus as a supervised child: it starts, scrapes our target, answers queries,
and picks up a changed ``file_sd`` target list without a restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from canarymesh.ports.prometheus import PrometheusClient
from canarymesh.runtime.local.prometheus import LocalPrometheus, ScrapeJob, TargetGroup
from canarymesh.runtime.local.supervisor import Supervisor
from tests.support.processes import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@contextlib.asynccontextmanager
async def metrics_server(text: str) -> AsyncIterator[int]:
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def _wait_value(client: PrometheusClient, promql: str, timeout: float) -> float:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await client.query(promql)
        if result.samples:
            return result.value()
        if loop.time() > deadline:
            raise AssertionError(f"{promql} still empty after {timeout}s")
        await asyncio.sleep(0.25)


def test_prometheus_scrapes_our_target_and_follows_target_changes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            metrics_server("demo_requests_total 7\n") as first,
            metrics_server("demo_requests_total 11\n") as second,
            Supervisor() as supervisor,
        ):
            group = TargetGroup((f"127.0.0.1:{first}",), {"workload": "one"})
            jobs = [ScrapeJob("app", targets=(group,))]
            prometheus = LocalPrometheus(tmp_path, jobs, free_port())
            await supervisor.start(prometheus.spec(), ready_timeout=10)
            async with PrometheusClient(prometheus.url) as client:
                assert await client.is_online()
                assert await _wait_value(client, 'up{job="app",workload="one"} == 1', 15) == 1
                total = await client.query('demo_requests_total{workload="one"}')
                assert total.result_type == "vector" and total.value() == 7
                assert total.samples[0].label("instance") == f"127.0.0.1:{first}"

                prometheus.set_targets(
                    "app", [group, TargetGroup((f"127.0.0.1:{second}",), {"workload": "two"})]
                )
                assert await _wait_value(client, 'demo_requests_total{workload="two"}', 10) == 11
                assert (await client.query("scalar(sum(demo_requests_total))")).value() == 18
            assert supervisor.child_status("prometheus").restarts == 0

    asyncio.run(scenario())

"""The Prometheus query client against a tiny loopback server with canned API answers, and the
generated configuration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from canarymesh.errors import ConfigError, TemporaryError
from canarymesh.ports.prometheus import (
    PrometheusClient,
    PrometheusQueryError,
    PrometheusUnavailable,
)
from canarymesh.runtime.local.prometheus import (
    LocalPrometheus,
    ScrapeJob,
    TargetGroup,
    render_config,
)
from tests.support.processes import free_port

VECTOR = {
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [
            {"metric": {"destination_version": "v1"}, "value": [1700000000.5, "144"]},
            {"metric": {"destination_version": "v2"}, "value": [1700000000.5, "16.5"]},
        ],
    },
}
SCALAR = {"status": "success", "data": {"resultType": "scalar", "result": [1700000000, "0.97"]}}
MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": []}}
BAD = {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}


def with_api(
    answers: Mapping[str, tuple[int, object]],
    body: Callable[[PrometheusClient, list[str]], Awaitable[None]],
) -> list[str]:
    """Serve ``answers`` (query -> status, JSON) on loopback; returns the queries received."""
    seen: list[str] = []

    async def query(request: web.Request) -> web.Response:
        promql = request.query["query"]
        seen.append(promql)
        status, payload = answers[promql]
        return web.json_response(payload, status=status)

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="Prometheus Server is Ready.")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api/v1/query", query)
        app.router.add_get("/-/ready", ready)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with PrometheusClient(f"http://127.0.0.1:{port}/") as client:
                await body(client, seen)
        finally:
            await runner.cleanup()

    asyncio.run(main())
    return seen


def test_vector_and_scalar_results_are_typed() -> None:
    async def body(client: PrometheusClient, seen: list[str]) -> None:
        result = await client.query("sum by (destination_version)(rate(x[5s]))")
        assert result.result_type == "vector"
        assert [(s.label("destination_version"), s.value) for s in result.samples] == [
            ("v1", 144.0),
            ("v2", 16.5),
        ]
        assert result.samples[0].timestamp == 1700000000.5
        with pytest.raises(PrometheusQueryError, match="expected one series, got 2"):
            result.value()
        scalar = await client.query("scalar(success)")
        assert (scalar.result_type, scalar.value()) == ("scalar", 0.97)
        assert await client.is_online()

    answers = {
        "sum by (destination_version)(rate(x[5s]))": (200, VECTOR),
        "scalar(success)": (200, SCALAR),
    }
    assert len(with_api(answers, body)) == 2


def test_bad_query_is_a_config_error_and_a_server_error_is_temporary() -> None:
    async def body(client: PrometheusClient, seen: list[str]) -> None:
        with pytest.raises(PrometheusQueryError, match="bad_data: parse error at char 5"):
            await client.query("rate(")
        with pytest.raises(PrometheusUnavailable, match=r"failed \(503\)") as err:
            await client.query("up")
        assert err.value.delay > 0
        with pytest.raises(PrometheusQueryError, match="returned a matrix"):
            await client.query("up[1m]")

    answers = {"rate(": (400, BAD), "up": (503, BAD), "up[1m]": (200, MATRIX)}
    with_api(answers, body)
    assert issubclass(PrometheusQueryError, ConfigError)


def test_unreachable_prometheus_is_a_temporary_error() -> None:
    async def main() -> None:
        async with PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client:
            assert not await client.is_online()
            with pytest.raises(TemporaryError, match="unreachable"):
                await client.query("up")

    asyncio.run(main())


def test_config_uses_file_sd_per_job_and_targets_are_written_whole(tmp_path: Path) -> None:
    jobs = [
        ScrapeJob("envoy", "/stats/prometheus", (TargetGroup(("127.0.0.1:1",), {"pod": "a"}),)),
        ScrapeJob("apps"),
    ]
    config = render_config(jobs, tmp_path / "sd")
    assert config["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s"}
    envoy = config["scrape_configs"][0]  # type: ignore[index]
    assert envoy["metrics_path"] == "/stats/prometheus"
    assert envoy["file_sd_configs"] == [{"files": [str(tmp_path / "sd" / "envoy.json")]}]
    with pytest.raises(ConfigError, match="unique"):
        render_config([ScrapeJob("a"), ScrapeJob("a")], tmp_path)

    local = LocalPrometheus(tmp_path, jobs, 9090)
    spec = local.spec()
    assert "--web.listen-address=127.0.0.1:9090" in spec.argv
    written = yaml.safe_load((tmp_path / "prometheus" / "prometheus.yml").read_text())
    assert written["scrape_configs"][1]["job_name"] == "apps"
    targets = tmp_path / "prometheus" / "targets" / "envoy.json"
    assert json.loads(targets.read_text()) == [{"labels": {"pod": "a"}, "targets": ["127.0.0.1:1"]}]
    local.set_targets("envoy", [])
    assert json.loads(targets.read_text()) == []
    assert sorted(p.name for p in targets.parent.iterdir()) == ["apps.json", "envoy.json"]
    with pytest.raises(ConfigError, match="no scrape job 'nope'"):
        local.set_targets("nope", [])

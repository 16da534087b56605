"""Istio's standard metrics from real Envoys: a productpage sidecar calls reviews (v1 and v2
sidecars over auto-mTLS, aiohttp apps behind them); both sidecars log to the TelemetryCollector,
whose ``/metrics`` is scraped directly and, once, by a real Prometheus.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import socket
import threading
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from canarymesh.api.loader import load_text
from canarymesh.mesh.build import build_mesh
from canarymesh.mesh.model import MeshSettings, MeshSnapshot
from canarymesh.ports.prometheus import PrometheusClient
from canarymesh.runtime.local.ca import LocalCA
from canarymesh.runtime.local.prometheus import LocalPrometheus, ScrapeJob, TargetGroup
from canarymesh.runtime.local.supervisor import Supervisor
from canarymesh.runtime.local.telemetry import TelemetryCollector
from canarymesh.runtime.local.telemetry_metrics import DURATION_BUCKETS
from canarymesh.xds.telemetry import PeerInfo, peer_info
from tests.integration.test_envoy_live_routing import UniquePorts, call, start_envoy
from tests.support.processes import free_port, wait_for_port

pytestmark = pytest.mark.integration

T = TypeVar("T")
REVIEWS = "reviews.default.svc.cluster.local"
MYSQL = "mysqldb.default.svc.cluster.local"
# (app, version, container port); mysqldb is a plain TCP echo server.
PODS = (
    ("productpage", "v1", 9080),
    ("reviews", "v1", 9080),
    ("reviews", "v2", 9080),
    ("mysqldb", "v1", 3306),
)
PROXIES = tuple(f"{app}-{version}-0" for app, version, _ in PODS)
MANIFEST = (
    """
apiVersion: v1
kind: Service
metadata: {name: reviews, labels: {app: reviews}}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: productpage, labels: {app: productpage}}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: mysqldb, labels: {app: mysqldb}}
spec:
  selector: {app: mysqldb}
  ports: [{name: tcp, port: 3306}]
"""
    + "".join(
        f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {app}-{version}, labels: {{app: {app}, version: {version}}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {app}, version: {version}}}}}
  template:
    metadata: {{labels: {{app: {app}, version: {version}}}}}
    spec:
      serviceAccountName: bookinfo-{app}
      containers:
      - name: {app}
        image: docker.io/istio/examples-bookinfo-{app}-{version}:1.20.3
        ports: [{{containerPort: {port}}}]
"""
        for app, version, port in PODS
    )
    + """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: tester}}}]
    fault: {abort: {percentage: {value: 100}, httpStatus: 500}}
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v2}}]
"""
)

Series = dict[tuple[tuple[str, str], ...], float]


@dataclasses.dataclass
class Live:
    mesh: MeshSnapshot
    loop: asyncio.AbstractEventLoop
    collector: TelemetryCollector
    metrics_port: int
    state: Path

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def scrape(self) -> dict[str, Series]:
        """Every sample of ``/metrics`` by name, then by its sorted labels."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples: dict[str, Series] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                    sample.value
                )
        return samples

    def send(self, n: int, path: str = "/reviews/0", headers: dict[str, str] | None = None) -> int:
        outbound = self.mesh.proxy("productpage-v1-0").ports.outbound_http
        codes = {call(outbound, f"http://reviews:9080{path}", headers)[0] for _ in range(n)}
        assert len(codes) == 1, codes
        return codes.pop()


def total(samples: dict[str, Series], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for k, v in samples.get(name, {}).items() if wanted <= set(k))


def wait_total(live: Live, name: str, expected: float, **labels: str) -> None:
    """Envoy's gRPC access logger flushes about once a second: poll until the count arrives."""
    deadline = time.monotonic() + 10.0
    while (seen := total(live.scrape(), name, **labels)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} = {seen}, expected {expected}")
        time.sleep(0.1)


async def upstream(name: str, port: int) -> web.AppRunner:
    async def handle(request: web.Request) -> web.Response:
        status = 503 if request.path == "/fail" else 200
        return web.json_response({"served_by": name}, status=status)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def echo(port: int) -> asyncio.Server:
    """A TCP server that answers everything it read once the client half-closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    peers: dict[str, PeerInfo] = {}
    inbound: dict[str, PeerInfo] = {}
    collector = TelemetryCollector(peers.get, addresses=inbound.get)

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    als_port = run(collector.start())
    metrics_port = run(collector.serve_metrics())
    result = load_text(MANIFEST, "telemetry.yaml")
    assert not result.diagnostics.has_errors, [str(d) for d in result.diagnostics]
    mesh = build_mesh(result.resources, UniquePorts(), MeshSettings(telemetry_port=als_port))
    peers.update({p: peer_info(mesh.proxy(p), mesh.settings) for p in PROXIES})
    for proxy_id, (_, _, container_port) in zip(PROXIES, PODS, strict=True):
        port = mesh.proxy(proxy_id).ports.inbound_port(container_port)
        inbound[f"127.0.0.1:{port}"] = peers[proxy_id]
    state = tmp_path_factory.mktemp("telemetry")
    ca = LocalCA.load_or_create(state, dt.datetime.now(dt.UTC))
    runners: list[web.AppRunner] = []
    servers: list[asyncio.Server] = []
    envoys = []
    try:
        for proxy_id, (_, _, container_port) in zip(PROXIES, PODS, strict=True):
            proxy = mesh.proxy(proxy_id)
            app_port = proxy.ports.app_port(container_port)
            assert app_port is not None
            if container_port == 3306:
                servers.append(run(echo(app_port)))
            else:
                runners.append(run(upstream(proxy.workload, app_port)))
            envoys.append(start_envoy(mesh, proxy, ca, state))
        for proxy_id, envoy, (_, _, container_port) in zip(PROXIES, envoys, PODS, strict=True):
            proxy = mesh.proxy(proxy_id)
            port = proxy.ports.inbound_port(container_port) or 0
            try:
                wait_for_port(port, timeout=30, proc=envoy)
                wait_for_port(proxy.ports.outbound_http, timeout=30, proc=envoy)
            except (RuntimeError, TimeoutError) as exc:
                log = (state / f"{proxy_id}.log").read_text(errors="replace")
                raise RuntimeError(f"{proxy_id} did not start: {exc}\n{log}") from exc
        yield Live(mesh, loop, collector, metrics_port, state)
    finally:
        for envoy in envoys:
            envoy.terminate()
            envoy.wait(timeout=10)
        for runner in runners:
            run(runner.cleanup())
        for server in servers:
            server.close()
        run(collector.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_each_request_counts_once_per_reporter_with_istio_labels(live: Live) -> None:
    n = 12
    before = live.scrape()
    v2 = {"destination_service": REVIEWS, "destination_version": "v2", "response_code": "200"}
    start = {
        r: total(before, "istio_requests_total", reporter=r, **v2)
        for r in ("source", "destination")
    }
    assert live.send(n) == 200
    for reporter in ("source", "destination"):
        wait_total(live, "istio_requests_total", start[reporter] + n, reporter=reporter, **v2)
    # One more flush interval: nothing is counted twice.
    time.sleep(1.5)
    after = live.scrape()
    requests = {
        dict(k)["reporter"]: dict(k)
        for k in after["istio_requests_total"]
        if dict(k).get("destination_version") == "v2" and dict(k)["response_code"] == "200"
    }
    for reporter in ("source", "destination"):
        assert total(after, "istio_requests_total", reporter=reporter, **v2) == start[reporter] + n
    source, destination = requests["source"], requests["destination"]
    for labels in (source, destination):
        assert labels["source_workload"] == "productpage-v1"
        assert labels["source_app"] == "productpage"
        assert labels["source_version"] == "v1"
        assert labels["source_workload_namespace"] == "default"
        assert labels["destination_workload"] == "reviews-v2"
        assert labels["destination_app"] == "reviews"
        assert labels["destination_service_name"] == "reviews"
        assert labels["destination_service_namespace"] == "default"
        assert (
            labels["destination_principal"]
            == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
        )
        assert (
            labels["source_principal"]
            == "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
        )
        assert labels["request_protocol"] == "http"
        assert labels["response_flags"] == "-"
        assert labels["grpc_response_status"] == ""
        assert labels["destination_canonical_revision"] == "v2"
    assert source["connection_security_policy"] == "unknown"
    assert destination["connection_security_policy"] == "mutual_tls"
    # No request went to v1: the VirtualService sends everything to v2.
    assert total(after, "istio_requests_total", destination_version="v1") == 0


def test_duration_and_size_histograms_use_istio_buckets(live: Live) -> None:
    n = 5
    labels = {"reporter": "destination", "destination_version": "v2", "response_code": "200"}
    before = live.scrape()
    count0 = total(before, "istio_request_duration_milliseconds_count", **labels)
    live.send(n)
    wait_total(live, "istio_request_duration_milliseconds_count", count0 + n, **labels)
    after = live.scrape()
    buckets = {
        dict(k)["le"]: v
        for k, v in after["istio_request_duration_milliseconds_bucket"].items()
        if set(labels.items()) <= set(k)
    }
    assert [float(le) for le in buckets if le != "+Inf"] == [float(b) for b in DURATION_BUCKETS]
    assert buckets["+Inf"] == count0 + n
    # Loopback requests take well under a second; all fall in the 1000 ms bucket.
    assert buckets["1000.0"] == count0 + n
    duration_sum = total(after, "istio_request_duration_milliseconds_sum", **labels)
    assert 0 < duration_sum < 1000 * (count0 + n)
    for name in ("istio_request_bytes_count", "istio_response_bytes_count"):
        assert total(after, name, **labels) == count0 + n
    # Responses carry headers plus a small JSON body: more than 50 bytes each.
    response_bytes = total(after, "istio_response_bytes_sum", **labels)
    assert response_bytes - total(before, "istio_response_bytes_sum", **labels) > 50 * n


def test_upstream_503_counts_under_its_code_on_both_sides(live: Live) -> None:
    n = 4
    labels = {"destination_version": "v2", "response_code": "503"}
    before = live.scrape()
    start = {
        r: total(before, "istio_requests_total", reporter=r, **labels)
        for r in ("source", "destination")
    }
    assert live.send(n, "/fail") == 503
    for reporter in ("source", "destination"):
        wait_total(live, "istio_requests_total", start[reporter] + n, reporter=reporter, **labels)


def test_injected_abort_counts_only_at_the_source_with_fi(live: Live) -> None:
    n = 3
    labels = {"response_code": "500", "response_flags": "FI"}
    before = live.scrape()
    start = total(before, "istio_requests_total", reporter="source", **labels)
    assert live.send(n, headers={"end-user": "tester"}) == 500
    wait_total(live, "istio_requests_total", start + n, reporter="source", **labels)
    after = live.scrape()
    aborted = [dict(k) for k in after["istio_requests_total"] if set(labels.items()) <= set(k)]
    assert {a["reporter"] for a in aborted} == {"source"}
    assert aborted[0]["destination_service"] == REVIEWS
    assert aborted[0]["destination_workload"] == "unknown"
    assert total(after, "istio_requests_total", reporter="destination", response_code="500") == 0


def test_build_info_names_the_proxy(live: Live) -> None:
    builds = live.scrape()["istio_build"]
    assert [dict(k)["component"] for k in builds] == ["proxy"]
    assert list(builds.values()) == [1.0]


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_collector(live: Live) -> None:
    n = 6
    query = 'sum(istio_requests_total{destination_version="v2",response_code="200"})'
    before = total(
        live.scrape(), "istio_requests_total", destination_version="v2", response_code="200"
    )
    live.send(n)
    expected = before + 2 * n  # once per reporter
    wait_total(
        live, "istio_requests_total", expected, destination_version="v2", response_code="200"
    )

    async def scenario() -> float:
        async with Supervisor() as supervisor:
            target = TargetGroup((f"127.0.0.1:{live.metrics_port}",), {"job_kind": "mesh"})
            prometheus = LocalPrometheus(
                live.state, [ScrapeJob("istio", targets=(target,))], free_port()
            )
            await supervisor.start(prometheus.spec(), ready_timeout=10)
            async with PrometheusClient(prometheus.url) as client:
                deadline = asyncio.get_running_loop().time() + 15
                while True:
                    result = await client.query(query)
                    if result.samples or asyncio.get_running_loop().time() > deadline:
                        return result.value()
                    await asyncio.sleep(0.25)

    assert asyncio.run(scenario()) == expected


def test_tcp_connections_count_bytes_and_peers_on_both_sides(live: Live) -> None:
    n, payload = 3, b"x" * 700
    outbound = live.mesh.proxy("productpage-v1-0").ports.tcp_port(MYSQL, 3306)
    assert outbound is not None
    before = live.scrape()
    opened0 = {
        r: total(before, "istio_tcp_connections_opened_total", reporter=r)
        for r in ("source", "destination")
    }
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", outbound), timeout=5) as conn:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := conn.recv(4096):
                answer += chunk
        assert answer == payload
    for reporter in ("source", "destination"):
        wait_total(
            live, "istio_tcp_connections_closed_total", opened0[reporter] + n, reporter=reporter
        )
    after = live.scrape()
    for reporter in ("source", "destination"):
        (labels,) = [
            dict(k)
            for k in after["istio_tcp_connections_opened_total"]
            if dict(k)["reporter"] == reporter
        ]
        assert labels["source_workload"] == "productpage-v1"
        assert labels["destination_workload"] == "mysqldb-v1"
        assert labels["destination_service"] == MYSQL, labels
        assert labels["request_protocol"] == "tcp"
        assert "response_code" not in labels
        policy = "mutual_tls" if reporter == "destination" else "unknown"
        assert labels["connection_security_policy"] == policy
        assert (
            total(after, "istio_tcp_connections_opened_total", reporter=reporter)
            == opened0[reporter] + n
        )
        for name in ("istio_tcp_received_bytes_total", "istio_tcp_sent_bytes_total"):
            grown = total(after, name, reporter=reporter) - total(before, name, reporter=reporter)
            assert grown == n * len(payload), (name, reporter)

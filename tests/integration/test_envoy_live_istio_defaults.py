"""istiod's defaults, on real Envoys: what a request sees when the translation sets what istiod
sets (docs/istio-fidelity.md). A client sidecar calls three services through its outbound HTTP
proxy listener; their sidecars accept mTLS and front tiny apps that count the requests they get.

- ``split``: ``withoutHeaders`` sends a request that has no ``end-user`` header to v2, as on
  Istio (Envoy alone never matches an inverted matcher on a missing header).
- ``flaky``: three replicas, two answering 503; outlierDetection ejects them, and with
  ``healthy_panic_threshold: 0`` they get no traffic while ejected (Envoy's panic mode, at
  1 healthy host in 3, would spread traffic over all three again).
- ``slow``: no loadBalancer, so LEAST_REQUEST: a replica that holds requests gets fewer new
  ones than round robin's half.
- ``split`` again: ``max_grpc_timeout`` makes Envoy honour a gRPC client's ``grpc-timeout``.
- every inbound cluster: circuit breakers at 2^32-1, read back from the running Envoy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from canarymesh.api.loader import load_text
from canarymesh.mesh.build import build_mesh
from canarymesh.mesh.model import MeshSnapshot
from canarymesh.runtime.local.ca import LocalCA
from tests.integration.test_envoy_live_routing import UniquePorts, call, direct, start_envoy
from tests.support.processes import wait_for_port

pytestmark = pytest.mark.integration


def service(name: str, versions: dict[str, int]) -> str:
    docs = [
        f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 9080}}]
"""
    ]
    for version, replicas in versions.items():
        docs.append(
            f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}-{version}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}, version: {version}}}}}
  template:
    metadata: {{labels: {{app: {name}, version: {version}}}}}
    spec:
      containers:
      - name: app
        image: example/{name}
        ports: [{{containerPort: 9080}}]
"""
        )
    return "\n---\n".join(docs)


CONFIG = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: default}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      containers: [{name: app, image: example/client}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: split, namespace: default}
spec:
  host: split
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: split, namespace: default}
spec:
  hosts: [split]
  http:
  - match:
    - withoutHeaders:
        end-user: {exact: jason}
    route:
    - destination: {host: split, subset: v2}
  - route:
    - destination: {host: split, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: flaky, namespace: default}
spec:
  host: flaky
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 120s
      maxEjectionPercent: 100
"""
# Replica -> what its app does: answer 503, or hold each request this many seconds.
FAILING = {"flaky-v1-1", "flaky-v1-2"}
HOLD = {"slow-v1-0": 1.0}


@dataclasses.dataclass
class Apps:
    """Requests each replica's app received (by proxy id), behind a lock."""

    hits: Counter[str] = dataclasses.field(default_factory=Counter)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def count(self, replica: str) -> None:
        with self.lock:
            self.hits[replica] += 1

    def reset(self) -> Counter[str]:
        with self.lock:
            seen, self.hits = self.hits, Counter()
        return seen


def counting_app(replica: str, port: int, apps: Apps) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            apps.count(replica)
            time.sleep(HOLD.get(replica, 0.0) + float(self.headers.get("x-hold", "0")))
            status = 503 if replica in FAILING else 200
            body = replica.encode()
            try:
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client's sidecar gave up first (the gRPC deadline test)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclasses.dataclass
class Live:
    mesh: MeshSnapshot
    apps: Apps

    @property
    def outbound(self) -> int:
        return self.mesh.proxy("client-0").ports.outbound_http


SERVERS = {"split": {"v1": 1, "v2": 1}, "flaky": {"v1": 3}, "slow": {"v1": 2}}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    texts = [service(name, versions) for name, versions in SERVERS.items()]
    result = load_text("\n---\n".join([*texts, CONFIG]), "defaults.yaml")
    assert not result.diagnostics.has_errors, result.diagnostics.lines()
    mesh = build_mesh(result.resources, allocate=UniquePorts())
    state = tmp_path_factory.mktemp("defaults")
    ca = LocalCA.load_or_create(state, dt.datetime.now(dt.UTC))
    apps = Apps()
    servers: list[http.server.ThreadingHTTPServer] = []
    envoys = []
    replicas = [p for p in mesh.proxies if p.kind == "sidecar" and p.workload != "client"]
    try:
        for proxy in replicas:
            app_port = proxy.ports.app_port(9080)
            assert app_port is not None
            servers.append(counting_app(proxy.id, app_port, apps))
        for proxy in [*replicas, mesh.proxy("client-0")]:
            envoys.append((proxy, start_envoy(mesh, proxy, ca, state)))
        for proxy, envoy in envoys:
            port = proxy.ports.inbound_port(9080) or proxy.ports.outbound_http
            try:
                wait_for_port(port, timeout=30, proc=envoy)
            except (RuntimeError, TimeoutError) as exc:
                log = (state / f"{proxy.id}.log").read_text(errors="replace")
                raise RuntimeError(f"{proxy.id} did not start: {exc}\n{log}") from exc
        wait_for_port(mesh.proxy("client-0").ports.outbound_http, timeout=30)
        yield Live(mesh, apps)
    finally:
        for _, envoy in envoys:
            envoy.terminate()
            envoy.wait(timeout=10)
        for server in servers:
            server.shutdown()
            server.server_close()


def test_without_headers_routes_a_request_lacking_the_header_as_on_istio(live: Live) -> None:
    assert call(live.outbound, "http://split:9080/") == (200, "split-v2-0")
    assert call(live.outbound, "http://split:9080/", {"end-user": "bob"}) == (200, "split-v2-0")
    assert call(live.outbound, "http://split:9080/", {"end-user": "jason"}) == (200, "split-v1-0")


def test_ejected_hosts_get_no_traffic_while_ejected(live: Live) -> None:
    live.apps.reset()
    # Each failing replica answers 503 once and is ejected (consecutive5xxErrors: 1).
    for _ in range(60):
        call(live.outbound, "http://flaky:9080/")
        if all(live.apps.hits[r] for r in FAILING):
            break
    assert all(live.apps.hits[r] for r in FAILING), live.apps.hits
    # Envoy applies a second health change within a cluster's update_merge_window (1 s,
    # which istiod leaves at its default) only when the window ends.
    time.sleep(1.5)
    live.apps.reset()
    statuses = Counter(call(live.outbound, "http://flaky:9080/")[0] for _ in range(30))
    seen = live.apps.reset()
    # 1 healthy host of 3 is below Envoy's default panic threshold (50 %): without
    # healthy_panic_threshold 0, about two requests in three would go to the ejected hosts.
    assert {r: seen[r] for r in FAILING} == dict.fromkeys(FAILING, 0)
    assert statuses == Counter({200: 30})
    assert seen["flaky-v1-0"] == 30


def test_least_request_sends_fewer_requests_to_a_replica_that_holds_them(live: Live) -> None:
    live.apps.reset()
    deadline = time.monotonic() + 3.0

    def worker() -> None:
        while time.monotonic() < deadline:
            assert call(live.outbound, "http://slow:9080/")[0] == 200

    with ThreadPoolExecutor(6) as pool:
        for future in [pool.submit(worker) for _ in range(6)]:
            future.result()
    seen = live.apps.reset()
    total = seen["slow-v1-0"] + seen["slow-v1-1"]
    # Round robin gives the holding replica every other request (about 50 %); least request
    # picks the less busy of two random hosts, which leaves it about a quarter.
    assert total >= 20, seen
    assert seen["slow-v1-0"] / total < 0.4, seen


def test_a_grpc_timeout_header_is_honoured_when_the_route_sets_no_timeout(live: Live) -> None:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{live.outbound}"})
    )
    headers = {"content-type": "application/grpc", "grpc-timeout": "200m", "x-hold": "3"}
    request = urllib.request.Request("http://split:9080/", headers=headers)
    started = time.monotonic()
    with opener.open(request, timeout=10) as response:
        answer = (response.headers.get("grpc-status"), response.headers.get("grpc-message"))
    elapsed = time.monotonic() - started
    # max_grpc_timeout 0s: the client's 200 ms deadline becomes the route timeout, and Envoy
    # answers a gRPC request in gRPC (its 504 is UNAVAILABLE, 14). The server's sidecar honours
    # the deadline too (max_stream_duration on the inbound route: DEADLINE_EXCEEDED, 4), and
    # either may answer first. Without both, Envoy ignores the header: the app answers at 3 s.
    assert answer in {("14", "upstream request timeout"), ("4", "downstream duration timeout")}
    assert elapsed < 2.0


def test_inbound_clusters_run_with_circuit_breakers_at_their_maximum(live: Live) -> None:
    for replica in ("split-v1-0", "flaky-v1-0", "slow-v1-1"):
        status, text = direct(live.mesh.proxy(replica).ports.admin, "/clusters")
        assert status == 200
        limits = {
            line.rsplit("::", 2)[-2]: line.rsplit("::", 1)[-1]
            for line in text.splitlines()
            if line.startswith("inbound|9080||::default_priority::")
        }
        # Envoy's own defaults would read 1024 and 3.
        for name in ("max_connections", "max_pending_requests", "max_requests", "max_retries"):
            assert limits[name] == "4294967295", (replica, limits)

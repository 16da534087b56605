"""Generated configs served to real Envoys on 127.0.0.1: a productpage sidecar calls reviews and
ratings through its outbound HTTP proxy listener, the reviews sidecars accept mTLS (auto-mTLS
with certificates from the local CA) and enforce an AuthorizationPolicy, and the apps behind
them are tiny HTTP servers that say who they are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from canarymesh.api.loader import load_text
from canarymesh.mesh.build import build_mesh
from canarymesh.mesh.model import MeshSnapshot, ProxyNode, WorkloadIdentity
from canarymesh.runtime.local.ca import LocalCA
from canarymesh.xds.bootstrap import build_static_bootstrap
from canarymesh.xds.generate import generate
from tests.integration.test_envoy_validate_golden import envoy_binary
from tests.support.manifests import with_pod_annotations
from tests.support.processes import free_port, wait_for_port
from tests.unit.xds.meshes import sample

pytestmark = pytest.mark.integration

POLICY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}
    to:
    - operation: {methods: ["GET"]}
"""
PROXIES = ("productpage-v1-0", "reviews-v1-0", "reviews-v2-0", "reviews-v3-0", "ratings-v1-0")


def echo_app(name: str, port: int) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {"served_by": name, "xfcc": self.headers.get("x-forwarded-client-cert", "")}
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class UniquePorts:
    """Free loopback ports, never the same one twice (free_port alone may repeat itself)."""

    def __init__(self) -> None:
        self.given: set[int] = set()

    def __call__(self, key: tuple[str, str, str]) -> int:
        port = free_port()
        while port in self.given:
            port = free_port()
        self.given.add(port)
        return port


@dataclasses.dataclass
class LiveMesh:
    mesh: MeshSnapshot

    def proxy(self, proxy_id: str) -> ProxyNode:
        return self.mesh.proxy(proxy_id)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    texts = [
        # Its cluster stats, which Istio's default stats matcher leaves out (the per-subset
        # labels below are what they are asked for).
        with_pod_annotations(
            sample("platform/kube/bookinfo.yaml"),
            "productpage-v1",
            {"sidecar.istio.io/statsInclusionPrefixes": "cluster.outbound"},
        ),
        sample("networking/destination-rule-all.yaml"),
        sample("networking/virtual-service-reviews-test-v2.yaml"),
        sample("networking/virtual-service-ratings-test-abort.yaml"),
        sample("networking/bookinfo-gateway.yaml"),
        POLICY,
    ]
    result = load_text("\n---\n".join(texts), "live.yaml")
    assert not result.diagnostics.has_errors
    mesh = build_mesh(result.resources, allocate=UniquePorts())
    state = tmp_path_factory.mktemp("live")
    ca = LocalCA.load_or_create(state, dt.datetime.now(dt.UTC))
    servers: list[http.server.ThreadingHTTPServer] = []
    envoys: list[subprocess.Popen[bytes]] = []
    try:
        for proxy_id in PROXIES:
            proxy = mesh.proxy(proxy_id)
            app_port = proxy.ports.app_port(9080)
            assert app_port is not None
            servers.append(echo_app(proxy.workload, app_port))
            envoys.append(start_envoy(mesh, proxy, ca, state))
        gateway = start_envoy(mesh, mesh.proxy("istio-ingressgateway"), ca, state)
        envoys.append(gateway)
        wait_for_port(mesh.proxy("istio-ingressgateway").ports.gateway_port(8080) or 0, 30, gateway)
        for proxy_id, envoy in zip(PROXIES, envoys[: len(PROXIES)], strict=True):
            port = mesh.proxy(proxy_id).ports.inbound_port(9080) or 0
            try:
                wait_for_port(port, timeout=30, proc=envoy)
            except (RuntimeError, TimeoutError) as exc:
                log = (state / f"{proxy_id}.log").read_text(errors="replace")
                raise RuntimeError(f"{proxy_id} did not start: {exc}\n{log}") from exc
        wait_for_port(mesh.proxy("productpage-v1-0").ports.outbound_http, timeout=30)
        yield LiveMesh(mesh)
    finally:
        for envoy in envoys:
            envoy.terminate()
            envoy.wait(timeout=10)
        for server in servers:
            server.shutdown()
            server.server_close()


def start_envoy(
    mesh: MeshSnapshot, proxy: ProxyNode, ca: LocalCA, state: Path
) -> subprocess.Popen[bytes]:
    now = dt.datetime.now(dt.UTC)
    cert = ca.issue(f"spiffe://cluster.local/ns/{proxy.namespace}/sa/{proxy.service_account}", now)
    proxy = dataclasses.replace(
        proxy, identity=WorkloadIdentity(cert.chain_pem, cert.key_pem, ca.root_pem)
    )
    snapshot = generate(mesh, proxy)
    snapshot.check_consistent()
    config = state / f"{proxy.id}.json"
    config.write_text(json.dumps(build_static_bootstrap(snapshot, proxy, mesh.settings)))
    with (state / f"{proxy.id}.log").open("wb") as log:
        return subprocess.Popen(
            [
                envoy_binary(),
                "-c",
                str(config),
                "--concurrency",
                "1",
                "--disable-hot-restart",
                "--log-level",
                "warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def call(port: int, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"})
    )
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def direct(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_jason_reaches_reviews_v2_over_mtls_and_others_v1(live: LiveMesh) -> None:
    outbound = live.proxy("productpage-v1-0").ports.outbound_http
    status, body = call(outbound, "http://reviews:9080/reviews/0", {"end-user": "jason"})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["served_by"] == "reviews-v2"
    # The reviews sidecar saw productpage's certificate: the hop was mTLS.
    assert "URI=spiffe://cluster.local/ns/default/sa/bookinfo-productpage" in answer["xfcc"]
    for _ in range(3):
        status, body = call(outbound, "http://reviews:9080/reviews/0")
        assert (status, json.loads(body)["served_by"]) == (200, "reviews-v1")


def test_ratings_abort_answers_500_for_jason_only(live: LiveMesh) -> None:
    outbound = live.proxy("productpage-v1-0").ports.outbound_http
    assert call(outbound, "http://ratings:9080/ratings/0", {"end-user": "jason"}) == (
        500,
        "fault filter abort",
    )
    status, body = call(outbound, "http://ratings:9080/ratings/0")
    assert (status, json.loads(body)["served_by"]) == (200, "ratings-v1")


def test_reviews_denies_plaintext_callers_without_the_productpage_identity(live: LiveMesh) -> None:
    inbound = live.proxy("reviews-v1-0").ports.inbound_port(9080)
    assert inbound is not None
    assert direct(inbound, "/reviews/0") == (403, "RBAC: access denied")


def test_ingress_gateway_serves_the_bookinfo_paths_only(live: LiveMesh) -> None:
    port = live.proxy("istio-ingressgateway").ports.gateway_port(8080)
    assert port is not None
    status, body = direct(port, "/productpage")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["served_by"] == "productpage-v1"
    # gateway -> productpage is mTLS too, with the gateway's own identity
    gateway_id = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
    assert f"URI={gateway_id}" in answer["xfcc"]
    assert direct(port, "/")[0] == 404


def test_cluster_stats_carry_subset_and_service_labels(live: LiveMesh) -> None:
    proxy = live.proxy("productpage-v1-0")
    call(proxy.ports.outbound_http, "http://reviews:9080/reviews/0", {"end-user": "jason"})
    status, text = direct(proxy.ports.admin, "/stats/prometheus")
    assert status == 200
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("envoy_cluster_upstream_rq_total{")
        and 'mesh_subset="v2"' in line
        and 'mesh_service="reviews"' in line
    ]
    assert len(lines) == 1, "no per-subset series for reviews v2"
    assert 'envoy_cluster_name="outbound|9080|v2|reviews_default_svc_cluster_local"' in lines[0]
    assert float(lines[0].rsplit(" ", 1)[1]) >= 1


def test_other_proxies_keep_istios_default_stats_only(live: LiveMesh) -> None:
    proxy = live.proxy("reviews-v2-0")  # calls ratings, without the annotation
    call(live.proxy("productpage-v1-0").ports.outbound_http, "http://reviews:9080/reviews/0",
         {"end-user": "jason"})  # fmt: skip
    status, text = direct(proxy.ports.admin, "/stats/prometheus")
    assert status == 200 and "envoy_server_live" in text
    clusters = {
        line.split('envoy_cluster_name="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if 'envoy_cluster_name="' in line
    }
    assert not any(name.startswith("outbound|") for name in clusters), clusters
    assert "envoy_cluster_upstream_rq_total{" not in text

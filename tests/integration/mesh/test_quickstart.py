"""The seed README's quick start on the local mesh, with ``canarymesh`` in place of kubectl.

One mesh for the module (``bookinfo_mesh``): Bookinfo, destination-rule-all, all-v1 and the
gateway. Tests that change routing put it back to all-v1 before they end.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, cast

import pytest

from tests.integration.mesh.conftest import LocalMesh

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STAR = "glyphicon glyphicon-star"
ALL_V1 = "bookinfo/networking/virtual-service-all-v1.yaml"


def test_productpage_through_the_ingress_gateway(bookinfo_mesh: LocalMesh) -> None:
    assert "<title>Simple Bookstore App</title>" in bookinfo_mesh.page()


def test_get_pods_shows_six_pods_ready_like_kubectl(bookinfo_mesh: LocalMesh) -> None:
    lines = bookinfo_mesh.cli("get", "pods").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = [line.split() for line in lines[1:]]
    deployments = sorted(row[0].rsplit("-", 2)[0] for row in rows)
    assert deployments == [
        "details-v1",
        "productpage-v1",
        "ratings-v1",
        "reviews-v1",
        "reviews-v2",
        "reviews-v3",
    ]
    assert all(row[1:3] == ["2/2", "Running"] for row in rows), rows
    # kubectl-like names: <deployment>-<10 char template hash>-<5 chars>
    assert all(len(row[0].rsplit("-", 2)[1]) == 10 for row in rows)


def test_all_v1_never_shows_stars(bookinfo_mesh: LocalMesh) -> None:
    pages = [bookinfo_mesh.page() for _ in range(100)]
    assert all("Simple Bookstore App" in page for page in pages)
    assert sum(STAR in page for page in pages) == 0


def test_reviews_v3_always_shows_red_stars(bookinfo_mesh: LocalMesh) -> None:
    out = bookinfo_mesh.cli(
        "apply", "-f", "bookinfo/networking/virtual-service-reviews-v3.yaml", "--wait"
    )
    assert out.stdout.strip() == "virtualservice.networking.istio.io/reviews configured"
    try:
        pages = [bookinfo_mesh.page() for _ in range(30)]
        assert all(STAR in page and "text-red-500" in page for page in pages)
    finally:
        bookinfo_mesh.cli("apply", "-f", ALL_V1, "--wait")
    assert STAR not in bookinfo_mesh.page()


def test_reapplying_the_same_file_is_unchanged(bookinfo_mesh: LocalMesh) -> None:
    out = bookinfo_mesh.cli("apply", "-f", ALL_V1)
    assert all(line.endswith(" unchanged") for line in out.stdout.splitlines()), out.stdout
    assert len(out.stdout.splitlines()) == 4


def test_a_bad_file_is_refused_whole(bookinfo_mesh: LocalMesh) -> None:
    text = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: would-be-new}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: -5
"""
    before = bookinfo_mesh.cli("get", "vs").stdout
    done = bookinfo_mesh.cli("apply", "-f", "-", stdin=text, check=False)
    assert done.returncode == 1
    assert "weight" in done.stderr and "nothing applied" in done.stderr
    assert bookinfo_mesh.cli("get", "vs").stdout == before
    missing = bookinfo_mesh.cli("get", "vs", "would-be-new", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_an_unknown_image_is_refused_with_how_to_map_it(bookinfo_mesh: LocalMesh) -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: httpd:2.4
        ports: [{containerPort: 80}]
"""
    done = bookinfo_mesh.cli("apply", "-f", "-", stdin=text, check=False)
    assert done.returncode == 1
    assert "'httpd:2.4' has no local equivalent" in done.stderr
    assert "web" not in bookinfo_mesh.cli("get", "deployments").stdout


def test_proxy_status_shows_every_proxy_synced(bookinfo_mesh: LocalMesh) -> None:
    lines = bookinfo_mesh.cli("proxy-status").stdout.splitlines()
    assert lines[0].split()[:6] == ["NAME", "CDS", "LDS", "EDS", "RDS", "SDS"]
    assert len(lines) == 8  # six pods and the ingress gateway
    assert any(line.startswith("istio-ingressgateway.istio-system") for line in lines)
    assert all(line.split()[1:6] == ["SYNCED"] * 5 for line in lines[1:]), lines


def test_proxy_config_reads_the_envoy_admin_api(bookinfo_mesh: LocalMesh) -> None:
    pod = _pod(bookinfo_mesh, "productpage-v1")
    # istioctl's singular spelling works too.
    clusters = bookinfo_mesh.cli("proxy-config", "cluster", pod).stdout.splitlines()
    assert clusters[0].split() == ["SERVICE", "FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE"]
    rows = [line.split() for line in clusters[1:]]
    assert ["reviews.default.svc.cluster.local", "9080", "v2", "outbound", "EDS"] in rows
    routes = bookinfo_mesh.json("proxy-config", "routes", pod, "-o", "json")
    names = {item["route_config"]["name"] for item in routes["items"]}
    # Istio's route config per port in a pod network; one HTTP proxy route on the shared one.
    assert names == ({"9080"} if bookinfo_mesh.network == "pod" else {"outbound_http_proxy"})
    endpoints = bookinfo_mesh.cli("proxy-config", "endpoints", pod).stdout
    assert "outbound|9080|v3|reviews.default.svc.cluster.local" in endpoints


def test_status_reports_urls_and_every_component(bookinfo_mesh: LocalMesh) -> None:
    status = bookinfo_mesh.status()
    assert status["ingress_url"].startswith("http://127.0.0.1:")
    assert status["prometheus_url"].startswith("http://127.0.0.1:")
    names = {c["name"] for c in status["components"]}
    assert {"control-plane", "prometheus", "istio-ingressgateway.istio-proxy"} <= names
    assert sum(name.endswith(".istio-proxy") for name in names) == 7
    assert all(c["pid"] for c in status["components"])
    url = bookinfo_mesh.cli("dashboard", "prometheus").stdout.strip()
    assert url == status["prometheus_url"]


def test_get_describe_and_logs(bookinfo_mesh: LocalMesh) -> None:
    services = bookinfo_mesh.cli("get", "svc").stdout.splitlines()
    assert services[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
    assert sorted(line.split()[0] for line in services[1:]) == [
        "details",
        "productpage",
        "ratings",
        "reviews",
    ]
    # The seed README's "get the external IP of the Istio gateway".
    ingress = bookinfo_mesh.cli("get", "svc", "istio-ingressgateway", "-n", "istio-system")
    port = bookinfo_mesh.ingress.rsplit(":", 1)[1]
    assert ingress.stdout.splitlines()[1].split() == [
        "istio-ingressgateway", "LoadBalancer", "<none>", "127.0.0.1", f"8080:{port}/TCP"
    ]  # fmt: skip
    dr = bookinfo_mesh.json("get", "dr", "reviews", "-o", "json")
    assert [s["name"] for s in dr["spec"]["subsets"]] == ["v1", "v2", "v3"]
    described = bookinfo_mesh.cli("describe", "vs", "reviews").stdout
    assert "subset: v1" in described
    pod = _pod(bookinfo_mesh, "productpage-v1")
    bookinfo_mesh.page()
    envoy_log = bookinfo_mesh.cli("logs", pod, "-c", "istio-proxy")
    assert envoy_log.returncode == 0
    wrong = bookinfo_mesh.cli("logs", pod, "-c", "nope", check=False)
    assert wrong.returncode == 1 and "istio-proxy" in wrong.stderr


def test_a_killed_sidecar_restarts_and_resyncs_within_two_seconds(
    bookinfo_mesh: LocalMesh,
) -> None:
    pods = bookinfo_mesh.json("get", "pods", "-o", "json")["items"]
    pod = next(p for p in pods if p["deployment"] == "reviews-v2")
    sidecar = next(c for c in pod["containers"] if c["name"].endswith(".istio-proxy"))
    os.kill(sidecar["pid"], signal.SIGKILL)
    killed = time.monotonic()
    api = bookinfo_mesh.api()
    while True:
        elapsed = time.monotonic() - killed
        pods_now = cast(list[dict[str, Any]], api.get("/v1/pods")["items"])
        current = next(p for p in pods_now if p["name"] == pod["name"])
        proxies = cast(list[dict[str, Any]], api.get("/v1/proxy-status")["proxies"])
        synced = next(p for p in proxies if p["pod"] == pod["name"])["synced"]
        if current["restarts"] == pod["restarts"] + 1 and current["ready"] == "2/2" and synced:
            break
        assert elapsed < 2.0, (current, synced)
        time.sleep(0.01)
    assert "Simple Bookstore App" in bookinfo_mesh.page()


def _query(prometheus_url: str, promql: str) -> float:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = prometheus_url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with opener.open(url, timeout=5) as response:
        result = json.loads(response.read())["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def _eventually(prometheus_url: str, promql: str, wanted: float, timeout: float = 20) -> float:
    deadline = time.monotonic() + timeout
    while (value := _query(prometheus_url, promql)) < wanted and time.monotonic() < deadline:
        time.sleep(0.5)
    return value


def test_prometheus_scrapes_every_envoy_and_istio_metrics(bookinfo_mesh: LocalMesh) -> None:
    url = bookinfo_mesh.status()["prometheus_url"]
    assert _eventually(url, 'count(up{job="envoy-stats"} == 1)', 7) == 7
    for _ in range(10):
        bookinfo_mesh.page()
    inbound = (
        'sum(istio_requests_total{reporter="destination",destination_workload="productpage-v1",'
        'response_code="200"})'
    )
    assert _eventually(url, inbound, 10) >= 10


def _pod(mesh: LocalMesh, deployment: str) -> str:
    pods = mesh.json("get", "pods", "-o", "json")["items"]
    return str(next(p["name"] for p in pods if p["deployment"] == deployment))


def test_no_request_fails_while_weights_change_under_load(bookinfo_mesh: LocalMesh) -> None:
    """Make-before-break: 100 weight changes of reviews under steady load; every page is a 200
    that shows the reviews (productpage answers 200 even when its reviews call failed)."""
    api = bookinfo_mesh.api()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    statuses: list[int] = []
    broken: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                with opener.open(bookinfo_mesh.ingress + "/productpage", timeout=10) as response:
                    page = response.read().decode()
                    statuses.append(response.status)
                if "Book Reviews" not in page or "Book Details" not in page:
                    broken.append(page)
            except urllib.error.HTTPError as err:
                statuses.append(err.code)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        for flip in range(100):
            a = (flip * 37) % 101  # a new split each time, as a canary's steps make
            text = REVIEWS_SPLIT.format(a=a, b=100 - a)
            api.post("/v1/apply", {"documents": [{"source": "t", "text": text}], "wait": True})
    finally:
        stop.set()
        worker.join()
        bookinfo_mesh.cli("apply", "-f", ALL_V1, "--wait")
    assert len(statuses) >= 100
    assert set(statuses) == {200}
    assert not broken, f"{len(broken)} of {len(statuses)} pages lost a backend call"


REVIEWS_SPLIT = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {{host: reviews, subset: v1}}
      weight: {a}
    - destination: {{host: reviews, subset: v3}}
      weight: {b}
"""

"""Pods with networks of their own: what issue 12 asks of the local mesh, measured end to end.

One mesh in pod mode runs Bookinfo twice (namespaces ``default`` and ``webapps``, as the README's
canary flow does) and a program of the user's own started through ``command``. The tests call
services from inside pods (``canarymesh exec``), from the pod network without a sidecar (the
node namespace, Istio's "legacy" client) and from the host.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canarymesh.errors import TemporaryError
from canarymesh.runtime.local.netns import NETNS_DIR, pod_networks_unavailable
from canarymesh.runtime.local.podnet import ETC_NETNS, RUN_ROOT, mesh_id
from tests.integration.mesh.conftest import LocalMesh, plaintext_get, start_mesh

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        pod_networks_unavailable() is not None,
        reason=f"pod networks cannot be made here: {pod_networks_unavailable()}",
    ),
]

# A user's own service: no catalog image, a command, env from a ConfigMap, a working directory,
# an exec liveness probe and an HTTP readiness probe on a named port.
ECHO = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: echo-config, namespace: default}
data: {GREETING: hello-from-configmap}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default, labels: {app: echo}}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 8000, targetPort: web}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: echo, namespace: default}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-v1, namespace: default}
spec:
  selector: {matchLabels: {app: echo, version: v1}}
  template:
    metadata: {labels: {app: echo, version: v1}}
    spec:
      serviceAccountName: echo
      containers:
      - name: echo
        image: registry.example.com/acme/echo:1.0
        command: [PYTHON, -c, "$(SERVER)", "$(PORT)"]
        workingDir: WORKDIR
        env:
        - {name: PORT, value: "8000"}
        - {name: SERVER, value: SERVER_CODE}
        - {name: VERSION, value: v1}
        envFrom:
        - configMapRef: {name: echo-config}
        ports: [{name: web, containerPort: 8000}]
        readinessProbe: {httpGet: {path: /healthz, port: web}, periodSeconds: 1}
        livenessProbe: {exec: {command: [test, -d, /]}, periodSeconds: 2}
"""
SERVER_CODE = (
    "import http.server,json,os,sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    " def do_GET(self):\n"
    "  body=json.dumps({'version':os.environ['VERSION'],'greeting':os.environ['GREETING'],"
    "'cwd':os.getcwd(),'uid':os.getuid(),'client':self.client_address[0]}).encode()\n"
    "  self.send_response(200);self.send_header('Content-Length',str(len(body)));"
    "self.end_headers();self.wfile.write(body)\n"
    " def log_message(self,*a): pass\n"
    "http.server.ThreadingHTTPServer(('0.0.0.0',int(sys.argv[1])),H).serve_forever()\n"
)
ECHO_ROUTE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {x-route: {exact: nowhere}}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: echo, subset: v1}}]
  - route: [{destination: {host: echo, subset: v1}}]
"""


def _host_state() -> tuple[str, str]:
    """The host's routes and firewall, which the mesh must never touch."""
    routes = subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True, text=True)
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True)
    return routes.stdout, rules.stdout


@pytest.fixture(scope="module")
def host_before() -> tuple[str, str]:
    return _host_state()


@pytest.fixture(scope="module")
def pod_mesh(tmp_path_factory: pytest.TempPathFactory, host_before: object) -> Iterator[LocalMesh]:
    mesh = start_mesh(tmp_path_factory.mktemp("podnet") / "state", "--network", "pod")
    workdir = tmp_path_factory.mktemp("echo-work")
    echo = (
        ECHO.replace("PYTHON", sys.executable)
        .replace("WORKDIR", str(workdir))
        .replace("SERVER_CODE", json.dumps(SERVER_CODE))
    )
    try:
        mesh.cli("apply", "-f", "bookinfo/platform/kube/bookinfo.yaml")
        mesh.cli("apply", "-f", "canary-manifests/00-namespace.yaml")
        mesh.cli("apply", "-n", "webapps", "-f", "bookinfo/platform/kube/bookinfo.yaml")
        mesh.cli(
            "apply",
            "-f",
            "bookinfo/networking/destination-rule-all.yaml",
            "-f",
            "bookinfo/networking/virtual-service-all-v1.yaml",
            "-f",
            "bookinfo/networking/bookinfo-gateway.yaml",
            "-f",
            "canary-manifests/virtual-service.yaml",
            "-f",
            "canary-manifests/destination-rule.yaml",
        )
        mesh.cli("apply", "-f", "-", stdin=echo)
        mesh.cli("apply", "-f", "-", "--wait", stdin=ECHO_ROUTE)
        yield mesh
    finally:
        mesh.down()


def _page_from(mesh: LocalMesh, namespace: str) -> str:
    """The product page as a pod of ``namespace`` gets it by short name (``productpage``)."""
    pod = mesh.pod("ratings-v1", namespace)
    status, body = mesh.call_from(pod, "http://productpage:9080/productpage")
    assert status == 200
    return body.decode()


def test_every_pod_has_its_own_ip_and_namespace(pod_mesh: LocalMesh) -> None:
    pods = pod_mesh.json("get", "pods", "-A", "-o", "json")["items"]
    assert len(pods) == 13  # Bookinfo twice and echo
    ips = [p["ip"] for p in pods]
    assert len(set(ips)) == len(ips) and all(ip.startswith("10.244.") for ip in ips)
    # The same Deployment in two namespaces: two pods, two names in their namespaces, two IPs.
    default, webapps = pod_mesh.pod("reviews-v2"), pod_mesh.pod("reviews-v2", "webapps")
    assert default["ip"] != webapps["ip"] and default["netns"] != webapps["netns"]
    wide = pod_mesh.cli("get", "pods", "-n", "webapps", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-2:] == ["IP", "NODE"]
    assert any(webapps["ip"] in line for line in wide)
    statuses = pod_mesh.json("proxy-status", "-o", "json")
    names = {p["name"] for p in statuses}
    assert f"{default['name']}.default" in names and f"{webapps['name']}.webapps" in names
    assert all(p["synced"] for p in statuses), statuses


def test_services_get_stable_cluster_ips(pod_mesh: LocalMesh) -> None:
    services = pod_mesh.json("get", "svc", "-A", "-o", "json")["items"]
    ips = {
        f"{s['metadata']['namespace']}/{s['metadata']['name']}": s["spec"]["clusterIP"]
        for s in services
        if s["spec"].get("clusterIP")
    }
    assert {"default/details", "webapps/details", "default/echo"} <= set(ips)
    assert len(set(ips.values())) == len(ips) and all(
        ip.startswith("10.96.") for ip in ips.values()
    )
    table = pod_mesh.cli("get", "svc", "-n", "webapps").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "TYPE", "CLUSTER-IP"]
    assert any(ips["webapps/details"] in line for line in table)
    pod_mesh.cli("apply", "-n", "webapps", "-f", "bookinfo/platform/kube/bookinfo.yaml")
    again = pod_mesh.json("get", "svc", "details", "-n", "webapps", "-o", "json")
    assert again["spec"]["clusterIP"] == ips["webapps/details"]


def test_names_resolve_in_the_pods_own_namespace_first(pod_mesh: LocalMesh) -> None:
    script = (
        "import socket\n"
        "for name in ['details', 'details.default', 'details.webapps',"
        " 'details.webapps.svc.cluster.local', 'reviews.default.svc']:\n"
        "    print(name, socket.gethostbyname(name))\n"
    )
    pod = pod_mesh.pod("productpage-v1", "webapps")
    out = pod_mesh.exec(str(pod["name"]), sys.executable, "-c", script, namespace="webapps")
    resolved = dict(line.split() for line in out.splitlines())
    ips = {
        f"{s['metadata']['name']}.{s['metadata']['namespace']}": s["spec"].get("clusterIP")
        for s in pod_mesh.json("get", "svc", "-A", "-o", "json")["items"]
    }
    assert resolved["details"] == ips["details.webapps"]
    assert resolved["details.webapps"] == resolved["details.webapps.svc.cluster.local"]
    assert resolved["details.default"] == ips["details.default"] != resolved["details"]
    assert resolved["reviews.default.svc"] == ips["reviews.default"]


DNS_ENTRY = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: legacy-details
  namespace: default
spec:
  hosts: [legacy-details.example.com]
  location: MESH_EXTERNAL
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: DNS
  endpoints: [{address: details.webapps.svc.cluster.local}]
"""


def test_the_sidecars_own_lookups_ask_the_pods_dns(pod_mesh: LocalMesh) -> None:
    # A DNS-resolved cluster is resolved by Envoy itself, which the capture rules leave alone:
    # it must still reach the pod's DNS (a lookup sent nowhere waits out c-ares' timeouts,
    # holding every new proxy unready for a minute while its clusters warm).
    pod_mesh.cli("apply", "-f", "-", "--wait", stdin=DNS_ENTRY)
    try:
        address = pod_mesh.json("get", "svc", "details", "-n", "webapps", "-o", "json")["spec"][
            "clusterIP"
        ]
        pod = pod_mesh.pod("productpage-v1")
        cluster = "outbound|9080||legacy-details.example.com"
        hosts: list[str] = []
        for _ in range(100):
            dump = pod_mesh.json("proxy-config", "endpoints", str(pod["name"]), "-o", "json")
            hosts = [
                f"{h['address']['socket_address']['address']}:"
                f"{h['address']['socket_address']['port_value']}"
                for c in dump["cluster_statuses"]
                if c["name"] == cluster
                for h in c.get("host_statuses", ())
            ]
            if hosts:
                break
            time.sleep(0.1)
        assert hosts == [f"{address}:9080"]
    finally:
        pod_mesh.cli("delete", "-f", "-", "--wait", stdin=DNS_ENTRY)


def test_both_namespaces_serve_complete_pages_and_the_canary_stays_in_webapps(
    pod_mesh: LocalMesh,
) -> None:
    # webapps: canary-manifests/virtual-service.yaml sends every reviews request to v2.
    for _ in range(5):
        page = _page_from(pod_mesh, "webapps")
        assert "Book Details" in page and "Book Reviews" in page, page
        assert "Reviews served by: reviews-v2-" in page
    # default: all-v1 from bookinfo/networking, untouched by webapps' VirtualService.
    for _ in range(5):
        for page in (pod_mesh.page(), _page_from(pod_mesh, "default")):
            assert "Book Details" in page and "Book Reviews" in page
            assert "Reviews served by: reviews-v1-" in page
            assert "Error fetching" not in page


def test_a_users_own_program_joins_the_mesh(pod_mesh: LocalMesh) -> None:
    echo = pod_mesh.pod("echo-v1")
    assert echo["ready"] == "2/2"
    caller = pod_mesh.pod("productpage-v1")
    status, body = pod_mesh.call_from(caller, "http://echo:8000/hello")
    assert status == 200
    seen = json.loads(body)
    # Its command ran with $(VAR)s expanded, its envFrom, workingDir and the manifest's user
    # (none: root, as a container); the caller reached it through both sidecars (127.0.0.6).
    assert seen["greeting"] == "hello-from-configmap" and seen["version"] == "v1"
    assert Path(seen["cwd"]).name.startswith("echo-work")
    assert seen["client"] == "127.0.0.6"
    # Routed by its VirtualService: a matching header is aborted by the caller's sidecar.
    status, _ = pod_mesh.call_from(caller, "http://echo:8000/", {"x-route": "nowhere"})
    assert status == 418


def _requests_total(mesh: LocalMesh, **labels: str) -> float:
    port = mesh.status()["telemetry"]["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith("istio_requests_total{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _settled_total(mesh: LocalMesh, **labels: str) -> float:
    """The count once the access logs of earlier requests are in: Envoy sends them in batches
    (every second), so a request of the test before may still be on its way."""
    found = _requests_total(mesh, **labels)
    for _ in range(5):
        time.sleep(1.2)
        again = _requests_total(mesh, **labels)
        if again == found:
            return found
        found = again
    return found


def _wait_for_count(mesh: LocalMesh, at_least: float, **labels: str) -> float:
    deadline = time.monotonic() + 10
    while (found := _requests_total(mesh, **labels)) < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def test_requests_to_the_users_program_are_counted_by_who_really_called(
    pod_mesh: LocalMesh,
) -> None:
    caller = pod_mesh.pod("productpage-v1")
    real = {"destination_workload": "echo-v1", "reporter": "destination"}
    before = _settled_total(pod_mesh, source_workload="productpage-v1", **real)
    forged_before = _requests_total(pod_mesh, source_workload="reviews-v3", **real)
    # A header claiming to be reviews-v3 (the exchange header of the shared network).
    forged = {
        "x-canarymesh-source": "workload=reviews-v3;namespace=default;app=reviews;version=v3;"
        "principal=spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
        "x-canarymesh-service": "reviews.default.svc.cluster.local",
    }
    for _ in range(3):
        assert pod_mesh.call_from(caller, "http://echo:8000/", forged)[0] == 200
    after = _wait_for_count(pod_mesh, before + 3, source_workload="productpage-v1", **real)
    assert after == before + 3
    assert _requests_total(pod_mesh, source_workload="reviews-v3", **real) == forged_before
    assert (
        _requests_total(
            pod_mesh,
            source_workload="productpage-v1",
            destination_service="echo.default.svc.cluster.local",
            **real,
        )
        >= 3
    )


STRICT_DENY_ALL = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: echo-from-productpage, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-productpage]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
"""


def _settled(mesh: LocalMesh, pod: dict[str, Any], url: str, status: int) -> bool:
    deadline = time.monotonic() + 5
    while mesh.call_from(pod, url)[0] != status:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _from_host(ip: str, port: int) -> bytes:
    try:
        return plaintext_get(ip, port)
    except OSError:
        return b""


def test_apps_are_reached_only_through_their_sidecar(pod_mesh: LocalMesh) -> None:
    details = pod_mesh.pod("details-v1")
    echo = pod_mesh.pod("echo-v1")
    # The host has no route into the pod network (whatever its default route answers, it is
    # not the app).
    assert b"greeting" not in _from_host(str(echo["ip"]), 8000)
    pod_mesh.cli("apply", "-f", "-", "--wait", stdin=STRICT_DENY_ALL)
    try:
        # A client on the pod network without a sidecar: plaintext is refused by the sidecar
        # (the app's own port is never reached, whatever the port).
        for ip, port in ((details["ip"], 9080), (echo["ip"], 8000), (echo["ip"], 22)):
            assert plaintext_get(str(ip), port, pod_mesh.node_netns) == b""
        # From inside the mesh: mTLS, then RBAC by the verified identity (a connection kept
        # alive from before the policy serves out Envoy's 2 s drain, hence the settling).
        productpage, ratings = pod_mesh.pod("productpage-v1"), pod_mesh.pod("ratings-v1")
        assert _settled(pod_mesh, productpage, "http://details:9080/details/0", 403)
        assert pod_mesh.call_from(productpage, "http://echo:8000/")[0] == 200
        # A header claiming productpage's identity changes no authorization decision.
        forged = {
            "x-canarymesh-source": "workload=productpage-v1;namespace=default;app=productpage;"
            "version=v1;principal=spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
            "x-forwarded-client-cert": "URI=spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        }
        status, body = pod_mesh.call_from(ratings, "http://echo:8000/", forged)
        assert (status, body) == (403, b"RBAC: access denied")
        # Straight to the pod IP from another pod: the caller's sidecar passes it through as
        # plaintext (no service is addressed), which STRICT refuses as it does on Istio.
        direct = pod_mesh.call_from(ratings, f"http://{echo['ip']}:8000/")
        assert direct[0] == 503
    finally:
        pod_mesh.cli("delete", "-f", "-", "--wait", stdin=STRICT_DENY_ALL)


def test_the_sidecar_admin_is_on_the_pods_loopback_only(pod_mesh: LocalMesh) -> None:
    pod = pod_mesh.pod("reviews-v1")
    sidecar = next(c for c in pod["containers"] if c["name"].endswith(".istio-proxy"))
    # Not on the host's loopback (nothing of the mesh listens there but its gateways)...
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    assert ":15000 " not in listening
    # ...nor from the pod network: the admin is on the pod's own 127.0.0.1, so POST
    # /quitquitquit to the pod's IP never reaches it (the capture hands it to nothing).
    for path in ("/quitquitquit", "/config_dump"):
        answer = plaintext_get(str(pod["ip"]), 15000, pod_mesh.node_netns, path)
        assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    time.sleep(0.5)
    after = next(
        c for c in pod_mesh.pod("reviews-v1")["containers"] if c["name"] == sidecar["name"]
    )
    assert (after["pid"], after["restarts"]) == (sidecar["pid"], sidecar["restarts"])
    # proxy-config still works through the control plane.
    clusters = pod_mesh.cli("proxy-config", "cluster", str(pod["name"])).stdout
    assert "reviews.default.svc.cluster.local" in clusters


def test_exec_passes_the_exit_code_and_runs_in_the_pod(pod_mesh: LocalMesh) -> None:
    pod = pod_mesh.pod("ratings-v1", "webapps")
    done = pod_mesh.cli(
        "exec", "-n", "webapps", str(pod["name"]), "--", "sh", "-c", "exit 7", check=False
    )
    assert done.returncode == 7
    addresses = pod_mesh.exec(str(pod["name"]), "ip", "-4", "-o", "addr", namespace="webapps")
    assert f"inet {pod['ip']}/" in addresses and "eth0" in addresses


def test_down_removes_everything_and_leaves_the_host_as_it_was(
    tmp_path: Path, host_before: tuple[str, str]
) -> None:
    mesh = start_mesh(tmp_path / "state", "--network", "pod", "--no-prometheus")
    mesh.cli("apply", "-f", "bookinfo/platform/kube/bookinfo-ratings.yaml", "--wait")
    prefix = f"cm-{mesh_id(mesh.state_dir)}-"
    made = [p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix)]
    assert len(made) == 4  # node, host handle, ratings, the gateway
    # A control plane killed outright (its keeper first) leaves its pods and namespaces; the
    # next `up` takes them over, and `down` removes them all.
    status = mesh.status()
    for pid in (status["keeper"], status["pid"]):
        subprocess.run(["kill", "-9", str(pid)], check=True)
    time.sleep(0.5)
    assert any(p.name.startswith(prefix) for p in NETNS_DIR.iterdir())
    mesh.cli("up", "--ingress-port", "0", "--network", "pod", "--no-prometheus")
    pods: list[dict[str, Any]] = mesh.json("get", "pods", "-o", "json")["items"]
    assert len(pods) == 1 and mesh.status()["adopted"] == 2
    mesh.down()
    assert not [p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix)]
    assert not list(ETC_NETNS.glob(prefix + "*"))
    assert not (RUN_ROOT / mesh_id(mesh.state_dir)).exists()
    assert _host_state() == host_before


FLAKY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: flaky, namespace: default}
spec:
  selector: {matchLabels: {app: flaky}}
  template:
    metadata: {labels: {app: flaky}}
    spec:
      containers:
      - name: flaky
        image: registry.example.com/acme/flaky:1
        command: [PYTHON, -c, "import time; time.sleep(3600)"]
        ports: [{containerPort: 7000}]
        readinessProbe: {tcpSocket: {port: 7000}, periodSeconds: 1}
        livenessProbe: {exec: {command: [test, -e, /no/such/file]}, periodSeconds: 1,
                        failureThreshold: 2}
"""


def test_liveness_and_readiness_probes_act_as_the_kubelets(pod_mesh: LocalMesh) -> None:
    manifest = FLAKY.replace("PYTHON", sys.executable)
    pod_mesh.cli("apply", "-f", "-", stdin=manifest)
    try:
        deadline = time.monotonic() + 20
        pod: dict[str, Any] = {}
        while time.monotonic() < deadline:
            pod = pod_mesh.pod("flaky")
            app = next(c for c in pod["containers"] if not c["name"].endswith(".istio-proxy"))
            if app["restarts"] >= 1:
                break
            time.sleep(0.3)
        # The exec probe fails (in the container, as its user): killed and restarted; the
        # TCP readiness probe never passes (nothing listens on 7000): never ready.
        assert app["restarts"] >= 1, pod
        assert pod["ready"] == "1/2", pod
    finally:
        pod_mesh.cli("delete", "-f", "-", stdin=manifest)


def test_a_wait_that_runs_out_names_what_it_waits_for(pod_mesh: LocalMesh) -> None:
    # Never ready (nothing listens on 7000), never restarted (no liveness probe).
    manifest = FLAKY.replace("PYTHON", sys.executable).replace("flaky", "unready")
    manifest = manifest[: manifest.index("        livenessProbe")]
    pod_mesh.cli("apply", "-f", "-", stdin=manifest)
    try:
        with pytest.raises(TemporaryError) as waited:
            pod_mesh.api().wait(timeout=3)
        name = pod_mesh.pod("unready")["name"]
        said = str(waited.value)
        assert "did not converge in 3.0s: " in said and f"pod default/{name} is Running 1/2" in said
    finally:
        pod_mesh.cli("delete", "-f", "-", stdin=manifest)

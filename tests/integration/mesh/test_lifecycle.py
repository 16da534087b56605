"""``up`` and ``down`` of small meshes: clear refusals, the global ``--state-dir``, and no process
left behind, neither after ``down`` nor after the control plane is SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.mesh.conftest import CANARYMESH, REPO, LocalMesh, start_mesh, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RATINGS = "bookinfo/platform/kube/bookinfo-ratings.yaml"


@pytest.fixture
def small_mesh(tmp_path: Path) -> Iterator[LocalMesh]:
    mesh = start_mesh(tmp_path / "state", "--no-prometheus")
    try:
        mesh.cli("apply", "-f", RATINGS, "--wait")
        yield mesh
    finally:
        if mesh.cli("status", check=False).returncode == 0:
            mesh.down()


def test_up_twice_is_refused(small_mesh: LocalMesh) -> None:
    again = small_mesh.cli("up", "--ingress-port", "0", check=False)
    assert again.returncode == 1
    assert "already running" in again.stderr and "canarymesh down" in again.stderr


def test_a_taken_ingress_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        mesh = LocalMesh(tmp_path / "state")
        done = mesh.cli("up", "--ingress-port", str(port), check=False)
    assert done.returncode == 1
    assert f"ingress port 127.0.0.1:{port} is in use" in done.stderr
    assert not (tmp_path / "state" / "daemon.json").exists()


def test_state_dir_is_global_before_or_after_the_command(small_mesh: LocalMesh) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CANARYMESH_STATE_DIR"}
    state = str(small_mesh.state_dir)

    def run(*args: str, extra_env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [CANARYMESH, *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env | (extra_env or {}),
            check=True,
        )
        return done.stdout

    before = run("--state-dir", state, "get", "pods")
    after = run("get", "pods", "--state-dir", state)
    from_env = run("get", "pods", extra_env={"CANARYMESH_STATE_DIR": state})
    assert "ratings-v1-" in before
    assert [line.split()[0] for line in before.splitlines()] == [
        line.split()[0] for line in after.splitlines()
    ]
    assert from_env.splitlines()[1].split()[0] == before.splitlines()[1].split()[0]
    # The command's own option wins over the group's.
    other = run("--state-dir", "/nonexistent-mesh", "get", "pods", "--state-dir", state)
    assert "ratings-v1-" in other


def test_down_leaves_no_process(small_mesh: LocalMesh) -> None:
    names = {c["name"] for c in small_mesh.status()["components"]}
    assert {"control-plane", "canary-controller", "istio-ingressgateway.istio-proxy"} <= names
    assert sum(name.startswith("ratings-v1-") for name in names) == 2  # the app and its sidecar
    pids = small_mesh.pids()
    assert len(pids) == len(names) == 5
    small_mesh.cli("down")
    assert wait_gone(pids) == []
    status = small_mesh.cli("status", check=False)
    assert status.returncode == 3 and "no local mesh running" in status.stdout


def test_down_stops_what_a_dead_control_plane_left_running(small_mesh: LocalMesh) -> None:
    status = small_mesh.status()
    pids = [p for p in small_mesh.pids() if p != status["pid"]]
    # The keeper first (else it brings the control plane back), then the control plane.
    os.kill(int(status["keeper"]), signal.SIGKILL)
    os.kill(int(status["pid"]), signal.SIGKILL)
    assert wait_gone([int(status["pid"])]) == []
    # Its pods keep running (as a kubelet's containers outlive the kubelet)...
    assert wait_gone(pids, timeout=0.5) == pids
    assert small_mesh.cli("status", check=False).returncode == 3
    # ...until `down` stops them from the control plane's records.
    small_mesh.cli("down")
    assert wait_gone(pids) == []
    # The stale daemon.json does not block a new mesh in the same state directory, and the
    # applied resources come back with it.
    small_mesh.cli("up", "--ingress-port", "0", "--no-prometheus")
    again = small_mesh.cli("apply", "-f", RATINGS, "--wait").stdout.splitlines()
    assert again == [
        "service/ratings unchanged",
        "serviceaccount/bookinfo-ratings unchanged",
        "deployment.apps/ratings-v1 unchanged",
    ]
    assert "2/2" in small_mesh.cli("get", "pods").stdout


def test_delete_stops_the_pods_and_forgets_the_proxy(small_mesh: LocalMesh) -> None:
    pods = small_mesh.json("get", "pods", "-o", "json")["items"]
    pids = [c["pid"] for c in pods[0]["containers"]]
    done = small_mesh.cli("delete", "-f", RATINGS, "--wait")
    assert done.stdout.splitlines() == [
        "service/ratings deleted",
        "serviceaccount/bookinfo-ratings deleted",
        "deployment.apps/ratings-v1 deleted",
    ]
    assert wait_gone(pids) == []
    assert small_mesh.json("get", "pods", "-o", "json")["items"] == []
    proxies = small_mesh.json("proxy-status", "-o", "json")
    assert [p["name"] for p in proxies] == ["istio-ingressgateway"]
    again = small_mesh.cli("delete", "-f", RATINGS)
    assert again.stdout.splitlines()[0] == "service/ratings not found"


def test_a_config_a_proxy_rejects_is_refused_whole_and_never_stored(
    small_mesh: LocalMesh,
) -> None:
    # Valid for the api package, refused by Envoy (RingHashLbConfig allows at most 8388608).
    rule = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user, minimumRingSize: 100000000}
"""
    for _ in range(2):  # refused again, never "unchanged": nothing was stored
        done = small_mesh.cli("apply", "-f", "-", stdin=rule, check=False)
        assert done.returncode != 0
        error = done.stdout + done.stderr
        assert "nothing was applied" in error and "ratings-v1-" in error, error
        assert "Proto constraint validation failed" in error and "8388608" in error, error
        assert "Traceback" not in error
    listed = small_mesh.cli("get", "destinationrules", check=False)
    assert "ratings" not in listed.stdout
    # Every proxy is back on (and ACKed) its previous config, which keeps serving.
    statuses = small_mesh.json("proxy-status", "-o", "json")
    assert all(p["synced"] and not p["errors"] for p in statuses), statuses
    pod = small_mesh.json("get", "pods", "-o", "json")["items"][0]
    status, body = small_mesh.call_from(pod, "http://ratings:9080/ratings/0")
    assert status == 200 and b'"Reviewer1":5' in body
    # And a restart pushes what is stored: still nothing of the refused rule.
    clusters = small_mesh.json("proxy-config", "clusters", str(pod["name"]), "-o", "json")
    assert "100000000" not in json.dumps(clusters)


def test_a_pod_that_is_not_ready_gets_no_traffic(small_mesh: LocalMesh) -> None:
    never_ready = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: ratings-v2}
spec:
  selector: {matchLabels: {app: ratings, version: v2}}
  template:
    metadata: {labels: {app: ratings, version: v2}}
    spec:
      containers:
      - name: ratings
        image: ghcr.io/canary-mesh/examples-bookinfo-ratings-v2:0.1.0
        ports: [{containerPort: 9080}]
        readinessProbe: {httpGet: {path: /no-such-path, port: 9080}}
"""
    small_mesh.cli("apply", "-f", "-", stdin=never_ready)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pods = small_mesh.json("get", "pods", "-o", "json")["items"]
        v2 = next(p for p in pods if p["deployment"] == "ratings-v2")
        app = next(c for c in v2["containers"] if not c["name"].endswith(".istio-proxy"))
        if app["phase"] == "Starting" and app["pid"] and v2["ready"] == "1/2":
            break
        time.sleep(0.2)
    time.sleep(1.0)  # long enough for any readiness push to have happened
    assert (v2["ready"], v2["status"]) == ("1/2", "Running")  # as kubectl shows it
    v1 = next(p for p in pods if p["deployment"] == "ratings-v1")
    rows = small_mesh.cli("proxy-config", "endpoints", v1["name"]).stdout.splitlines()
    ratings = [r.split() for r in rows if r.endswith("|ratings.default.svc.cluster.local")]
    # Only the ready pod: its IP and container port, or its sidecar's loopback port.
    endpoint = (
        f"{v1['ip']}:9080"
        if small_mesh.network == "pod"
        else f"127.0.0.1:{v1['ports']['inbound']['9080']}"
    )
    assert [r[0] for r in ratings] == [endpoint]

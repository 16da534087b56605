"""The shared-network fallback (``up --network host``), kept tested beside pod networks.

Where network namespaces cannot be made, every pod shares the host's network: apps reach their
sidecar as ``HTTP_PROXY``, listen on loopback ports the control plane picks, and a program of the
user's own binds its containerPort itself. The whole suite runs in this mode with
``CANARYMESH_TEST_NETWORK=host``; these tests keep its core covered in every run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from canarymesh.cli.main import cli
from canarymesh.runtime.local import launcher
from tests.integration.mesh.conftest import LocalMesh, start_mesh
from tests.support.processes import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NET = "bookinfo/networking/"


@pytest.fixture(scope="module")
def shared_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = start_mesh(tmp_path_factory.mktemp("shared") / "state", "--network", "host")
    try:
        mesh.cli("apply", "-f", "bookinfo/platform/kube/bookinfo.yaml", "--wait")
        mesh.cli(
            "apply",
            "-f",
            NET + "destination-rule-all.yaml",
            "-f",
            NET + "virtual-service-reviews-v3.yaml",
            "-f",
            NET + "bookinfo-gateway.yaml",
            "--wait",
        )
        yield mesh
    finally:
        mesh.down()


def test_the_page_is_served_through_sidecars_on_the_shared_network(shared_mesh: LocalMesh) -> None:
    assert shared_mesh.network == "host"
    page = shared_mesh.page()
    assert "Book Details" in page and "Reviews served by: reviews-v3-" in page
    pod = shared_mesh.pod("productpage-v1")
    assert pod["ip"] is None and pod["ports"]["outbound_http"] > 0
    routes = shared_mesh.json("proxy-config", "routes", str(pod["name"]), "-o", "json")
    assert {item["route_config"]["name"] for item in routes["items"]} == {"outbound_http_proxy"}
    wide = shared_mesh.cli("get", "pods", "-o", "wide").stdout.splitlines()[0].split()
    assert wide[5:] == ["IP", "NODE", "ADMIN", "APP-PORTS", "SIDECAR-PORTS"]


def test_apps_find_their_sidecar_as_http_proxy(shared_mesh: LocalMesh) -> None:
    pod = shared_mesh.pod("productpage-v1")
    env = shared_mesh.exec(str(pod["name"]), "env")
    proxy = f"HTTP_PROXY=http://127.0.0.1:{pod['ports']['outbound_http']}"
    assert proxy in env.splitlines()
    status, body = shared_mesh.call_from(pod, "http://reviews:9080/reviews/0")
    assert status == 200 and b'"color": "red"' in body.replace(b'":"', b'": "')


OWN_PROGRAM = """\
apiVersion: v1
kind: Service
metadata: {name: hello}
spec:
  selector: {app: hello}
  ports: [{name: http, port: 80, targetPort: PORT}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      containers:
      - name: hello
        image: example.com/hello:1
        command: [PYTHON, -m, http.server, "PORT", --bind, 127.0.0.1]
        ports: [{containerPort: PORT}]
"""


def test_a_users_program_binds_its_container_port_itself(shared_mesh: LocalMesh) -> None:
    port = free_port()
    manifest = OWN_PROGRAM.replace("PORT", str(port)).replace("PYTHON", sys.executable)
    shared_mesh.cli("apply", "-f", "-", "--wait", stdin=manifest)
    try:
        pod = shared_mesh.pod("productpage-v1")
        status, body = shared_mesh.call_from(pod, "http://hello/")
        assert status == 200 and b"Directory listing" in body
    finally:
        shared_mesh.cli("delete", "-f", "-", "--wait", stdin=manifest)


def test_asking_for_pod_networks_where_they_cannot_be_made_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        launcher, "pod_networks_unavailable", lambda: "network namespaces need root"
    )
    assert launcher.choose_network("auto") == ("host", "network namespaces need root")
    assert launcher.choose_network("host") == ("host", None)
    result = CliRunner().invoke(
        cli, ["up", "--network", "pod", "--state-dir", str(tmp_path / "s"), "--ingress-port", "0"]
    )
    assert result.exit_code != 0
    assert "--network pod: network namespaces need root" in result.output
    assert not (tmp_path / "s" / "daemon.json").exists()
    status = json.loads(
        CliRunner().invoke(cli, ["status", "-o", "json", "--state-dir", str(tmp_path / "s")]).output
    )
    assert status["running"] is False

"""A local mesh driven through the real ``canarymesh`` console script, in a state dir under tmp.

``LocalMesh.cli(...)`` runs one command as a user would (a new process each time); the fixture
finaliser runs ``down`` and checks that no process the mesh started is still alive.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from canarymesh.runtime.local.api_client import ApiClient
from canarymesh.runtime.local.netns import socket_in_netns
from canarymesh.runtime.local.podnet import mesh_id

REPO = Path(__file__).parents[3]
CANARYMESH = str(Path(sys.executable).parent / "canarymesh")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    """The pids still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@dataclass
class LocalMesh:
    state_dir: Path
    ingress_url: str = ""

    def cli(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "CANARYMESH_STATE_DIR"}
        done = subprocess.run(
            [CANARYMESH, "--state-dir", str(self.state_dir), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=90,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"canarymesh {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args).stdout)

    def api(self) -> ApiClient:
        """The control plane's API in this process: for loops too tight for a CLI per step."""
        return ApiClient.for_state_dir(self.state_dir)

    def status(self) -> dict[str, Any]:
        return dict(self.json("status", "-o", "json"))

    @property
    def ingress(self) -> str:
        if not self.ingress_url:
            self.ingress_url = str(self.status()["ingress_url"])
        return self.ingress_url

    @property
    def network(self) -> str:
        """``pod`` (namespaces per pod) or ``host`` (the shared network)."""
        return str(self.status()["network"])

    def pod(self, deployment: str, namespace: str = "default") -> dict[str, Any]:
        """The first pod of ``deployment`` as ``get pods -o json`` shows it."""
        pods = self.json("get", "pods", "-n", namespace, "-o", "json")["items"]
        return dict(next(p for p in pods if p["deployment"] == deployment))

    @property
    def node_netns(self) -> str:
        """The pod network's node namespace: a client on the pod network with no sidecar."""
        return f"/run/netns/cm-{mesh_id(self.state_dir)}-node"

    def exec(self, pod: str, *command: str, namespace: str = "default") -> str:
        """``canarymesh exec``'s output (it must exit 0)."""
        return self.cli("exec", "-n", namespace, pod, "--", *command).stdout

    def call_from(
        self, pod: dict[str, Any], url: str, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """GET ``url`` as ``pod``'s app would: through its sidecar (inside the pod's network,
        or on the shared network through the sidecar's HTTP proxy listener)."""
        if self.network == "pod":
            out = self.exec(
                str(pod["name"]),
                sys.executable,
                "-c",
                _CALL,
                url,
                json.dumps(headers or {}),
                namespace=str(pod["namespace"]),
            )
            found = json.loads(out)
            return int(found[0]), str(found[1]).encode("latin-1")
        proxy = f"http://127.0.0.1:{pod['ports']['outbound_http']}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
        request = urllib.request.Request(url, headers=headers or {})
        try:
            with opener.open(request, timeout=10) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as err:
            return int(err.code), bytes(err.read())

    def admin_stats(self, pod: dict[str, Any]) -> dict[str, int]:
        """The counters and gauges of ``pod``'s sidecar (its admin ``/stats``, which is private:
        the pod's loopback or a 0600 socket), read through the control plane."""
        query = {"pod": str(pod["name"]), "namespace": str(pod["namespace"]), "section": "stats"}
        text = str(self.api().get("/v1/proxy-config", query)["text"])
        found = {}
        for line in text.splitlines():
            name, _, value = line.rpartition(": ")
            if value.isdigit():
                found[name] = int(value)
        return found

    def pids(self) -> list[int]:
        return [int(c["pid"]) for c in self.status()["components"] if c.get("pid")]

    def page(self, path: str = "/productpage") -> str:
        with _NO_PROXY.open(self.ingress + path, timeout=10) as response:
            return str(response.read().decode())

    def down(self) -> None:
        pids = self.pids()
        self.cli("down")
        left = wait_gone(pids)
        assert not left, f"processes left behind by down: {left}"


# One GET from inside a pod: argv url, headers as JSON; prints [status, body as latin-1].
_CALL = """
import json, sys, urllib.error, urllib.request
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
request = urllib.request.Request(sys.argv[1], headers=json.loads(sys.argv[2]))
try:
    with direct.open(request, timeout=10) as response:
        print(json.dumps([response.status, response.read().decode("latin-1")]))
except urllib.error.HTTPError as err:
    print(json.dumps([err.code, err.read().decode("latin-1")]))
"""

# ``CANARYMESH_TEST_NETWORK=host`` runs the mesh tests on the shared network (default: what
# ``up`` chooses, pod networks where they can be made).
TEST_NETWORK = os.environ.get("CANARYMESH_TEST_NETWORK", "auto")


def start_mesh(state_dir: Path, *extra: str) -> LocalMesh:
    mesh = LocalMesh(state_dir)
    network = [] if "--network" in extra else ["--network", TEST_NETWORK]
    mesh.cli("up", "--ingress-port", "0", "--restart-backoff", "0.2", *network, *extra)
    return mesh


def plaintext_get(
    host: str, port: int, netns: str | None = None, path: str = "/details/0"
) -> bytes:
    """What a plaintext HTTP client gets from ``host:port`` (b"" when the peer hangs up), from
    the host or from inside the network namespace file ``netns``."""
    if netns is None:
        conn = socket.create_connection((host, port), timeout=5)
    else:
        conn = socket_in_netns(netns)
        try:
            conn.setblocking(True)
            conn.settimeout(5)
            conn.connect((host, port))
        except OSError:
            conn.close()
            raise
    with conn:
        conn.sendall(
            f"GET {path} HTTP/1.1\r\nHost: details:9080\r\nConnection: close\r\n\r\n".encode()
        )
        received = b""
        try:
            while chunk := conn.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
        return received


@pytest.fixture(scope="module")
def bookinfo_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    """One mesh per test module with Bookinfo, the destination rules, all-v1 and the gateway."""
    mesh = start_mesh(tmp_path_factory.mktemp("mesh") / "state")
    try:
        mesh.cli("apply", "-f", "bookinfo/platform/kube/bookinfo.yaml", "--wait")
        mesh.cli(
            "apply",
            "-f",
            "bookinfo/networking/destination-rule-all.yaml",
            "-f",
            "bookinfo/networking/virtual-service-all-v1.yaml",
            "-f",
            "bookinfo/networking/bookinfo-gateway.yaml",
            "--wait",
        )
        yield mesh
    finally:
        mesh.down()

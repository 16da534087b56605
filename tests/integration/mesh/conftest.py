"""A local mesh driven through the real ``canarymesh`` console script, in a state dir under tmp.

``LocalMesh.cli(...)`` runs one command as a user would (a new process each time); the fixture
finaliser runs ``down`` and checks that no process the mesh started is still alive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from canarymesh.runtime.local.api_client import ApiClient

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
            [CANARYMESH, *args, "--state-dir", str(self.state_dir)],
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


def start_mesh(state_dir: Path, *extra: str) -> LocalMesh:
    mesh = LocalMesh(state_dir)
    mesh.cli("up", "--ingress-port", "0", "--restart-backoff", "0.2", *extra)
    return mesh


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

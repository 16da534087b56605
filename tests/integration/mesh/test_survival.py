"""The local mesh survives its control plane (issue 13): killed, it is back within seconds, takes
over the pods that kept serving, and keeps the ingress port; no request is lost meanwhile."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.mesh.conftest import TEST_NETWORK, LocalMesh, alive, start_mesh

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def survival_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = start_mesh(tmp_path_factory.mktemp("survival") / "state")
    try:
        mesh.cli(
            "apply",
            "-f",
            "bookinfo/platform/kube/bookinfo.yaml",
            "-f",
            "bookinfo/networking/bookinfo-gateway.yaml",
            "--wait",
        )
        yield mesh
    finally:
        mesh.down()


class Load:
    """40 pages a second through the ingress, counting complete pages and everything else."""

    def __init__(self, url: str, rate: float = 40.0) -> None:
        self.url, self.interval = url + "/productpage", 1 / rate
        self.good = 0
        self.bad: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with _DIRECT.open(self.url, timeout=10) as response:
                    body = response.read()
                complete = b"Book Details" in body and b"Error fetching" not in body
                if response.status == 200 and complete:
                    self.good += 1
                else:
                    self.bad.append(f"{response.status}, incomplete page")
            except Exception as err:  # every failure counts, whatever it is
                self.bad.append(repr(err)[:120])
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


def _processes(mesh: LocalMesh) -> dict[str, int]:
    return {
        c["name"]: c["pid"]
        for p in mesh.json("get", "pods", "-o", "json")["items"]
        for c in p["containers"]
    }


def _wait_new_control_plane(mesh: LocalMesh, old: int, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = mesh.status()
        except AssertionError:
            status = {}
        if status.get("pid") not in (None, old):
            return status
        time.sleep(0.05)
    raise AssertionError(f"no new control plane within {timeout}s")


def test_a_killed_control_plane_is_back_adopts_everything_and_loses_no_request(
    survival_mesh: LocalMesh,
) -> None:
    mesh = survival_mesh
    before = mesh.status()
    processes = _processes(mesh)
    with Load(mesh.ingress) as load:
        time.sleep(1.0)
        os.kill(int(before["pid"]), signal.SIGKILL)
        killed = time.monotonic()
        after = _wait_new_control_plane(mesh, int(before["pid"]))
        back_in = time.monotonic() - killed
        time.sleep(1.0)
    assert load.bad == [] and load.good > 40, (load.good, load.bad[:5])
    assert back_in < 15, back_in
    # The same processes kept serving: adopted, not restarted; the same ingress port.
    assert _processes(mesh) == processes
    assert after["adopted"] == 7 and after["restarts"] == 1
    assert after["ingress_url"] == before["ingress_url"] == mesh.ingress
    components = {c["name"]: c for c in after["components"]}
    assert components["control-plane"]["restarts"] == 1
    # The new control plane serves the proxies and applies changes as the old one did.
    assert all(p["synced"] for p in mesh.json("proxy-status", "-o", "json"))
    mesh.cli("apply", "-f", "bookinfo/networking/destination-rule-all.yaml", "--wait")
    assert "Book Details" in mesh.page()


def test_up_after_the_keeper_died_too_adopts_what_still_runs(survival_mesh: LocalMesh) -> None:
    mesh = survival_mesh
    status = mesh.status()
    processes = _processes(mesh)
    for pid in (status["keeper"], status["pid"]):  # the keeper first: nothing restarts it
        os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(int(status["pid"])) and time.monotonic() < deadline:
        time.sleep(0.05)
    # The pods keep serving with no control plane at all.
    assert "Book Details" in mesh.page()
    port = status["ingress_url"].rsplit(":", 1)[1]
    # The same `up` as before (its network too: auto may choose differently than the pods have).
    mesh.cli("up", "--ingress-port", port, "--restart-backoff", "0.2", "--network", TEST_NETWORK)
    again = mesh.status()
    assert again["adopted"] == 7 and _processes(mesh) == processes
    assert "Book Details" in mesh.page()

"""Rollouts on a real local mesh (Envoys, Prometheus, the controller process), one mesh for the
module with Bookinfo and 40 requests/s through the ingress: a healthy canary is promoted, a
faulty one rolled back with the metric in the reason, a SIGKILLed controller resumes at the
same step, and a stopped Prometheus holds the rollout."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canarymesh.cli.demo import DEMO_RATINGS, DEMO_REVIEWS, FAULTY_RATINGS
from canarymesh.ports import state_of
from canarymesh.ports.load import LoadGenerator
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.runtime.local.controller_process import controller_info
from canarymesh.runtime.local.rollout_store import RolloutStore
from tests.integration.mesh.conftest import LocalMesh, start_mesh, wait_gone

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = start_mesh(tmp_path_factory.mktemp("rollout") / "state")
    load = None
    try:
        mesh.cli("apply", "-f", "bookinfo/platform/kube/bookinfo.yaml", "-f",
                 "bookinfo/networking/destination-rule-all.yaml", "-f",
                 "bookinfo/networking/virtual-service-all-v1.yaml", "-f",
                 "bookinfo/networking/bookinfo-gateway.yaml", "--wait")  # fmt: skip
        load = LoadGenerator(f"{mesh.ingress}/productpage", 40.0, 600.0).start()
        yield mesh
    finally:
        if load is not None:
            load.stop()
        controller = controller_info(mesh.state_dir)
        mesh.down()
        if controller is not None:  # the controller goes with the mesh
            assert not wait_gone([int(controller["pid"])]), "controller left after down"


def start(mesh: LocalMesh, tmp: Path, text: str) -> None:
    path = tmp / "canary.yaml"
    path.write_text(text)
    mesh.cli("rollout", "start", "-f", str(path))


def wait_state(mesh: LocalMesh, key: str, done: Any, timeout: float = 90.0) -> CanaryState:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = state_of(RolloutStore(mesh.state_dir).load(key))
        if state is not None and done(state):
            return state
        time.sleep(0.3)
    raise AssertionError(f"{key}: not reached in {timeout}s; last: {state}")


def final(state: CanaryState) -> bool:
    return state.phase in (Phase.SUCCEEDED, Phase.FAILED)


def routes(mesh: LocalMesh, name: str) -> list[dict[str, Any]]:
    vs = mesh.api().get("/v1/resources", {"kinds": "virtualservice.networking.istio.io",
                                          "namespace": "default", "name": name})  # fmt: skip
    return list(vs["items"][0]["spec"]["http"])  # type: ignore[index]


def test_healthy_canary_is_promoted(mesh: LocalMesh, tmp_path: Path) -> None:
    start(mesh, tmp_path, DEMO_REVIEWS)
    state = wait_state(mesh, "default/reviews", final)
    assert state.phase is Phase.SUCCEEDED, state.message
    # Written as on a cluster (the route writer both runtimes share): v3 alone, weight 100.
    assert routes(mesh, "reviews") == [{"route": [{"destination": {"host": "reviews",
                                                                   "subset": "v3"},
                                                   "weight": 100}]}]  # fmt: skip
    shown = json.loads(mesh.cli("rollout", "get", "reviews", "-o", "json").stdout)
    assert shown["phase"] == "Succeeded" and shown["log"][-1]["reason"].startswith("promoted")
    assert "red" in mesh.page()  # v3's stars, now for everyone


def test_the_mesh_prometheus_scrapes_the_controller(mesh: LocalMesh) -> None:
    # Runs after the promotion above in this module's mesh, so the controller has decided.
    prometheus = mesh.status()["prometheus_url"]
    query = 'sum(canarymesh_rollout_decisions_total{job="canarymesh-controller"})'
    deadline, value = time.monotonic() + 30, 0.0
    while time.monotonic() < deadline and value == 0:
        url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(url, timeout=5) as resp:
            result = json.load(resp)["data"]["result"]
        value = float(result[0]["value"][1]) if result else 0.0
        time.sleep(1)
    assert value > 0, "the controller's decisions never reached the mesh's Prometheus"


def test_faulty_canary_is_rolled_back(mesh: LocalMesh, tmp_path: Path) -> None:
    mesh.cli("apply", "-f", "-", "--wait", stdin=FAULTY_RATINGS)
    start(mesh, tmp_path, DEMO_RATINGS)
    state = wait_state(mesh, "default/ratings", final)
    assert state.phase is Phase.FAILED
    assert "request-success-rate canary errors" in state.message and "%" in state.message
    weights = [d.get("weight") for d in routes(mesh, "ratings")[0]["route"]]
    assert weights == [100, 0]
    rollback = [h for h in state.history if h.phase is Phase.ROLLING_BACK][0]
    assert (state.history[-1].at - rollback.at).total_seconds() < 5
    history = mesh.cli("rollout", "history", "ratings").stdout
    assert "Failed" in history and "RollingBack  request-success-rate canary errors" in history
    info = controller_info(mesh.state_dir)
    assert info is not None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(str(info["metrics_url"]), timeout=5) as response:
        exported = response.read().decode()
    assert 'canarymesh_rollout_phase{canary="ratings",namespace="default",phase="Failed"} 1.0' in (
        exported
    )
    assert 'decision="rollback"' in exported and "canarymesh_rollout_weight{" in exported
    listed = mesh.cli("rollout", "list").stdout.splitlines()
    assert any(line.split()[:3] == ["default", "ratings", "Failed"] for line in listed)
    assert any(line.split()[:3] == ["default", "reviews", "Succeeded"] for line in listed)


SHORT = """
apiVersion: canarymesh.io/v1alpha1
kind: Canary
metadata: {name: reviews, namespace: default}
spec:
  target: {host: reviews, virtualService: reviews, stableSubset: STABLE, canarySubset: CANARY}
  strategy: {canary: {steps: STEPS}}
  analysis: {interval: 5s, minRequests: 30,
             metrics: [{name: request-success-rate}, {name: request-duration, tolerance: 10}]}
"""
# v3 -> v2 with a timed pause between two weights: no analysis, so only the restart is tested.
PAUSED = (
    SHORT.replace("STABLE", "v3").replace("CANARY", "v2")
    .replace("STEPS", "[{setWeight: 20}, {pause: {duration: 8s}}, {setWeight: 40}]")
)  # fmt: skip
ANALYSED = (
    SHORT.replace("STABLE", "v2").replace("CANARY", "v3")
    .replace("STEPS", "[{setWeight: 50}, {analysis: {duration: 6s}}]")
)  # fmt: skip


def test_sigkilled_controller_resumes_at_the_same_step(mesh: LocalMesh, tmp_path: Path) -> None:
    start(mesh, tmp_path, PAUSED)
    before = wait_state(mesh, "default/reviews", lambda s: s.step == 1 and s.verified_at, 30)
    info = controller_info(mesh.state_dir)
    assert info is not None
    os.kill(int(info["pid"]), signal.SIGKILL)
    killed = time.monotonic()
    kept = state_of(RolloutStore(mesh.state_dir).load("default/reviews"))
    assert kept is not None and kept.step == 1 and kept.started_at == before.started_at
    # No command brings it back: the control plane supervises it and restarts it at once.
    deadline = killed + 10
    while (now := controller_info(mesh.state_dir)) is None or now["pid"] == info["pid"]:
        assert time.monotonic() < deadline, "the controller was not restarted"
        time.sleep(0.05)
    restarts = {c["name"]: c["restarts"] for c in mesh.status()["components"]}
    assert restarts["canary-controller"] >= 1
    resumed = wait_state(mesh, "default/reviews", lambda s: s.step >= 2 or final(s), 30)
    assert [h.reason for h in resumed.history[: len(before.history)]] == [
        h.reason for h in before.history
    ]
    assert resumed.started_at == before.started_at and resumed.phase is not Phase.FAILED
    assert wait_state(mesh, "default/reviews", final).phase is Phase.SUCCEEDED


def test_a_rollout_goes_on_while_the_control_plane_is_killed(
    mesh: LocalMesh, tmp_path: Path
) -> None:
    start(mesh, tmp_path, PAUSED)
    wait_state(mesh, "default/reviews", lambda s: s.step == 1 and s.verified_at, 30)
    controller = controller_info(mesh.state_dir)
    daemon = mesh.status()["pid"]
    os.kill(int(daemon), signal.SIGKILL)
    # The keeper brings the control plane back; it adopts the controller, which carries on.
    assert wait_state(mesh, "default/reviews", final, 60).phase is Phase.SUCCEEDED
    after = controller_info(mesh.state_dir)
    assert controller is not None and after is not None and after["pid"] == controller["pid"]
    assert mesh.status()["pid"] != daemon


def test_prometheus_stopped_holds_the_rollout(mesh: LocalMesh, tmp_path: Path) -> None:
    start(mesh, tmp_path, ANALYSED)
    wait_state(mesh, "default/reviews", lambda s: s.step == 1 and s.verified_at, 30)
    pid = [c["pid"] for c in mesh.status()["components"] if c["name"] == "prometheus"][0]
    os.kill(pid, signal.SIGSTOP)
    try:
        held = wait_state(mesh, "default/reviews",
                          lambda s: "metrics source unreachable" in s.message, 30)  # fmt: skip
        time.sleep(8)  # longer than the 6 s step: without metrics it must not pass
        after = state_of(RolloutStore(mesh.state_dir).load("default/reviews"))
        assert after is not None and after.phase is Phase.PROGRESSING and after.step == held.step
        assert "no promotion without metrics" in after.message
    finally:
        os.kill(pid, signal.SIGCONT)
    assert wait_state(mesh, "default/reviews", final).phase is Phase.SUCCEEDED

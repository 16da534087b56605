"""A config canary on a real local mesh: Bookinfo with four productpage pods and load through the
ingress; ``apply --canary 25% -f fault-injection-details-v1.yaml`` puts the fault on one
productpage sidecar only (proved by each sidecar's own Envoy config), the controller judges that
sidecar's calls against the other three's and rolls the change back, after which no sidecar has
the fault and details is served again everywhere."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.ports import state_of
from canarymesh.ports.load import LoadGenerator
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.runtime.local.rollout_store import RolloutStore
from tests.integration.mesh.conftest import LocalMesh, start_mesh

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
FAULT = "bookinfo/networking/fault-injection-details-v1.yaml"
KEY = "default/details-config"
# The abort of the fault filter as Envoy holds it in a route's per-filter config.
ABORT_555 = re.compile(r'"http_?[sS]tatus":\s*555\b')


def bookinfo_with_four_productpages() -> str:
    docs = list(yaml.safe_load_all((REPO / "bookinfo/platform/kube/bookinfo.yaml").read_text()))
    for doc in docs:
        if doc and doc["kind"] == "Deployment" and doc["metadata"]["name"] == "productpage-v1":
            doc["spec"]["replicas"] = 4
    return yaml.safe_dump_all([d for d in docs if d], sort_keys=False)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = start_mesh(tmp_path_factory.mktemp("config-canary") / "state")
    load = None
    try:
        mesh.cli("apply", "-f", "-", "--wait", stdin=bookinfo_with_four_productpages())
        mesh.cli("apply", "-f", "bookinfo/networking/destination-rule-all.yaml", "-f",
                 "bookinfo/networking/virtual-service-all-v1.yaml", "-f",
                 "bookinfo/networking/bookinfo-gateway.yaml", "--wait")  # fmt: skip
        load = LoadGenerator(f"{mesh.ingress}/productpage", 40.0, 600.0).start()
        yield mesh
    finally:
        if load is not None:
            load.stop()
        mesh.down()


def productpages(mesh: LocalMesh) -> list[str]:
    rows = mesh.cli("get", "pods").stdout.splitlines()[1:]
    return sorted(row.split()[0] for row in rows if row.startswith("productpage-v1-"))


def faulted(mesh: LocalMesh, pod: str) -> bool:
    """Whether the pod's own Envoy holds a route that aborts calls with 555."""
    dump = mesh.cli("proxy-config", "routes", pod, "-o", "json").stdout
    json.loads(dump)  # the proxy's answer, whole
    return bool(ABORT_555.search(dump))


def wait_state(mesh: LocalMesh, done: Any, timeout: float) -> CanaryState:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = state_of(RolloutStore(mesh.state_dir).load(KEY))
        if state is not None and done(state):
            return state
        time.sleep(0.3)
    raise AssertionError(f"{KEY}: not reached in {timeout}s; last: {state}")


@pytest.mark.timeout(300)
def test_a_fault_config_reaches_a_quarter_of_the_sidecars_and_is_rolled_back(
    mesh: LocalMesh,
) -> None:
    pods = productpages(mesh)
    assert len(pods) == 4
    assert not any(faulted(mesh, pod) for pod in pods)
    applied = mesh.cli("apply", "--canary", "25%", "-f", FAULT).stdout
    assert "canary.canarymesh.io/details-config" in applied

    wait_state(mesh, lambda s: s.verified_at is not None, 60)
    split = mesh.api().config_canary_state("default", "details-config")
    on_canary = [pod for pod in pods if faulted(mesh, pod)]
    # One of four productpage sidecars runs the fault; the other three do not.
    assert split.percent == 25 and not split.applied
    assert len(split.canary_pods) == 1 and len(on_canary) == 1, (split, on_canary)
    assert on_canary[0] in split.canary_pods[0]

    state = wait_state(mesh, lambda s: s.phase in (Phase.SUCCEEDED, Phase.FAILED), 120)
    assert state.phase is Phase.FAILED, state.message
    assert "canary errors" in state.message and "stable 0.00%" in state.message
    # It never went past its first share (steps: 25%, its analysis, 50%, ...)...
    assert max(h.step for h in state.history) <= 1, state.history
    # ...and after the rollback no sidecar has the fault, and every page has its details.
    after = mesh.api().config_canary_state("default", "details-config")
    assert not after.applied and not after.canary_pods
    deadline = time.monotonic() + 10
    while any(faulted(mesh, pod) for pod in pods):
        assert time.monotonic() < deadline, "a sidecar kept the fault after the rollback"
        time.sleep(0.5)
    pages = [mesh.page() for _ in range(20)]
    assert not any("Error fetching product details" in page for page in pages)

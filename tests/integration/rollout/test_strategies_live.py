"""The strategies on a real local mesh, seen from the user's side through the ingress gateway:
A/B + weights (jason reaches the canary during the ramp), blue-green (no live traffic to the
canary during its analysis, then the switch), mirror (copies reach the canary, users never see
it), session affinity (a user's cookie holds them on the canary). One mesh for the module."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canarymesh.cli.demo import DEMO_REVIEWS
from canarymesh.ports import state_of
from canarymesh.ports.load import LoadGenerator
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.runtime.local.rollout_store import RolloutStore
from tests.integration.mesh.conftest import LocalMesh, start_mesh

pytestmark = pytest.mark.integration

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
RAMP = """
apiVersion: canarymesh.io/v1alpha1
kind: Canary
metadata: {name: NAME, namespace: default}
spec:
  target: {host: HOST, virtualService: VS, stableSubset: STABLE, canarySubset: CANARY}
  strategy:
    canary:
      steps: [{setWeight: WEIGHT}, {pause: {}}]
      MATCH
    AFFINITY
  analysis: {interval: 5s}
"""


def ramp(**values: str) -> str:
    text = RAMP
    for key, value in values.items():
        text = text.replace(key, value)
    return text.replace("MATCH", "").replace("AFFINITY", "")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = start_mesh(tmp_path_factory.mktemp("strategies") / "state")
    try:
        mesh.cli("apply", "-f", "bookinfo/platform/kube/bookinfo.yaml", "-f",
                 "bookinfo/networking/destination-rule-all.yaml", "-f",
                 "bookinfo/networking/virtual-service-all-v1.yaml", "-f",
                 "bookinfo/networking/bookinfo-gateway.yaml", "--wait")  # fmt: skip
        yield mesh
    finally:
        mesh.down()


def get(mesh: LocalMesh, path: str = "/productpage", cookie: str = "") -> tuple[str, str]:
    """The page and the Set-Cookie header of one GET through the ingress."""
    request = urllib.request.Request(mesh.ingress + path, headers={"Cookie": cookie})
    with _OPENER.open(request, timeout=10) as response:
        return response.read().decode(), response.headers.get("Set-Cookie") or ""


def login(mesh: LocalMesh, user: str) -> str:
    body = urllib.parse.urlencode({"username": user, "passwd": "x"}).encode()
    request = urllib.request.Request(mesh.ingress + "/login", data=body)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    try:
        opener.open(request, timeout=10)
    except urllib.error.HTTPError as answer:  # the 302 back to /productpage
        return str(answer.headers["Set-Cookie"]).split(";")[0]
    raise AssertionError("login did not redirect")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def start(mesh: LocalMesh, tmp: Path, text: str) -> None:
    (tmp / "canary.yaml").write_text(text)
    mesh.cli("rollout", "start", "-f", str(tmp / "canary.yaml"))


def wait_state(mesh: LocalMesh, key: str, done: Any, timeout: float = 60.0) -> CanaryState:
    deadline, state = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        state = state_of(RolloutStore(mesh.state_dir).load(key))
        if state is not None and done(state):
            return state
        time.sleep(0.3)
    raise AssertionError(f"{key}: not reached in {timeout}s; last: {state}")


def ended(state: CanaryState) -> bool:
    return state.phase in (Phase.SUCCEEDED, Phase.FAILED)


def red(page: str) -> bool:
    """reviews v3's red stars (v2's are black, v1 has none)."""
    return "text-red-500" in page


def test_ab_match_reaches_the_canary_with_the_weight_ramp_then_promote(
    mesh: LocalMesh, tmp_path: Path
) -> None:
    match = "match: [{headers: {end-user: {exact: jason}}}]"
    text = ramp(NAME="reviews", HOST="reviews", VS="reviews", STABLE="v1", CANARY="v3",
                WEIGHT="10", MATCH=match)  # fmt: skip
    start(mesh, tmp_path, text)
    wait_state(mesh, "default/reviews", lambda s: s.phase is Phase.PAUSED)
    jason = login(mesh, "jason")
    assert all(red(get(mesh, cookie=jason)[0]) for _ in range(10))
    anonymous = sum(red(get(mesh)[0]) for _ in range(30))
    assert anonymous < 15, f"{anonymous}/30 anonymous pages on v3 at 10%"
    mesh.cli("rollout", "promote", "reviews")
    state = wait_state(mesh, "default/reviews", ended)
    assert state.phase is Phase.SUCCEEDED
    assert any(h.reason.startswith("promoted by user at step 2 of 2") for h in state.history)
    assert all(red(get(mesh)[0]) for _ in range(5))


def test_blue_green_sends_no_live_traffic_during_analysis(mesh: LocalMesh, tmp_path: Path) -> None:
    text = DEMO_REVIEWS.replace(
        "canary:\n      steps:\n        - setWeight: 20\n        - analysis: {duration: 10s}\n"
        "        - setWeight: 50\n        - analysis: {duration: 10s}",
        "blueGreen:\n      analysisDuration: 6s\n"
        "      match: [{headers: {end-user: {exact: jason}}}]",
    ).replace("minRequests: 50", "minRequests: 20")
    assert "blueGreen" in text
    jason = login(mesh, "jason")
    tester = LoadGenerator(f"{mesh.ingress}/productpage", 20.0, 120.0, {"Cookie": jason}).start()
    users = LoadGenerator(f"{mesh.ingress}/productpage", 20.0, 120.0).start()
    try:
        start(mesh, tmp_path, text)
        wait_state(
            mesh, "default/reviews", lambda s: s.phase is Phase.PROGRESSING and s.verified_at
        )
        during = [red(get(mesh)[0]) for _ in range(20)]
        assert not any(during), "a user without the match saw the canary during the analysis"
        state = wait_state(mesh, "default/reviews", ended, 90)
    finally:
        tester.stop(), users.stop()
    assert state.phase is Phase.SUCCEEDED, state.message
    assert all(red(get(mesh)[0]) for _ in range(5))


def prometheus_count(mesh: LocalMesh, version: str) -> float:
    url = str(mesh.status()["prometheus_url"])
    query = urllib.parse.urlencode({"query": "sum(istio_requests_total{reporter=\"destination\","
                                    f"destination_workload=\"reviews-{version}\"}})"})  # fmt: skip
    with _OPENER.open(f"{url}/api/v1/query?{query}", timeout=5) as response:
        result = json.loads(response.read())["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def test_mirror_copies_reach_the_canary_users_never_see_it(mesh: LocalMesh, tmp_path: Path) -> None:
    text = ramp(NAME="reviews", HOST="reviews", VS="reviews", STABLE="v3", CANARY="v2",
                WEIGHT="0").replace(
        "canary:\n      steps: [{setWeight: 0}, {pause: {}}]",
        "mirror: {percentage: 100, analysisDuration: 1h}",
    )  # fmt: skip
    start(mesh, tmp_path, text)
    wait_state(mesh, "default/reviews", lambda s: s.weights.mirror == 100 and s.verified_at)
    before = prometheus_count(mesh, "v2")
    pages = [get(mesh)[0] for _ in range(30)]
    assert all(red(p) for p in pages), "a user saw the mirrored canary (v2, black stars)"
    time.sleep(4)  # two scrapes
    assert prometheus_count(mesh, "v2") - before >= 20
    mesh.cli("rollout", "abort", "reviews")
    wait_state(mesh, "default/reviews", ended)


AFFINITY_SETUP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: productpage-v2, namespace: default, labels: {app: productpage, version: v2}}
spec:
  replicas: 1
  selector: {matchLabels: {app: productpage, version: v2}}
  template:
    metadata: {labels: {app: productpage, version: v2}}
    spec:
      serviceAccountName: bookinfo-productpage
      containers:
        - name: productpage
          image: docker.io/istio/examples-bookinfo-productpage-v1:1.20.3
          ports: [{containerPort: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: productpage, namespace: default}
spec:
  host: productpage
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"""


def test_session_affinity_holds_a_user_on_the_canary(mesh: LocalMesh, tmp_path: Path) -> None:
    mesh.cli("apply", "-f", "-", "--wait", stdin=AFFINITY_SETUP)
    affinity = "sessionAffinity: {cookieName: canary-user, maxAge: 1h}"
    text = ramp(NAME="productpage", HOST="productpage", VS="bookinfo", STABLE="v1",
                CANARY="v2", WEIGHT="50", AFFINITY=affinity)  # fmt: skip
    start(mesh, tmp_path, text)
    wait_state(mesh, "default/productpage", lambda s: s.phase is Phase.PAUSED)
    fresh = [get(mesh)[1] for _ in range(30)]
    on_canary = [c for c in fresh if c.startswith("canary-user=")]
    assert 0 < len(on_canary) < 30, f"{len(on_canary)}/30 fresh users on the canary at 50%"
    cookie = on_canary[0].split(";")[0]
    held = [get(mesh, cookie=cookie)[1] for _ in range(20)]
    assert all(c.startswith("canary-user=v2") for c in held)  # the canary subset
    mesh.cli("rollout", "abort", "productpage")
    wait_state(mesh, "default/productpage", ended)
    assert not any(get(mesh, cookie=cookie)[1] for _ in range(5))

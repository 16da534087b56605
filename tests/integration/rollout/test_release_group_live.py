"""Release groups on a real local mesh (Envoys, Prometheus, MariaDB, the controller process):
one Canary releases reviews v3 with a new ratings, 40 requests/s through the ingress. A healthy
group is promoted with both services together, and the sessions in the slice saw the new
reviews *and* the new ratings (never one without the other); a group whose downstream ratings
is bad (the v-faulty image deployed as ratings v2) is rolled back whole, the decision naming the
ratings member, and every VirtualService is left as the user wrote it."""

from __future__ import annotations

import datetime
import json
import time
import urllib.parse
import urllib.request
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

# A mesh with MariaDB and two rollouts of about 40 s each: more than the default 120 s.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

KUBE, NETWORKING = "bookinfo/platform/kube", "bookinfo/networking"
FILES = (
    f"{KUBE}/bookinfo.yaml",
    f"{KUBE}/bookinfo-mysql.yaml",
    f"{KUBE}/bookinfo-ratings-v2-mysql.yaml",
    f"{NETWORKING}/destination-rule-all.yaml",
    f"{NETWORKING}/bookinfo-gateway.yaml",
)
# The bad "ratings v2": the catalog's faulty image (503 on half of its answers) as version v2.
BAD_RATINGS_V2 = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: ratings-v2, namespace: default, labels: {app: ratings, version: v2}}
spec:
  replicas: 1
  selector: {matchLabels: {app: ratings, version: v2}}
  template:
    metadata: {labels: {app: ratings, version: v2}}
    spec:
      serviceAccountName: bookinfo-ratings
      containers:
        - name: ratings
          image: docker.io/istio/examples-bookinfo-ratings-v-faulty:1.20.3
          ports: [{containerPort: 9080}]
"""
GROUP = """
apiVersion: canarymesh.io/v1alpha1
kind: Canary
metadata: {name: reviews-ratings, namespace: default}
spec:
  target: {host: productpage, virtualService: bookinfo}
  group:
    members:
      - {host: reviews, virtualService: reviews, stableSubset: v2, canarySubset: v3}
      - {host: ratings, virtualService: ratings, stableSubset: v1, canarySubset: RATINGS}
  strategy:
    canary:
      steps:
        - setWeight: 30
        - analysis: {duration: 10s}
        - setWeight: 50
        - analysis: {duration: 10s}
  analysis:
    interval: 5s
    minRequests: 40
    metrics: [{name: request-success-rate}]
  progressDeadline: 2m
"""
KEY = "default/reviews-ratings"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = start_mesh(tmp_path_factory.mktemp("group") / "state")
    load = None
    try:
        args = [a for f in FILES for a in ("-f", f)]
        mesh.cli("apply", *args, "--wait")
        mesh.cli("apply", "-f", "-", "--wait", stdin=BAD_RATINGS_V2)
        users_routes(mesh)  # before any load: every request so far took the users' routes
        load = LoadGenerator(f"{mesh.ingress}/productpage", 40.0, 900.0).start()
        yield mesh
    finally:
        if load is not None:
            load.stop()
        mesh.down()


def users_routes(mesh: LocalMesh) -> None:
    """reviews on v2 (which calls ratings), ratings on v1, productpage through the gateway."""
    mesh.cli("apply", "-f", f"{NETWORKING}/virtual-service-all-v1.yaml",
             "-f", f"{NETWORKING}/bookinfo-gateway.yaml", "--wait")  # fmt: skip
    mesh.cli("apply", "-f", "-", "--wait", stdin=yaml.safe_dump(ROUTE_REVIEWS_V2))


ROUTE_REVIEWS_V2 = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "default"},
    "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews",
                                                                       "subset": "v2"}}]}]},
}  # fmt: skip


def start(mesh: LocalMesh, tmp: Path, ratings: str) -> datetime.datetime:
    """Start the group's rollout; when it started (an earlier rollout's record says earlier)."""
    path = tmp / "group.yaml"
    path.write_text(GROUP.replace("RATINGS", ratings))
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    mesh.cli("rollout", "start", "-f", str(path))
    return since


def wait_state(
    mesh: LocalMesh, since: datetime.datetime, done: Any, timeout: float = 150.0
) -> CanaryState:
    deadline, state = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        state = state_of(RolloutStore(mesh.state_dir).load(KEY))
        if state is not None and state.started_at >= since and done(state):
            return state
        time.sleep(0.3)
    raise AssertionError(f"{KEY}: not reached in {timeout}s; last: {state}")


def final(state: CanaryState) -> bool:
    return state.phase in (Phase.SUCCEEDED, Phase.FAILED)


def http_routes(mesh: LocalMesh, name: str) -> list[dict[str, Any]]:
    found = mesh.api().get("/v1/resources", {"kinds": "virtualservice.networking.istio.io",
                                             "namespace": "default", "name": name})  # fmt: skip
    return list(found["items"][0]["spec"]["http"])  # type: ignore[index]


def edges(mesh: LocalMesh) -> dict[tuple[str, str], float]:
    """Requests ratings served so far, by (caller's version, ratings' version)."""
    query = (
        "sum by (source_version, destination_version) (istio_requests_total{"
        'reporter="destination",destination_service_name="ratings",source_app="reviews"})'
    )
    url = f"{mesh.status()['prometheus_url']}/api/v1/query?" + urllib.parse.urlencode(
        {"query": query}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return {
        (r["metric"]["source_version"], r["metric"]["destination_version"]): float(r["value"][1])
        for r in result
    }


def test_a_healthy_group_is_promoted_with_both_services_together(
    mesh: LocalMesh, tmp_path: Path
) -> None:
    users_routes(mesh)
    time.sleep(3)  # every request so far scraped
    before = edges(mesh)
    since = start(mesh, tmp_path, "v2-mysql")
    opened = wait_state(
        mesh, since, lambda s: s.weights.canary > 0 and s.verified_at or final(s), 60
    )
    assert opened.phase is Phase.PROGRESSING, opened.message
    # A session in the slice sees the new reviews on every page.
    session = _session_in_slice(mesh)
    for _ in range(5):
        assert "Reviews served by: reviews-v3" in _page(mesh, session)
    state = wait_state(mesh, since, final)
    assert state.phase is Phase.SUCCEEDED, state.message
    assert state.message == (
        "promoted together: reviews v3, ratings v2-mysql are the stable subsets"
    )
    judged = {metric for metric, _ in state.tests}
    assert judged == {"ingress/request-success-rate", "reviews/request-success-rate",
                      "ratings/request-success-rate"}  # fmt: skip
    for metric, test in state.tests:  # every part saw both sides: the ingress counted the slice
        assert test.evidence.canary_requests > 0 and test.evidence.stable_requests > 0, metric
    # Both promoted in the routes both runtimes write: each on its new version alone.
    assert http_routes(mesh, "reviews") == [{"route": [{"destination": {"host": "reviews",
                                                                        "subset": "v3"},
                                                        "weight": 100}]}]  # fmt: skip
    assert http_routes(mesh, "ratings") == [{"route": [{"destination": {"host": "ratings",
                                                                        "subset": "v2-mysql"},
                                                        "weight": 100}]}]  # fmt: skip
    assert not any(
        r.get("name", "").startswith("canarymesh-") for r in http_routes(mesh, "bookinfo")
    )
    # The same sessions saw both new versions: reviews v3 only ever called ratings v2-mysql
    # and reviews v2 only ever ratings v1, at 30% and 50% of the sessions.
    time.sleep(3)  # the last requests scraped
    after = edges(mesh)
    grew = {edge: after[edge] - before.get(edge, 0.0) for edge in after}
    assert grew.get(("v3", "v2-mysql"), 0) > 50 and grew.get(("v2", "v1"), 0) > 50, grew
    assert grew.get(("v3", "v1"), 0) < 1 and grew.get(("v2", "v2-mysql"), 0) < 1, grew


def test_a_bad_downstream_member_rolls_both_services_back(mesh: LocalMesh, tmp_path: Path) -> None:
    users_routes(mesh)
    written = {name: http_routes(mesh, name) for name in ("bookinfo", "reviews", "ratings")}
    since = start(mesh, tmp_path, "v2")
    state = wait_state(mesh, since, final)
    assert state.phase is Phase.FAILED, state.message
    # Decided by the ratings member: the page hides ratings' errors (no stars), so the ingress
    # and reviews alone would not have seen them.
    assert state.message.startswith(
        "rolled back: release group member ratings: request-success-rate canary errors"
    ), state.message
    ratings = state.test_of("ratings/request-success-rate")
    assert ratings is not None and ratings.evidence.canary_bad > 0
    rollback = [h for h in state.history if h.phase is Phase.ROLLING_BACK][0]
    assert (state.history[-1].at - rollback.at).total_seconds() < 5
    # Both members back on their stable subsets, the slice closed at the ingress.
    assert http_routes(mesh, "bookinfo") == written["bookinfo"]
    for name, stable, canary in (("reviews", "v2", "v3"), ("ratings", "v1", "v2")):
        routes = http_routes(mesh, name)
        assert [r.get("name") for r in routes] == [None], routes
        split = {d["destination"]["subset"]: d.get("weight") for d in routes[0]["route"]}
        assert split == {stable: 100, canary: 0}, (name, split)
    history = mesh.cli("rollout", "history", "reviews-ratings").stdout
    assert "release group member ratings" in history
    # New sessions are no longer put in the slice: no cookie, no new reviews.
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
        f"{mesh.ingress}/productpage", timeout=10
    ) as response:
        assert response.headers.get("Set-Cookie") is None
        assert "Reviews served by: reviews-v3" not in response.read().decode()


def _session_in_slice(mesh: LocalMesh) -> str:
    """A cookie the ingress gave a new session it put in the slice (a few tries at 30%)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(60):
        with opener.open(f"{mesh.ingress}/productpage", timeout=10) as response:
            cookie = response.headers.get("Set-Cookie")
        if cookie and cookie.startswith("canarymesh-group-reviews-ratings="):
            return str(cookie.split(";", 1)[0])
    raise AssertionError("no session was put in the slice in 60 tries")


def _page(mesh: LocalMesh, cookie: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"{mesh.ingress}/productpage", headers={"Cookie": cookie})
    with opener.open(request, timeout=10) as response:
        return str(response.read().decode())

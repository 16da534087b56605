"""The cluster runtime's adapters (router, state store, lease, metrics) through the real
``kubernetes`` client against the fake API server of :mod:`.fake_apiserver` on 127.0.0.1, and
the metrics source against a loopback Prometheus stand-in. No internals are patched.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.api.canary import Canary
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.runtime.kube.client import KubeApi
from canarymesh.runtime.kube.lease import LeaderElector
from canarymesh.runtime.kube.patches import FIELD_MANAGER
from canarymesh.runtime.kube.rollout_store import KubeStateStore
from canarymesh.runtime.kube.router import KubeRouter
from tests.unit.kube.fake_apiserver import FakeApiServer

REPO = Path(__file__).resolve().parents[3]
T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
ISTIO = "networking.istio.io"


def canary_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        (REPO / "canary-manifests/canary-reviews.yaml").read_text()
    )
    return doc


def seed_bookinfo(server: FakeApiServer) -> Canary:
    for path in ("virtual-service.yaml", "destination-rule.yaml"):
        doc = yaml.safe_load((REPO / "canary-manifests" / path).read_text())
        plural = "virtualservices" if doc["kind"] == "VirtualService" else "destinationrules"
        server.put(ISTIO, plural, doc)
    doc = canary_doc()
    server.put("canarymesh.io", "canaries", doc)
    return Canary.model_validate(doc["spec"])


def test_router_applies_only_the_managed_list_as_its_field_manager(
    server: FakeApiServer, api: KubeApi
) -> None:
    canary = seed_bookinfo(server)
    router = KubeRouter(api, "webapps", "reviews")
    router.reconcile(canary, Weights(0, "v1"))
    router.set_weights(canary, Weights(25, "v1", match=True))

    manager, plural, status_only, body = server.applies[-1]
    assert (manager, plural, status_only) == (FIELD_MANAGER, "virtualservices", False)
    assert set(body["spec"]) == {"http"}
    live = server.object(ISTIO, "virtualservices", "webapps", "reviews")
    assert live["spec"]["hosts"] == ["reviews"]  # not ours, untouched
    assert router.get_weights(canary) == Weights(25, "v1", match=True)
    assert router.verify_weights(canary, Weights(25, "v1", match=True))
    assert not router.verify_weights(canary, Weights(50, "v1", match=True))

    router.finalize(canary, "v3")
    assert router.get_weights(canary) == Weights(0, "v3")
    routes = server.object(ISTIO, "virtualservices", "webapps", "reviews")["spec"]["http"]
    assert [r.get("name") for r in routes] == [None]
    assert routes[0]["route"] == [
        {"destination": {"host": "reviews", "subset": "v3"}, "weight": 100}
    ]


def test_router_refuses_a_subset_missing_from_the_destination_rule(
    server: FakeApiServer, api: KubeApi
) -> None:
    seed_bookinfo(server)
    doc = canary_doc()
    doc["spec"]["target"]["canarySubset"] = "v9"
    canary = Canary.model_validate(doc["spec"])
    with pytest.raises(
        ConfigError,
        match=r"no DestinationRule of 'reviews' in webapps defines the subsets \['v9'\]",
    ):
        KubeRouter(api, "webapps", "reviews").reconcile(canary, Weights(0, "v1"))
    assert server.applies == []  # nothing written


def test_router_finds_an_httproute_when_there_is_no_virtual_service(
    server: FakeApiServer, api: KubeApi
) -> None:
    route = yaml.safe_load((REPO / "tests/golden/routes/httproute-weights.in.yaml").read_text())
    server.put("gateway.networking.k8s.io", "httproutes", route["object"])
    canary = Canary.model_validate(route["canary"])
    router = KubeRouter(api, "webapps", "reviews")
    router.set_weights(canary, Weights(10, "v1"))
    assert server.applies[-1][1] == "httproutes"
    assert router.get_weights(canary) == Weights(10, "v1")


def test_router_names_the_missing_target(server: FakeApiServer, api: KubeApi) -> None:
    canary = Canary.model_validate(canary_doc()["spec"])
    with pytest.raises(ConfigError, match="names neither a VirtualService nor an HTTPRoute"):
        KubeRouter(api, "webapps", "reviews").get_weights(canary)


def record(state: CanaryState) -> dict[str, Any]:
    return {"rolloutId": "r1", "namespace": "webapps", "state": state.to_dict()}


def test_store_writes_status_and_one_event_per_decision(
    server: FakeApiServer, api: KubeApi
) -> None:
    seed_bookinfo(server)
    store = KubeStateStore(api, "controller-0")
    assert store.load("webapps/reviews") is None
    state = CanaryState.initial("reviews", "v1", T0).with_phase(
        Phase.PROGRESSING, "canary 10% / stable 90%: waiting for the proxies", T0
    )
    store.save("webapps/reviews", record(state))
    store.save("webapps/reviews", record(state))  # a retry: no second Event
    later = state.with_weights(Weights(10, "v1")).with_phase(
        Phase.ROLLING_BACK,
        "request-success-rate 91.0% < 99%: rolling back",
        T0 + datetime.timedelta(seconds=30),
    )
    store.save("webapps/reviews", record(later))

    status = server.object("canarymesh.io", "canaries", "webapps", "reviews")["status"]
    assert status["phase"] == "RollingBack"
    assert status["canaryWeight"] == 10
    assert status["lastDecision"] == {
        "reason": "request-success-rate 91.0% < 99%: rolling back",
        "at": "2026-01-01T12:00:30Z",
    }
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Progressing": "False",
        "Promoted": "False",
        "WeightsVerified": "False",
    }
    events = [o for (g, p, _, _), o in server.objects.items() if p == "events"]
    assert [(e["type"], e["reason"]) for e in events] == [
        ("Normal", "Progressing"),
        ("Warning", "RollingBack"),
    ]
    assert events[1]["regarding"]["uid"] == "uid-reviews"
    # A new leader resumes from the status alone.
    loaded = KubeStateStore(api, "controller-1").load("webapps/reviews")
    assert loaded is not None and CanaryState.from_dict(dict(loaded["state"])) == later


def test_only_one_of_two_replicas_leads(server: FakeApiServer, api: KubeApi) -> None:
    first = LeaderElector(api, "canarymesh-system", "canarymesh-controller", "pod-a", duration=15)
    second = LeaderElector(api, "canarymesh-system", "canarymesh-controller", "pod-b", duration=15)
    assert first.try_acquire(T0) is True
    assert second.try_acquire(T0 + datetime.timedelta(seconds=1)) is False
    assert first.try_acquire(T0 + datetime.timedelta(seconds=10)) is True  # renewed
    assert second.try_acquire(T0 + datetime.timedelta(seconds=20)) is False  # renewal held
    # The leader stops renewing (killed): after the lease duration the other takes over.
    assert second.try_acquire(T0 + datetime.timedelta(seconds=26)) is True
    assert first.is_leader(T0 + datetime.timedelta(seconds=26)) is False
    lease = server.object(
        "coordination.k8s.io", "leases", "canarymesh-system", "canarymesh-controller"
    )
    assert lease["spec"]["holderIdentity"] == "pod-b"
    assert lease["spec"]["leaseTransitions"] == 1


def test_a_stale_lease_write_loses_the_race(server: FakeApiServer, api: KubeApi) -> None:
    """Both replicas read an expired Lease; only the first write at that resourceVersion wins."""
    LeaderElector(api, "ns", "lease", "old", duration=5).try_acquire(T0)
    read = api.get_lease("ns", "lease")
    assert read is not None
    winner = LeaderElector(api, "ns", "lease", "pod-a", duration=5)
    assert winner.try_acquire(T0 + datetime.timedelta(seconds=30)) is True
    loser_body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                  "metadata": {"name": "lease", "namespace": "ns",
                               "resourceVersion": read["metadata"]["resourceVersion"]},
                  "spec": {"holderIdentity": "pod-b"}}  # fmt: skip
    from canarymesh.errors import TemporaryError

    with pytest.raises(TemporaryError, match="conflict"):
        api.write_lease("ns", loser_body, create=False)
    lease = server.object("coordination.k8s.io", "leases", "ns", "lease")
    assert lease["spec"]["holderIdentity"] == "pod-a"


def test_the_kube_router_keeps_the_port_contract(server: FakeApiServer, api: KubeApi) -> None:
    from tests.unit.rollout.port_contracts import check_router

    canary = seed_bookinfo(server)
    check_router(KubeRouter(api, "webapps", "reviews"), canary, settle=lambda: None)

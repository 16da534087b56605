"""The cluster's release group router (:class:`KubeGroupRouter`) through the real
``kubernetes`` client and the fake API server: each golden case's live VirtualServices become
exactly the group writer's golden objects (the files the local router is held to), applied in
the writer's order, each by a server-side apply of its identity and ``spec.http``; it keeps the
port contract; missing subsets fail the first step naming the member; and the operator builds
it (with each member's version labels) for a Canary with ``spec.group``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canarymesh.controller.kube import KubeCanaries, KubeSettings, wiring_for
from canarymesh.controller.metrics import ControllerMetrics
from canarymesh.controller.wiring import CanaryItem
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.runtime.kube.client import KubeApi
from canarymesh.runtime.kube.group_router import KubeGroupRouter
from canarymesh.runtime.kube.patches import FIELD_MANAGER, virtual_service_body
from canarymesh.runtime.kube.watch import CanaryWatch
from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.unit.rollout.port_contracts import check_router
from tests.unit.routing.group_golden import (
    CASES,
    canary_of,
    check,
    load_case,
    weights_of,
    written,
)

ISTIO, VS, DR = "networking.istio.io", "virtualservices", "destinationrules"
RULES = [
    {"metadata": {"name": host, "namespace": "default"},
     "spec": {"host": host, "subsets": [{"name": s, "labels": {"version": v}} for s, v in subsets]}}
    for host, subsets in (("reviews", [("v2", "v2"), ("v3", "v3")]),
                          ("ratings", [("v1", "v1"), ("v2", "v2-db")]))
]  # fmt: skip


def seed(server: FakeApiServer, case: str) -> dict[str, Any]:
    data = load_case(case)
    for obj in data["objects"]:
        server.put(ISTIO, VS, copy.deepcopy(obj))
    for rule in RULES:
        server.put(ISTIO, DR, copy.deepcopy(rule))
    return data


def _stored(server: FakeApiServer, name: str) -> dict[str, Any]:
    out = copy.deepcopy(server.object(ISTIO, VS, "default", name))
    for key in ("uid", "resourceVersion"):
        out["metadata"].pop(key, None)
    return out


@pytest.mark.parametrize("case", CASES)
def test_the_kube_group_router_writes_the_golden_objects(
    case: str, server: FakeApiServer, api: KubeApi
) -> None:
    data = seed(server, case)
    router = KubeGroupRouter(api, "default", data["name"])
    router.set_weights(canary_of(data), weights_of(data))
    want = written(data)
    applied = server.applies[-len(want) :]
    assert [(m, p, s) for m, p, s, _ in applied] == [(FIELD_MANAGER, VS, False)] * len(want)
    assert [body for *_, body in applied] == [virtual_service_body(o) for o in want]
    check(case, [_stored(server, o["metadata"]["name"]) for o in want], "kube")


def test_the_kube_group_router_keeps_the_port_contract(server: FakeApiServer, api: KubeApi) -> None:
    data = seed(server, "slice-0")
    check_router(KubeGroupRouter(api, "default", data["name"]), canary_of(data), lambda: None)


def test_a_member_subset_no_rule_defines_fails_the_first_step_naming_it(
    server: FakeApiServer, api: KubeApi
) -> None:
    data = seed(server, "slice-0")
    data["canary"]["group"]["members"][1]["canarySubset"] = "v9"
    router = KubeGroupRouter(api, "default", data["name"])
    with pytest.raises(ConfigError, match=r"spec.group.members\[1\]: no DestinationRule of "
                       r"'ratings' in default defines the subsets \['v9'\]"):  # fmt: skip
        router.reconcile(canary_of(data), Weights(0, "stable"))
    assert server.applies == []  # nothing half applied


def test_the_operator_routes_a_group_through_the_group_router_with_member_versions(
    server: FakeApiServer, api: KubeApi
) -> None:
    data = seed(server, "slice-0")
    meta = {"name": data["name"], "namespace": "default"}
    doc = {"apiVersion": "canarymesh.io/v1alpha1", "kind": "Canary", "metadata": meta}
    server.put("canarymesh.io", "canaries", {**doc, "spec": data["canary"]})
    watch = CanaryWatch(api, timeout_seconds=2).start()
    try:
        assert watch.synced.wait(5)
        settings = KubeSettings(istiod_url=None)
        wiring, canaries = wiring_for(api, settings, watch, ControllerMetrics())
        (item,) = canaries.list()
    finally:
        watch.stop()
    assert isinstance(canaries, KubeCanaries)
    assert isinstance(wiring.router_for(item), KubeGroupRouter)
    assert item.member_version("ratings", "v2") == "v2-db"
    assert item.member_version("reviews.default.svc.cluster.local", "v3") == "v3"
    assert CanaryItem("default", "x", "1", item.canary).member_version("ratings", "v2") == "v2"

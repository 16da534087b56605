"""The cluster's router against the route writer's golden files (``tests/golden/routes/``, the
same files the local mesh's router is held to): through the real ``kubernetes`` client and the
fake API server, each case's live object is rewritten by ``KubeRouter`` into exactly the
golden managed object, by one server-side apply of its identity and managed list."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from canarymesh.runtime.kube.client import KubeApi
from canarymesh.runtime.kube.patches import (
    FIELD_MANAGER,
    http_route_body,
    virtual_service_body,
)
from canarymesh.runtime.kube.router import KubeRouter
from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.unit.routing.golden import (
    CASES,
    canary_of,
    check,
    expected,
    load_case,
    name_of,
    weights_of,
)

PLACES = {
    "VirtualService": ("networking.istio.io", "virtualservices", virtual_service_body),
    "HTTPRoute": ("gateway.networking.k8s.io", "httproutes", http_route_body),
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def api(server: FakeApiServer) -> Iterator[KubeApi]:
    configuration = client.Configuration(host=server.url)
    with client.ApiClient(configuration) as api_client:
        yield KubeApi(api_client)


def _without_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for key in ("uid", "resourceVersion"):
        out["metadata"].pop(key, None)
    return out


@pytest.mark.parametrize("case", CASES)
def test_the_kube_router_writes_the_golden_object(
    case: str, server: FakeApiServer, api: KubeApi
) -> None:
    data = load_case(case)
    live, canary, weights = data["object"], canary_of(data), weights_of(data)
    group, plural, body_of = PLACES[live["kind"]]
    namespace, name = live["metadata"]["namespace"], live["metadata"]["name"]
    server.put(group, plural, copy.deepcopy(live))
    router = KubeRouter(api, namespace, name_of(data))
    if data["op"] == "finalize":
        router.finalize(canary, weights.stable_subset)
    else:
        router.set_weights(canary, weights)

    manager, applied_plural, status_only, body = server.applies[-1]
    assert (manager, applied_plural, status_only) == (FIELD_MANAGER, plural, False)
    assert body == body_of(expected(case))  # identity and the managed list only
    check(case, _without_server_fields(server.object(group, plural, namespace, name)), "kube")

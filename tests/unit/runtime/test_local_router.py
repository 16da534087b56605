"""The local mesh's router (:class:`~canarymesh.runtime.local.router.LocalRouter`) through the
control plane's real API and store: it writes exactly the route writer's golden objects (the
files the cluster's router is held to), keeps the port contract every router keeps, and says
the weights are verified only once every connected proxy ACKed the push that carries them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from canarymesh.api.canary import Canary
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.runtime.local.api_models import VIRTUAL_SERVICE_KIND, DocumentText
from canarymesh.runtime.local.router import LocalRouter
from tests.unit.rollout.port_contracts import check_router
from tests.unit.routing.golden import (
    canary_of,
    cases_of,
    check,
    load_case,
    name_of,
    weights_of,
)
from tests.unit.runtime.control_plane import LocalControlPlane

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[LocalControlPlane]:
    with LocalControlPlane(tmp_path) as served:
        yield served


def apply(plane: LocalControlPlane, *documents: dict[str, object]) -> None:
    text = yaml.safe_dump_all(documents, sort_keys=False)
    plane.api.apply([DocumentText(source="test", text=text)])


@pytest.mark.parametrize("case", cases_of("VirtualService"))
def test_the_local_router_writes_the_golden_object(case: str, plane: LocalControlPlane) -> None:
    data = load_case(case)
    live, canary, weights = data["object"], canary_of(data), weights_of(data)
    apply(plane, live)
    namespace, name = live["metadata"]["namespace"], live["metadata"]["name"]
    router = LocalRouter(plane.api, namespace, name_of(data))
    if data["op"] == "finalize":
        router.finalize(canary, weights.stable_subset)
    else:
        router.set_weights(canary, weights)
    (stored,) = plane.api.resources([VIRTUAL_SERVICE_KIND], namespace, name)
    check(case, stored, "local router")


def bookinfo(plane: LocalControlPlane) -> Canary:
    manifests = REPO / "canary-manifests"
    for path in ("virtual-service.yaml", "destination-rule.yaml"):
        apply(plane, *yaml.safe_load_all((manifests / path).read_text()))
    doc = yaml.safe_load((manifests / "canary-reviews.yaml").read_text())
    return Canary.model_validate(doc["spec"])


def test_the_local_router_keeps_the_port_contract(plane: LocalControlPlane) -> None:
    canary = bookinfo(plane)
    plane.reconciler.add_proxy("reviews-v1-1", "webapps")
    check_router(LocalRouter(plane.api, "webapps", "reviews"), canary, settle=plane.settle)


def test_weights_are_verified_only_once_every_proxy_acked(plane: LocalControlPlane) -> None:
    canary = bookinfo(plane)
    plane.reconciler.add_proxy("productpage-v1-1", "webapps")
    router = LocalRouter(plane.api, "webapps", "reviews")
    router.set_weights(canary, Weights(20, "v1"))
    assert router.get_weights(canary) == Weights(20, "v1")
    assert not router.verify_weights(canary, Weights(20, "v1"))  # pushed, not ACKed yet
    plane.settle()
    assert router.verify_weights(canary, Weights(20, "v1"))
    assert not router.verify_weights(canary, Weights(30, "v1"))  # the store holds 20


def test_a_virtual_service_not_applied_is_named(plane: LocalControlPlane) -> None:
    doc = yaml.safe_load((REPO / "canary-manifests/canary-reviews.yaml").read_text())
    canary = Canary.model_validate(doc["spec"])
    with pytest.raises(ConfigError, match="VirtualService webapps/reviews is not applied"):
        LocalRouter(plane.api, "webapps", "reviews").get_weights(canary)

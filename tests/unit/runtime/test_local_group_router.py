"""The local mesh's release group router (:class:`LocalGroupRouter`) through the control
plane's real API and store: it writes exactly the group writer's golden VirtualServices (the
files the cluster's router is held to), keeps the port contract every router keeps, and says
the slice is verified only once every connected proxy ACKed the push that carries it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.runtime.local.api_models import VIRTUAL_SERVICE_KIND, DocumentText
from canarymesh.runtime.local.group_router import LocalGroupRouter
from tests.unit.rollout.port_contracts import check_router
from tests.unit.routing.group_golden import (
    CASES,
    canary_of,
    check,
    load_case,
    weights_of,
    written,
)
from tests.unit.runtime.control_plane import LocalControlPlane


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[LocalControlPlane]:
    with LocalControlPlane(tmp_path) as served:
        yield served


def apply_case(plane: LocalControlPlane, case: str) -> dict[str, object]:
    data = load_case(case)
    text = yaml.safe_dump_all(data["objects"], sort_keys=False)
    plane.api.apply([DocumentText(source="test", text=text)])
    return data


@pytest.mark.parametrize("case", CASES)
def test_the_local_group_router_writes_the_golden_objects(
    case: str, plane: LocalControlPlane
) -> None:
    data = apply_case(plane, case)
    router = LocalGroupRouter(plane.api, "default", str(data["name"]), stage_wait=0.2)
    router.set_weights(canary_of(data), weights_of(data))
    stored = {
        str(o["metadata"]["name"]): o
        for o in plane.api.resources([VIRTUAL_SERVICE_KIND], "default")
    }
    order = [str(o["metadata"]["name"]) for o in written(data)]
    check(case, [stored[name] for name in order], "local router")


def test_the_local_group_router_keeps_the_port_contract(plane: LocalControlPlane) -> None:
    data = apply_case(plane, "slice-0")
    plane.reconciler.add_proxy("reviews-v2-1", "default")
    router = LocalGroupRouter(plane.api, "default", str(data["name"]), stage_wait=0.2)
    check_router(router, canary_of(data), settle=plane.settle)


def test_the_slice_is_verified_only_once_every_proxy_acked(plane: LocalControlPlane) -> None:
    data = apply_case(plane, "slice-0")
    plane.reconciler.add_proxy("productpage-v1-1", "default")
    canary = canary_of(data)
    router = LocalGroupRouter(plane.api, "default", str(data["name"]), stage_wait=0.2)
    router.set_weights(canary, Weights(20, "stable"))
    assert router.get_weights(canary) == Weights(20, "stable")
    assert not router.verify_weights(canary, Weights(20, "stable"))  # pushed, not ACKed yet
    plane.settle()
    assert router.verify_weights(canary, Weights(20, "stable"))
    assert not router.verify_weights(canary, Weights(30, "stable"))


def test_a_member_virtual_service_not_applied_is_named_with_its_field(
    plane: LocalControlPlane,
) -> None:
    data = load_case("slice-0")
    objects = [o for o in data["objects"] if o["metadata"]["name"] != "ratings"]
    plane.api.apply([DocumentText(source="t", text=yaml.safe_dump_all(objects))])
    router = LocalGroupRouter(plane.api, "default", "reviews-ratings", stage_wait=0.2)
    with pytest.raises(ConfigError, match=r"spec.group.members\[1\].virtualService names "
                       "VirtualService default/ratings, which is not applied"):  # fmt: skip
        router.get_weights(canary_of(data))


class _Recording(LocalGroupRouter):
    applied: list[list[str]]

    def _apply(self, objects: list[dict[str, Any]]) -> bool:
        changed = super()._apply(objects)
        if changed:
            self.applied.append([str(o["metadata"]["name"]) for o in objects])
        return changed


def test_the_ingress_waits_for_the_proxies_to_take_the_members(plane: LocalControlPlane) -> None:
    data = apply_case(plane, "slice-0")
    plane.reconciler.add_proxy("reviews-v2-1", "default")
    canary = canary_of(data)
    router = _Recording(plane.api, "default", str(data["name"]), stage_wait=0.3)
    router.applied = []
    started = time.monotonic()
    router.set_weights(canary, Weights(20, "stable"))
    # The proxy never ACKed here, so the ingress went only after the bounded wait.
    assert time.monotonic() - started >= 0.3
    assert router.applied == [["reviews", "ratings"], ["bookinfo"]]
    plane.settle()
    router.applied = []
    router.set_weights(canary, Weights(0, "stable"))  # closing: the ingress first
    assert router.applied == [["bookinfo"], ["reviews", "ratings"]]

"""``KubeGroupRouter``: the ``TrafficRouter`` port for a release group (a Canary with
``spec.group``) on a cluster. The shared writer (:mod:`canarymesh.routing.release_group`)
computes the ingress VirtualService and every member's; each is server-side applied (its
``spec.http``, as :mod:`.patches` cuts it) in the writer's order (``group_stages``): members
before the ingress while the slice opens or is promoted, the ingress first while it closes.
Unlike the local router it does not wait for the proxies between the two stages (istiod pushes
in the order it sees changes, usually milliseconds apart), so a few requests may meet a
half-moved group.

``verify_weights`` checks the objects the API server holds; the istiod check of
:class:`~canarymesh.runtime.kube.router.KubeRouter` samples a weight split of one host, which a
group's header routes are not, so it is not used here.
"""

from __future__ import annotations

from typing import Any

from canarymesh.api.canary import Canary, GroupMember
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.release_group import group_objects, group_weights
from canarymesh.runtime.kube.client import DESTINATION_RULE, VIRTUAL_SERVICE, KubeApi, NotFound
from canarymesh.runtime.kube.patches import virtual_service_body

__all__ = ["KubeGroupRouter"]

Members = list[tuple[GroupMember, dict[str, Any]]]


class KubeGroupRouter:
    def __init__(self, api: KubeApi, namespace: str, name: str) -> None:
        self.api, self.namespace, self.name = api, namespace, name

    def reconcile(self, canary: Canary, weights: Weights) -> None:
        self._check_subsets(canary)
        self.set_weights(canary, weights)

    def set_weights(self, canary: Canary, weights: Weights) -> None:
        ingress, members = self._objects(canary)
        for obj in group_objects(ingress, members, canary, self.name, weights):
            self.api.apply(VIRTUAL_SERVICE, virtual_service_body(obj))

    def get_weights(self, canary: Canary) -> Weights:
        ingress, members = self._objects(canary)
        return group_weights(ingress, members, canary, self.name)

    def verify_weights(self, canary: Canary, weights: Weights) -> bool:
        ingress, members = self._objects(canary)
        wanted = group_objects(ingress, members, canary, self.name, weights)
        current = {
            _key(o): o.get("spec", {}).get("http") for o in (ingress, *(v for _, v in members))
        }
        return all(current.get(_key(o)) == o.get("spec", {}).get("http") for o in wanted)

    def finalize(self, canary: Canary, stable_subset: str) -> None:
        self.set_weights(canary, Weights(0, stable_subset))

    def _objects(self, canary: Canary) -> tuple[dict[str, Any], Members]:
        if canary.group is None:
            raise ConfigError(f"Canary {self.namespace}/{self.name} has no spec.group")
        ingress = self._get(canary.target.virtual_service, "spec.target.virtualService")
        members = [
            (m, self._get(m.virtual_service, f"spec.group.members[{i}].virtualService"))
            for i, m in enumerate(canary.group.members)
        ]
        return ingress, members

    def _get(self, name: str, field: str) -> dict[str, Any]:
        try:
            return self.api.get(VIRTUAL_SERVICE, self.namespace, name)
        except NotFound:
            raise ConfigError(
                f"Canary {self.namespace}/{self.name}: {field} names VirtualService "
                f"{self.namespace}/{name}, which does not exist"
            ) from None

    def _check_subsets(self, canary: Canary) -> None:
        """Every member's two subsets are defined, or the first step fails, naming them."""
        assert canary.group is not None
        rules = self.api.list_objects(DESTINATION_RULE, self.namespace)
        for index, member in enumerate(canary.group.members):
            host = member.host.split(".", 1)[0]
            defined: set[str] = set()
            for rule in rules:
                if str(rule.get("spec", {}).get("host", "")).split(".", 1)[0] == host:
                    defined |= {s.get("name") for s in rule["spec"].get("subsets", [])}
            missing = sorted({member.stable_subset, member.canary_subset} - defined)
            if missing:
                raise ConfigError(
                    f"Canary {self.namespace}/{self.name}: spec.group.members[{index}]: no "
                    f"DestinationRule of {host!r} in {self.namespace} defines the subsets "
                    f"{missing}"
                )


def _key(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name"))

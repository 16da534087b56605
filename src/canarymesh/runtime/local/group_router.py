"""``LocalGroupRouter``: the ``TrafficRouter`` port for a release group (a Canary with
``spec.group``) on a local mesh. The shared writer (:mod:`canarymesh.routing.release_group`)
computes the ingress VirtualService and every member's; they go to the control plane in one
apply, so no proxy sees a half-moved group. ``verify_weights`` is true only when every one of
them holds the wanted routes *and* every connected proxy ACKed the latest push.
"""

from __future__ import annotations

from typing import Any

import yaml

from canarymesh.api.canary import Canary, GroupMember
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.release_group import group_objects, group_weights
from canarymesh.runtime.local.api_client import ApiClient
from canarymesh.runtime.local.api_models import VIRTUAL_SERVICE_KIND, DocumentText

__all__ = ["LocalGroupRouter"]

Members = list[tuple[GroupMember, dict[str, Any]]]


class LocalGroupRouter:
    """Moves a release group's session slice for the Canary ``name`` in ``namespace``."""

    def __init__(self, api: ApiClient, namespace: str, name: str) -> None:
        self.api, self.namespace, self.name = api, namespace, name

    def reconcile(self, canary: Canary, weights: Weights) -> None:
        self.set_weights(canary, weights)

    def set_weights(self, canary: Canary, weights: Weights) -> None:
        ingress, members = self._objects(canary)
        self._apply(group_objects(ingress, members, canary, self.name, weights))

    def get_weights(self, canary: Canary) -> Weights:
        ingress, members = self._objects(canary)
        return group_weights(ingress, members, canary, self.name)

    def verify_weights(self, canary: Canary, weights: Weights) -> bool:
        ingress, members = self._objects(canary)
        wanted = group_objects(ingress, members, canary, self.name, weights)
        current = {_key(o): o.get("spec") for o in (ingress, *(vs for _, vs in members))}
        if any(current.get(_key(o)) != o.get("spec") for o in wanted):
            return False
        return all(p.synced for p in self.api.proxy_status() if p.connected)

    def finalize(self, canary: Canary, stable_subset: str) -> None:
        self.set_weights(canary, Weights(0, stable_subset))

    def _objects(self, canary: Canary) -> tuple[dict[str, Any], Members]:
        if canary.group is None:
            raise ConfigError(f"Canary {self.namespace}/{self.name} has no spec.group")
        items = self.api.resources([VIRTUAL_SERVICE_KIND], self.namespace)
        by_name = {
            str(i.get("metadata", {}).get("name")): i
            for i in items
            if i.get("metadata", {}).get("namespace") == self.namespace
        }

        def find(name: str, field: str) -> dict[str, Any]:
            if name not in by_name:
                raise ConfigError(
                    f"Canary {self.namespace}/{self.name}: {field} names VirtualService "
                    f"{self.namespace}/{name}, which is not applied; apply it before starting "
                    "the rollout"
                )
            return by_name[name]

        ingress = find(canary.target.virtual_service, "spec.target.virtualService")
        members = [
            (m, find(m.virtual_service, f"spec.group.members[{i}].virtualService"))
            for i, m in enumerate(canary.group.members)
        ]
        return ingress, members

    def _apply(self, objects: list[dict[str, Any]]) -> None:
        source = f"canary-controller ({self.namespace}/{self.name})"
        documents = [
            DocumentText(source=source, text=yaml.safe_dump(o, sort_keys=False)) for o in objects
        ]
        self.api.apply(documents)


def _key(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name"))

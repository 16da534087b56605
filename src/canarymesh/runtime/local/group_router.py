"""``LocalGroupRouter``: the ``TrafficRouter`` port for a release group (a Canary with
``spec.group``) on a local mesh. The shared writer (:mod:`canarymesh.routing.release_group`)
computes the ingress VirtualService and every member's, in two stages (the members before the
ingress while the slice opens or is promoted, the ingress first while it closes); the second
stage is applied once every proxy ACKed the first, so no request meets a half-moved group (the
gateway setting the header before a member routes it, or the reverse). ``verify_weights`` is
true only when every one of them holds the wanted routes *and* every connected proxy ACKed the
latest push.
"""

from __future__ import annotations

import time
from typing import Any

import yaml

from canarymesh.api.canary import Canary, GroupMember
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.release_group import group_objects, group_stages, group_weights
from canarymesh.runtime.local.api_client import ApiClient
from canarymesh.runtime.local.api_models import VIRTUAL_SERVICE_KIND, DocumentText

__all__ = ["LocalGroupRouter"]

Members = list[tuple[GroupMember, dict[str, Any]]]
# How long the second stage of a change waits for the proxies to take the first.
STAGE_WAIT = 5.0


class LocalGroupRouter:
    """Moves a release group's session slice for the Canary ``name`` in ``namespace``."""

    def __init__(
        self, api: ApiClient, namespace: str, name: str, stage_wait: float = STAGE_WAIT
    ) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        self.stage_wait = stage_wait

    def reconcile(self, canary: Canary, weights: Weights) -> None:
        self.set_weights(canary, weights)

    def set_weights(self, canary: Canary, weights: Weights) -> None:
        ingress, members = self._objects(canary)
        first, then = group_stages(ingress, members, canary, self.name, weights)
        if self._apply(first):
            self._wait_for_proxies()
        self._apply(then)

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

    def _wait_for_proxies(self) -> None:
        """Until every connected proxy ACKed the first stage (bounded: past it, the second
        stage goes anyway, and ``verify_weights`` holds the step until all are in sync)."""
        deadline = time.monotonic() + self.stage_wait
        while time.monotonic() < deadline:
            if all(p.synced for p in self.api.proxy_status() if p.connected):
                return
            time.sleep(0.05)

    def _apply(self, objects: list[dict[str, Any]]) -> bool:
        """Apply what changed of ``objects``; whether anything did."""
        current = {
            str(i.get("metadata", {}).get("name")): i.get("spec")
            for i in self.api.resources([VIRTUAL_SERVICE_KIND], self.namespace)
            if i.get("metadata", {}).get("namespace") == self.namespace
        }
        objects = [o for o in objects if current.get(_key(o)) != o.get("spec")]
        if not objects:
            return False
        source = f"canary-controller ({self.namespace}/{self.name})"
        documents = [
            DocumentText(source=source, text=yaml.safe_dump(o, sort_keys=False)) for o in objects
        ]
        self.api.apply(documents)
        return True


def _key(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name"))

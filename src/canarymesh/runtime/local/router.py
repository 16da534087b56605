"""``LocalRouter``: the ``TrafficRouter`` port (:mod:`canarymesh.ports`) over a local mesh's API.

Built by the canary controller for the local mesh. It reads the Canary's VirtualService from
the control plane, has the route writer both runtimes share (:mod:`canarymesh.routing`) rewrite
its managed routes, and applies it back like ``canarymesh apply`` would; the control plane
pushes the new routes to every Envoy over ADS. ``verify_weights`` is true only when the stored
VirtualService holds the wanted weights *and* every connected proxy ACKed the latest push
(``proxy-status``): only then do requests follow the new split, so only then may a step's
clock start.

One router serves one Canary (``namespace``, ``name``): the name keeps the routes it adds apart
from those of other Canaries in the same VirtualService.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from canarymesh.api.canary import Canary
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.virtual_service import (
    finalized_virtual_service,
    managed_virtual_service,
    virtual_service_weights,
)
from canarymesh.runtime.local.api_client import ApiClient
from canarymesh.runtime.local.api_models import VIRTUAL_SERVICE_KIND, DocumentText

__all__ = ["LocalRouter"]


class LocalRouter:
    """Moves weights for the Canary ``name`` in ``namespace`` (one router per Canary)."""

    def __init__(self, api: ApiClient, namespace: str, name: str) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name

    def reconcile(self, canary: Canary, weights: Weights) -> None:
        self.set_weights(canary, weights)

    def set_weights(self, canary: Canary, weights: Weights) -> None:
        vs = self._virtual_service(canary)
        self._apply(managed_virtual_service(vs, canary, self.name, weights))

    def get_weights(self, canary: Canary) -> Weights:
        return virtual_service_weights(self._virtual_service(canary), canary, self.name)

    def verify_weights(self, canary: Canary, weights: Weights) -> bool:
        current = self._virtual_service(canary)
        wanted = managed_virtual_service(current, canary, self.name, weights)
        if current.get("spec") != wanted.get("spec"):
            return False
        return all(p.synced for p in self.api.proxy_status() if p.connected)

    def finalize(self, canary: Canary, stable_subset: str) -> None:
        vs = self._virtual_service(canary)
        self._apply(finalized_virtual_service(vs, canary, self.name, stable_subset))

    def _virtual_service(self, canary: Canary) -> dict[str, Any]:
        name = canary.target.virtual_service
        items = self.api.resources([VIRTUAL_SERVICE_KIND], self.namespace, name)
        found = [i for i in items if i.get("metadata", {}).get("namespace") == self.namespace]
        if not found:
            raise ConfigError(
                f"Canary {self.namespace}/{self.name}: VirtualService {self.namespace}/{name} "
                "is not applied; apply it before starting the rollout"
            )
        return found[0]

    def _apply(self, vs: Mapping[str, Any]) -> None:
        text = yaml.safe_dump(dict(vs), sort_keys=False)
        source = f"canary-controller ({self.namespace}/{self.name})"
        self.api.apply([DocumentText(source=source, text=text)])

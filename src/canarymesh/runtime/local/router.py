"""``LocalRouter``: the ``TrafficRouter`` port (:mod:`canarymesh.ports`) over a local mesh's API.

Built by the canary controller for the local mesh. It reads the Canary's VirtualService from
the control plane, rewrites only its managed routes (:mod:`canarymesh.controller.managed_routes`)
and applies it back like ``canarymesh apply`` would; the control plane pushes the new routes
to every Envoy over ADS. ``verify_weights`` is true only when the stored VirtualService holds the
wanted weights *and* every connected proxy ACKed the latest push (``proxy-status``): only then
do requests follow the new split, so only then may a step's clock start.

One router serves one Canary (``namespace``, ``name``): the name keeps the routes it adds apart
from those of other Canaries in the same VirtualService.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import yaml

from canarymesh.api.canary import Canary
from canarymesh.controller import managed_routes
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.runtime.local.api_client import ApiClient

__all__ = ["VS_KIND", "LocalRouter"]

VS_KIND = "virtualservice.networking.istio.io"


class LocalRouter:
    """Moves weights for the Canary ``name`` in ``namespace`` (one router per Canary)."""

    def __init__(self, api: ApiClient, namespace: str, name: str) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name

    def reconcile(self, canary: Canary, weights: Weights) -> None:
        self.set_weights(canary, weights)

    def set_weights(self, canary: Canary, weights: Weights) -> None:
        self._apply(self._wanted(canary, weights))

    def get_weights(self, canary: Canary) -> Weights:
        return managed_routes.read_weights(self._virtual_service(canary), self.name, canary)

    def verify_weights(self, canary: Canary, weights: Weights) -> bool:
        current = self._virtual_service(canary)
        if current.get("spec") != self._wanted(canary, weights, current).get("spec"):
            return False
        proxies = cast(list[dict[str, Any]], self.api.get("/v1/proxy-status")["proxies"])
        return all(p["synced"] for p in proxies if p.get("connected"))

    def finalize(self, canary: Canary, stable_subset: str) -> None:
        vs = self._virtual_service(canary)
        self._apply(managed_routes.finalized(vs, self.name, canary, stable_subset))

    def _wanted(
        self, canary: Canary, weights: Weights, vs: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        vs = vs if vs is not None else self._virtual_service(canary)
        if weights.stable_subset == canary.canary_subset():  # promoted: the canary alone
            return managed_routes.finalized(vs, self.name, canary, weights.stable_subset)
        return managed_routes.patched(vs, self.name, canary, weights)

    def _virtual_service(self, canary: Canary) -> dict[str, Any]:
        name = canary.target.virtual_service
        query = {"kinds": VS_KIND, "namespace": self.namespace, "name": name}
        items = cast(list[dict[str, Any]], self.api.get("/v1/resources", query)["items"])
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
        self.api.post("/v1/apply", {"documents": [{"source": source, "text": text}]})

"""The controller's :class:`~canarymesh.ports.TrafficRouter` on a cluster: moves the weights of
the VirtualService (or Gateway API HTTPRoute) a Canary names, by server-side apply of the
managed object the route writer (:mod:`canarymesh.routing`) computes, cut down to the body
:mod:`.patches` describes. Shell; one per Canary, built by the in-cluster entry point.

The kind is found, not configured: ``spec.target.virtualService`` names a VirtualService, or
else an HTTPRoute of that name. On Istio the stable and canary subsets must exist in a
DestinationRule of the host (Bookinfo's subsets by the ``version`` label), checked on
``reconcile``, so a typo fails the rollout's first step instead of sending traffic nowhere.
"""

from __future__ import annotations

from typing import Any

from canarymesh.api.canary import Canary
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.http_route import (
    finalized_http_route,
    http_route_weights,
    managed_http_route,
)
from canarymesh.routing.managed import subset_service
from canarymesh.routing.virtual_service import (
    finalized_virtual_service,
    managed_virtual_service,
    virtual_service_weights,
)
from canarymesh.runtime.kube.client import (
    DESTINATION_RULE,
    HTTP_ROUTE,
    VIRTUAL_SERVICE,
    KubeApi,
    NotFound,
    ObjectKind,
)
from canarymesh.runtime.kube.patches import http_route_body, virtual_service_body
from canarymesh.runtime.kube.verify import IstiodVerifier

__all__ = ["KubeRouter"]


class KubeRouter:
    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        name: str,
        verifier: IstiodVerifier | None = None,
    ) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        self.verifier = verifier

    def reconcile(self, canary: Canary, weights: Weights) -> None:
        kind, _ = self._target(canary)
        if kind is VIRTUAL_SERVICE:
            self._check_subsets(canary, {weights.stable_subset, canary.canary_subset()})
        self.set_weights(canary, weights)

    def set_weights(self, canary: Canary, weights: Weights) -> None:
        kind, obj = self._target(canary)
        if kind is VIRTUAL_SERVICE:
            body = virtual_service_body(managed_virtual_service(obj, canary, self.name, weights))
        else:
            body = http_route_body(managed_http_route(obj, canary, self.name, weights))
        self.api.apply(kind, body)

    def get_weights(self, canary: Canary) -> Weights:
        kind, obj = self._target(canary)
        if kind is VIRTUAL_SERVICE:
            return virtual_service_weights(obj, canary, self.name)
        return http_route_weights(obj, canary, self.name)

    def verify_weights(self, canary: Canary, weights: Weights) -> bool:
        """The object holds ``weights`` and, with istiod configured, the sampled proxies
        acknowledged a push that holds them too."""
        kind, _ = self._target(canary)
        if self.get_weights(canary) != weights:
            return False
        if self.verifier is None:
            return True
        return self.verifier.verify(
            self.namespace, self._fqdn(canary), _expected(kind, canary, weights)
        )

    def finalize(self, canary: Canary, stable_subset: str) -> None:
        kind, obj = self._target(canary)
        if kind is VIRTUAL_SERVICE:
            managed = finalized_virtual_service(obj, canary, self.name, stable_subset)
            body = virtual_service_body(managed)
        else:
            body = http_route_body(finalized_http_route(obj, canary, self.name, stable_subset))
        self.api.apply(kind, body)

    def _target(self, canary: Canary) -> tuple[ObjectKind, dict[str, Any]]:
        if canary.target.revisions is not None:
            # Argo's revisions need pods labelled per revision: on a cluster, Argo makes them.
            raise ConfigError(
                f"Canary {self.namespace}/{self.name}: spec.target.revisions (an Argo Rollout's "
                "revisions) runs on the local mesh; on a cluster, run the Rollout with Argo "
                "Rollouts"
            )
        name = canary.target.virtual_service
        try:
            return VIRTUAL_SERVICE, self.api.get(VIRTUAL_SERVICE, self.namespace, name)
        except NotFound:
            pass
        try:
            return HTTP_ROUTE, self.api.get(HTTP_ROUTE, self.namespace, name)
        except NotFound:
            raise ConfigError(
                f"Canary {self.namespace}/{self.name}: spec.target.virtualService {name!r} "
                f"names neither a VirtualService nor an HTTPRoute in {self.namespace}"
            ) from None

    def _check_subsets(self, canary: Canary, subsets: set[str]) -> None:
        host = canary.target.host.split(".", 1)[0]
        defined: set[str] = set()
        for rule in self.api.list_objects(DESTINATION_RULE, self.namespace):
            if str(rule.get("spec", {}).get("host", "")).split(".", 1)[0] == host:
                defined |= {s.get("name") for s in rule["spec"].get("subsets", [])}
        missing = sorted(subsets - defined)
        if missing:
            raise ConfigError(
                f"Canary {self.namespace}/{self.name}: no DestinationRule of {host!r} in "
                f"{self.namespace} defines the subsets {missing}"
            )

    def _fqdn(self, canary: Canary) -> str:
        host = canary.target.host
        return host if "." in host else f"{host}.{self.namespace}.svc.cluster.local"


def _expected(kind: ObjectKind, canary: Canary, weights: Weights) -> dict[str, int]:
    canary_key, stable_key = canary.canary_subset(), weights.stable_subset
    if kind is HTTP_ROUTE:
        canary_key = subset_service(canary.target.host, canary_key)
        stable_key = subset_service(canary.target.host, stable_key)
    split = {stable_key: 100 - weights.canary}
    split[canary_key] = split.get(canary_key, 0) + weights.canary
    return split

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

A Canary with ``target.revisions`` (an Argo Rollout, :mod:`canarymesh.api.argo`) is routed as
Argo routes it: no weight reaches the canary revision before its pods are ready (the step waits,
as Argo waits for the canary ReplicaSet), and promotion is Argo's: the DestinationRule's stable
subset moves to the canary's hash and the routes go back to the stable subset in one apply,
then, once every proxy holds that, the old revision is scaled to zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from canarymesh.api.canary import Canary
from canarymesh.errors import ConfigError, TemporaryError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.revisions import is_promotion, promoted_rule, promoted_virtual_service
from canarymesh.routing.virtual_service import (
    finalized_virtual_service,
    managed_virtual_service,
    virtual_service_weights,
)
from canarymesh.runtime.local.api_client import ApiClient
from canarymesh.runtime.local.api_models import (
    DEPLOYMENT_KIND,
    DESTINATION_RULE_KIND,
    VIRTUAL_SERVICE_KIND,
    DocumentText,
)

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
        if is_promotion(canary, weights):
            self._promote(canary)
            return
        if canary.target.revisions is not None and weights.canary > 0:
            self._require_ready(canary)
        vs = self._virtual_service(canary)
        self._apply(managed_virtual_service(vs, canary, self.name, weights))

    def get_weights(self, canary: Canary) -> Weights:
        return virtual_service_weights(self._virtual_service(canary), canary, self.name)

    def verify_weights(self, canary: Canary, weights: Weights) -> bool:
        if is_promotion(canary, weights):
            return self._promoted(canary) and self._old_revision_replicas(canary) == 0
        current = self._virtual_service(canary)
        wanted = managed_virtual_service(current, canary, self.name, weights)
        if current.get("spec") != wanted.get("spec"):
            return False
        return all(p.synced for p in self.api.proxy_status() if p.connected)

    def finalize(self, canary: Canary, stable_subset: str) -> None:
        if canary.target.revisions is not None:
            self._promote(canary)
            return
        vs = self._virtual_service(canary)
        self._apply(finalized_virtual_service(vs, canary, self.name, stable_subset))

    # --- a rollout of revisions (Argo's) ----------------------------------------------------

    def _promote(self, canary: Canary) -> None:
        """One step of Argo's promotion per call (the machine calls until it is verified):
        relabel and route back in one apply; then, once every proxy has it, scale down."""
        if not self._promoted(canary):
            rule = self._destination_rule(canary)
            vs = self._virtual_service(canary)
            self._apply_all(
                [promoted_rule(rule, canary), promoted_virtual_service(vs, canary, self.name)]
            )
            return
        old = self._old_revision(canary)
        if old is not None and (old.get("spec") or {}).get("replicas", 1) != 0:
            self._apply({**old, "spec": {**old["spec"], "replicas": 0}})

    def _promoted(self, canary: Canary) -> bool:
        """The relabelled rule and the routes back on the stable are stored and every proxy
        has them."""
        rule = self._destination_rule(canary)
        vs = self._virtual_service(canary)
        if rule.get("spec") != promoted_rule(rule, canary).get("spec"):
            return False
        if vs.get("spec") != promoted_virtual_service(vs, canary, self.name).get("spec"):
            return False
        return all(p.synced for p in self.api.proxy_status() if p.connected)

    def _old_revision(self, canary: Canary) -> dict[str, Any] | None:
        revisions = canary.target.revisions
        assert revisions is not None
        name = f"{self.name}-{revisions.stable_hash}"
        found = self._named(DEPLOYMENT_KIND, name)
        return found[0] if found else None

    def _old_revision_replicas(self, canary: Canary) -> int:
        old = self._old_revision(canary)
        return 0 if old is None else int((old.get("spec") or {}).get("replicas", 1))

    def _require_ready(self, canary: Canary) -> None:
        """No request goes to the canary revision before all its pods are ready."""
        revisions = canary.target.revisions
        assert revisions is not None
        deployment = f"{self.name}-{revisions.canary_hash}"
        pods = [
            p
            for p in self.api.pods()
            if p.namespace == self.namespace and p.deployment == deployment
        ]
        ready = [p for p in pods if p.status == "Running" and _all_ready(p.ready)]
        if not pods or len(ready) < len(pods):
            raise TemporaryError(
                f"Canary {self.namespace}/{self.name}: waiting for the pods of revision "
                f"{revisions.canary_hash} ({len(ready)}/{len(pods)} ready) before sending it "
                "requests",
                delay=1.0,
            )

    def _destination_rule(self, canary: Canary) -> dict[str, Any]:
        revisions = canary.target.revisions
        assert revisions is not None
        found = self._named(DESTINATION_RULE_KIND, revisions.destination_rule)
        if not found:
            raise ConfigError(
                f"Canary {self.namespace}/{self.name}: DestinationRule {self.namespace}/"
                f"{revisions.destination_rule} is not applied"
            )
        return found[0]

    def _named(self, kind: str, name: str) -> list[dict[str, Any]]:
        items = self.api.resources([kind], self.namespace, name)
        return [i for i in items if i.get("metadata", {}).get("namespace") == self.namespace]

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

    def _apply(self, document: Mapping[str, Any]) -> None:
        self._apply_all([document])

    def _apply_all(self, documents: list[Mapping[str, Any]]) -> None:
        """One apply: the control plane pushes all of it or none of it."""
        text = yaml.safe_dump_all([dict(d) for d in documents], sort_keys=False)
        source = f"canary-controller ({self.namespace}/{self.name})"
        self.api.apply([DocumentText(source=source, text=text)])


def _all_ready(ready: str) -> bool:
    """kubectl's READY column (``2/2``) says every container is ready."""
    done, _, total = ready.partition("/")
    return done == total and done not in ("", "0")

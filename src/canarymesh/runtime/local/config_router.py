"""``LocalConfigRouter``: the ``TrafficRouter`` port for a config canary on the local mesh.

A config canary (a Canary with ``spec.config``) moves the target's client sidecars, not requests,
from the current config to the changed one: ``Weights.canary`` is the percent of those sidecars
that run the changed documents. The control plane does the splitting
(:mod:`canarymesh.runtime.local.config_canaries`); this router sets the share through
``POST /v1/config-canary`` and reads it back. ``finalize`` to the canary side promotes: the
changed documents become the config every pod runs. A rollback is a share of 0: every pod back
on the current config, which was never changed.
"""

from __future__ import annotations

from canarymesh.api.canary import Canary
from canarymesh.rollout.actions import Weights
from canarymesh.runtime.local.api_client import ApiClient

__all__ = ["LocalConfigRouter"]


class LocalConfigRouter:
    def __init__(self, api: ApiClient, namespace: str, name: str) -> None:
        self.api, self.namespace, self.name = api, namespace, name

    def reconcile(self, canary: Canary, weights: Weights) -> None:
        self.set_weights(canary, weights)

    def set_weights(self, canary: Canary, weights: Weights) -> None:
        if _promoted(canary, weights):
            return  # after finalize: nothing is split any more
        self.api.config_canary(self.namespace, self.name, float(weights.canary))

    def get_weights(self, canary: Canary) -> Weights:
        state = self.api.config_canary_state(self.namespace, self.name)
        if state.percent is None and state.applied:
            return Weights(0, canary.canary_subset())
        return Weights(round(state.percent or 0), canary.stable_subset())

    def verify_weights(self, canary: Canary, weights: Weights) -> bool:
        state = self.api.config_canary_state(self.namespace, self.name)
        if _promoted(canary, weights):
            held = state.percent is None and state.applied
        else:
            held = state.percent == float(weights.canary)
        # Only once every connected proxy ACKed its latest push do the pods run their set's config.
        return held and all(p.synced for p in self.api.proxy_status() if p.connected)

    def finalize(self, canary: Canary, stable_subset: str) -> None:
        if stable_subset == canary.canary_subset():
            self.api.config_canary(self.namespace, self.name, None, promote=True)
        else:
            self.api.config_canary(self.namespace, self.name, None)


def _promoted(canary: Canary, weights: Weights) -> bool:
    return weights.stable_subset == canary.canary_subset()

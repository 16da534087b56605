"""An Argo-style rollout's revisions in its DestinationRule and VirtualService (a Canary with
``target.revisions``). Pure: dicts in, new dicts out; used by the local router.

Argo promotes by relabelling, not by renaming routes: the stable subset's
``rollouts-pod-template-hash`` becomes the canary's hash (both subsets select the new pods),
and every managed route sends its requests back to the stable subset. The routes then look as
they did before the rollout, ready for the next one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from canarymesh.api.canary import REVISION_LABEL, Canary
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.managed import Obj, qualified
from canarymesh.routing.virtual_service import managed_virtual_service

__all__ = ["is_promotion", "promoted_rule", "promoted_virtual_service"]


def is_promotion(canary: Canary, weights: Weights) -> bool:
    """Whether ``weights`` are the machine's "the canary is the stable now" for a rollout of
    revisions (the machine names the canary's subset as the new stable)."""
    return canary.target.revisions is not None and weights.stable_subset == canary.canary_subset()


def promoted_rule(rule: Mapping[str, Any], canary: Canary) -> Obj:
    """``rule`` with both subsets selecting the canary's revision."""
    revisions = canary.target.revisions
    assert revisions is not None
    wanted = {canary.stable_subset(), canary.canary_subset()}
    out = copy.deepcopy(dict(rule))
    subsets = out.get("spec", {}).get("subsets") or []
    found = set()
    for subset in subsets:
        if subset.get("name") in wanted:
            found.add(subset["name"])
            subset["labels"] = {
                **(subset.get("labels") or {}),
                REVISION_LABEL: revisions.canary_hash,
            }
    if found != wanted:
        missing = ", ".join(sorted(wanted - found))
        raise ConfigError(f"DestinationRule {qualified(rule)} has no subset {missing}")
    return out


def promoted_virtual_service(vs: Mapping[str, Any], canary: Canary, name: str) -> Obj:
    """``vs`` with every managed route back on the stable subset (canary at 0%)."""
    return managed_virtual_service(vs, canary, name, Weights(0, canary.stable_subset()))

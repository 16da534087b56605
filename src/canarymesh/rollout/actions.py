"""What a decision asks the controller to do, as values: the controller executes each through
a port of :mod:`canarymesh.ports` and reports the outcome in the next observation. Pure; made by
:mod:`canarymesh.rollout.machine`, executed by the controller loop, counted by ``bench/judge.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Action",
    "FinalizeRoutes",
    "ReconcileRoutes",
    "RunWebhook",
    "SetWeights",
    "StartLoad",
    "StopLoad",
    "Weights",
]


@dataclass(frozen=True, slots=True)
class Weights:
    """How the managed routes split traffic between ``stable_subset`` and the canary.

    ``match``: the A/B route (requests matching the strategy's ``match``) goes to the canary.
    ``mirror``: percent of the stable's requests copied to the canary.
    """

    canary: int
    stable_subset: str
    mirror: float = 0.0
    match: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.canary <= 100 or not 0.0 <= self.mirror <= 100.0:
            raise ValueError(f"weights out of range: canary {self.canary}%, mirror {self.mirror}%")

    def describe(self) -> str:
        text = f"canary {self.canary}% / stable {100 - self.canary}%"
        if self.mirror:
            text += f", mirror {self.mirror:g}%"
        return text + (", A/B match to canary" if self.match else "")


@dataclass(frozen=True, slots=True)
class ReconcileRoutes:
    """Make the managed routes ready (both subsets present, the canary at 0%)."""

    weights: Weights


@dataclass(frozen=True, slots=True)
class SetWeights:
    """Apply ``weights`` to the managed routes; the next observation says if proxies applied it."""

    weights: Weights


@dataclass(frozen=True, slots=True)
class FinalizeRoutes:
    """Point the managed routes at ``stable_subset`` alone (the promoted canary)."""

    stable_subset: str


@dataclass(frozen=True, slots=True)
class RunWebhook:
    """Call the webhook ``name`` (of type ``type``); gating types report back their answer."""

    name: str
    type: str


@dataclass(frozen=True, slots=True)
class StartLoad:
    """Start the spec's built-in load generator."""


@dataclass(frozen=True, slots=True)
class StopLoad:
    """Stop the built-in load generator."""


Action = ReconcileRoutes | SetWeights | FinalizeRoutes | RunWebhook | StartLoad | StopLoad

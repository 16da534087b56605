"""The events a decision is worth telling people about: ``rollout_events(...) -> (RolloutEvent,
...)``. Pure; called by the controller's notifier (:mod:`canarymesh.controller.notify`) after
every decision, rendered for each receiver by :mod:`canarymesh.views.notification_payloads`.

An event is read off the state before a decision and the decision itself, never from a second
source, so what people are told is what ``rollout get`` shows:

* ``started``: the first decision of a rollout (a new rollout id);
* ``step``: the rollout passed one or more steps (the next step and the weight now);
* ``paused``: it entered Paused (a pause step without duration, or ``rollout pause``);
* ``promoted``: it reached Succeeded (the canary is the stable);
* ``rolledBack``: the decision to roll back (every request already went back to the stable).

Each carries the decision's reason (with its numbers) and the metrics' verdicts as they stand.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from canarymesh.analysis.verdict import MetricVerdict
from canarymesh.api.canary import Canary
from canarymesh.api.notifications import EventName
from canarymesh.rollout.machine import Decision
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.plan import build_plan
from canarymesh.rollout.state import CanaryState

__all__ = ["RolloutEvent", "rollout_events"]

_TITLES: dict[str, str] = {
    "started": "rollout started",
    "step": "step passed",
    "paused": "rollout paused",
    "promoted": "canary promoted",
    "rolledBack": "canary rolled back",
}


@dataclass(frozen=True, slots=True)
class RolloutEvent:
    """One event of one rollout, with the explanation of the decision that made it."""

    kind: EventName
    namespace: str
    canary: str
    rollout_id: str
    at: datetime.datetime
    phase: str
    step: int  # 1-based number of the current step; steps + 1 once every step passed
    steps: int
    step_text: str
    canary_weight: int
    stable_subset: str
    canary_subset: str
    reason: str
    verdicts: tuple[MetricVerdict, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.canary}"

    @property
    def title(self) -> str:
        """``default/reviews: canary rolled back``."""
        return f"{self.key}: {_TITLES[self.kind]}"

    @property
    def severity(self) -> str:
        """What an operator does about it: ``critical`` (a failed canary), ``warning`` (someone
        must resume or promote), ``info``."""
        return {"rolledBack": "critical", "paused": "warning"}.get(self.kind, "info")

    def verdict_lines(self) -> tuple[str, ...]:
        """``request-success-rate Failed: <the verdict's reason with its numbers>``, worst
        first."""
        order = {"Failed": 0, "Error": 1, "NoData": 2, "Inconclusive": 3, "Successful": 4}
        ranked = sorted(self.verdicts, key=lambda v: order.get(v.phase.value, 5))
        return tuple(f"{v.metric} {v.phase.value}: {v.reason}" for v in ranked)


def rollout_events(
    namespace: str,
    name: str,
    rollout_id: str,
    spec: Canary,
    before: CanaryState,
    decision: Decision,
    now: datetime.datetime,
) -> tuple[RolloutEvent, ...]:
    """The events ``decision`` (taken at ``now``) makes of ``before``, in the order they
    happened."""
    after = decision.state
    kinds: list[EventName] = []
    if before.phase is Phase.INITIALIZING and not before.history:
        kinds.append("started")
    ended = after.phase in (Phase.ROLLING_BACK, Phase.FAILED)
    if after.step > before.step and not ended:
        kinds.append("step")
    if after.phase is Phase.PAUSED and before.phase is not Phase.PAUSED:
        kinds.append("paused")
    if after.phase is Phase.SUCCEEDED and before.phase is not Phase.SUCCEEDED:
        kinds.append("promoted")
    if ended and before.phase not in (Phase.ROLLING_BACK, Phase.FAILED):
        kinds.append("rolledBack")
    if not kinds:
        return ()
    plan = build_plan(spec)
    if after.step < len(plan):
        step_text = f"{after.step + 1}/{len(plan)} ({plan[after.step].describe()})"
    else:
        step_text = f"{len(plan)}/{len(plan)} (done)"
    return tuple(
        RolloutEvent(
            kind=kind,
            namespace=namespace,
            canary=name,
            rollout_id=rollout_id,
            at=now,
            phase=after.phase.value,
            step=after.step + 1,
            steps=len(plan),
            step_text=step_text,
            canary_weight=after.weights.canary,
            stable_subset=after.weights.stable_subset,
            canary_subset=spec.canary_subset(),
            reason=decision.reason,
            verdicts=after.verdicts,
        )
        for kind in kinds
    )

"""The controller's own Prometheus metrics and decision log: the ``DecisionSink`` of
:mod:`canarymesh.controller.wiring`. Called by the loop after every decision; served on
``/metrics`` by :mod:`canarymesh.controller.local`. The names and labels are the ones the Grafana
dashboard in ``addons/grafana.yaml`` reads (documented in ``addons/README.md``):

* ``canarymesh_rollout_weight{namespace,canary}``: percent of the traffic sent to the canary;
* ``canarymesh_rollout_phase{namespace,canary,phase}``: 1 for the current phase, 0 for others;
* ``canarymesh_rollout_decisions_total{namespace,canary,decision}``: decisions by kind
  (``start``, ``advance``, ``hold``, ``pause``, ``promote``, ``succeeded``, ``rollback``,
  ``failed``).
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge

from canarymesh.controller.wiring import CanaryItem
from canarymesh.rollout.machine import Decision
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState

__all__ = ["ControllerMetrics", "decision_kind"]

log = logging.getLogger("canarymesh.controller")

_ENTERED = {
    Phase.PROGRESSING: "start",
    Phase.PAUSED: "pause",
    Phase.PROMOTING: "promote",
    Phase.SUCCEEDED: "succeeded",
    Phase.ROLLING_BACK: "rollback",
    Phase.FAILED: "failed",
}


def decision_kind(before: CanaryState, decision: Decision) -> str:
    """One word for what ``decision`` did to ``before`` (the ``decision`` label)."""
    after = decision.state
    if after.phase is not before.phase:
        if before.phase is Phase.PAUSED and after.phase is Phase.PROGRESSING:
            return "advance"
        return _ENTERED.get(after.phase, "advance")
    if after.step != before.step or after.weights != before.weights:
        return "advance"
    return "hold"


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["namespace", "canary"]
        self.weight = Gauge(
            "canarymesh_rollout_weight",
            "Percent of the traffic sent to the canary version",
            labels,
            registry=self.registry,
        )
        self.phase = Gauge(
            "canarymesh_rollout_phase",
            "1 for the rollout's current phase, 0 for the others",
            [*labels, "phase"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "canarymesh_rollout_decisions",
            "Decisions taken by the canary controller, by kind",
            [*labels, "decision"],
            registry=self.registry,
        )

    def record(self, item: CanaryItem, before: CanaryState, decision: Decision) -> None:
        state = decision.state
        self.weight.labels(item.namespace, item.name).set(state.weights.canary)
        for phase in Phase:
            current = 1.0 if phase is state.phase else 0.0
            self.phase.labels(item.namespace, item.name, phase.value).set(current)
        self.decisions.labels(item.namespace, item.name, decision_kind(before, decision)).inc()
        if decision.reason != before.message:
            log.info("%s [%s] %s", item.key, state.phase.value, decision.reason)

"""The view of one rollout: ``rollout_view(state, spec) -> RolloutView``. Pure; called by the
``canarymesh rollout get`` renderer and by the dashboard, which must show the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from canarymesh.analysis.verdict import MetricVerdict
from canarymesh.api.canary import Canary
from canarymesh.rollout.judging import sequential_alpha
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.plan import build_plan
from canarymesh.rollout.state import CanaryState

__all__ = ["LogLine", "MetricRow", "RolloutView", "StepRow", "rollout_view"]

StepStatus = Literal["done", "current", "pending", "skipped"]


@dataclass(frozen=True, slots=True)
class StepRow:
    number: int
    description: str
    status: StepStatus


@dataclass(frozen=True, slots=True)
class MetricRow:
    metric: str
    verdict: str
    canary: float | None
    stable: float | None
    limit: str
    samples: int
    p_value: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class LogLine:
    at: str
    phase: str
    reason: str


@dataclass(frozen=True, slots=True)
class RolloutView:
    name: str
    phase: str
    strategy: str
    judge: str
    host: str
    stable_subset: str
    canary_subset: str
    canary_weight: int
    stable_weight: int
    mirror: float
    ab_match: bool
    weights_verified: bool
    step: str
    steps: tuple[StepRow, ...]
    metrics: tuple[MetricRow, ...]
    failed_checks: int
    failure_limit: int
    message: str
    log: tuple[LogLine, ...]
    # A release group's members: (host, stable subset, canary subset); empty for one service.
    members: tuple[tuple[str, str, str], ...] = ()

    def to_json(self) -> dict[str, object]:
        """Field names in camelCase, as the dashboard's JSON API serves them."""
        return {
            "name": self.name,
            "phase": self.phase,
            "strategy": self.strategy,
            "judge": self.judge,
            "host": self.host,
            "stableSubset": self.stable_subset,
            "canarySubset": self.canary_subset,
            "weights": {
                "canary": self.canary_weight,
                "stable": self.stable_weight,
                "mirror": self.mirror,
                "abMatch": self.ab_match,
                "verified": self.weights_verified,
            },
            "step": self.step,
            "steps": [
                {"number": s.number, "description": s.description, "status": s.status}
                for s in self.steps
            ],
            "metrics": [
                {
                    "metric": m.metric,
                    "verdict": m.verdict,
                    "canary": m.canary,
                    "stable": m.stable,
                    "limit": m.limit,
                    "samples": m.samples,
                    "pValue": m.p_value,
                    "reason": m.reason,
                }
                for m in self.metrics
            ],
            "failedChecks": self.failed_checks,
            "failureLimit": self.failure_limit,
            "message": self.message,
            "log": [{"at": e.at, "phase": e.phase, "reason": e.reason} for e in self.log],
            **(
                {
                    "group": [
                        {"host": h, "stableSubset": s, "canarySubset": c}
                        for h, s, c in self.members
                    ]
                }  # fmt: skip
                if self.members
                else {}
            ),
        }


def rollout_view(state: CanaryState, spec: Canary) -> RolloutView:
    plan = build_plan(spec)
    total = len(plan)
    promoted = state.phase in (Phase.PROMOTING, Phase.SUCCEEDED)
    rows = tuple(
        StepRow(i + 1, step.describe(), _status(i, state, promoted)) for i, step in enumerate(plan)
    )
    step = "done" if state.step >= total else f"{state.step + 1}/{total}"
    return RolloutView(
        name=state.name,
        phase=state.phase.value,
        strategy=spec.strategy_name(),
        judge=spec.analysis.judge,
        host=spec.target.host,
        stable_subset=spec.stable_subset(),
        canary_subset=spec.canary_subset(),
        canary_weight=state.weights.canary,
        stable_weight=100 - state.weights.canary,
        mirror=state.weights.mirror,
        ab_match=state.weights.match,
        weights_verified=state.verified_at is not None,
        step=step,
        steps=rows,
        metrics=tuple(_metric_row(v, spec) for v in state.verdicts),
        failed_checks=state.failed_checks,
        failure_limit=spec.analysis.failure_limit,
        message=state.message,
        log=tuple(
            LogLine(e.at.strftime("%H:%M:%S"), e.phase.value, e.reason) for e in state.history
        ),
        members=tuple(
            (m.host, m.stable_subset, m.canary_subset)
            for m in (spec.group.members if spec.group is not None else ())
        ),
    )


def _status(index: int, state: CanaryState, promoted: bool) -> StepStatus:
    if index < state.step:
        return "done"
    if promoted:
        return "skipped"  # promoted by a person before this step ran
    return "current" if index == state.step else "pending"


def _metric_row(verdict: MetricVerdict, spec: Canary) -> MetricRow:
    return MetricRow(
        metric=verdict.metric,
        verdict=verdict.phase.value,
        canary=verdict.canary_value,
        stable=verdict.stable_value,
        limit=_limit(verdict, spec),
        samples=verdict.samples,
        p_value=verdict.p_value,
        reason=verdict.reason,
    )


def _limit(verdict: MetricVerdict, spec: Canary) -> str:
    if verdict.p_value is not None:
        return f"p < {sequential_alpha(spec):g}"
    metric = verdict.metric.rpartition("/")[2]  # a release group's part: "ratings/<metric>"
    for check in spec.metric_checks():
        if check.name == metric and check.threshold_range is not None:
            bounds = check.threshold_range
            parts = [f"min {bounds.min:g}" if bounds.min is not None else "",
                     f"max {bounds.max:g}" if bounds.max is not None else ""]  # fmt: skip
            return " ".join(p for p in parts if p) or "none"
    return "none"

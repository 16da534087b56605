"""The view of one rollout: ``rollout_view(state, spec) -> RolloutView``. Pure; called by the
``canarymesh rollout get``/``status`` renderer and by the dashboard, which must show the same
numbers: the steps, the weights, each metric's verdict with what it rests on (counts, rates,
the always-valid p-value, a confidence interval on the canary-to-stable ratio, what would settle
an Inconclusive), what the plan can see at the stable's traffic, and the decision log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from canarymesh.analysis.planning import PlanAssessment
from canarymesh.analysis.verdict import Explanation, MetricVerdict
from canarymesh.api.canary import Canary
from canarymesh.rollout.judging import is_sequential, sequential_alpha
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.plan import build_plan
from canarymesh.rollout.state import CanaryState

__all__ = ["LogLine", "MetricRow", "RolloutView", "SightRow", "StepRow", "rollout_view"]

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
    explanation: Explanation | None = None

    @property
    def ratio(self) -> str:
        """``2.4x (0.8x-7x)``: the canary-to-stable ratio and its always-valid interval."""
        e = self.explanation
        if e is None:
            return "-"
        estimate = "-" if e.ratio is None else _times(e.ratio)
        return f"{estimate} ({_times(e.ratio_low)}-{_times(e.ratio_high)})"


@dataclass(frozen=True, slots=True)
class SightRow:
    """What the plan can see of one metric at the stable's traffic: the stable's rate of bad
    requests (percent), the effect size, the smallest regression (a ratio) caught with 90%
    probability by the end of each analysis step, the chance of catching the effect size by
    the plan's end, the median time to catch it, and (adaptive) when a healthy canary can
    expect to be promoted."""

    metric: str
    bad_percent: float
    effect_size: float
    smallest: tuple[tuple[str, float | None], ...]
    catch: float
    median_seconds: float | None
    promote_seconds: float | None


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
    adaptive: bool = False
    baseline: str = ""
    traffic_rps: float | None = None
    sight: tuple[SightRow, ...] = ()
    warnings: tuple[str, ...] = ()
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
                    "ratio": m.ratio,
                    "explanation": None if m.explanation is None else m.explanation.to_json(),
                }
                for m in self.metrics
            ],
            "failedChecks": self.failed_checks,
            "failureLimit": self.failure_limit,
            "message": self.message,
            "log": [{"at": e.at, "phase": e.phase, "reason": e.reason} for e in self.log],
            "adaptive": self.adaptive,
            "plan": {
                "baseline": self.baseline,
                "rps": self.traffic_rps,
                "sight": [
                    {
                        "metric": r.metric,
                        "badPercent": r.bad_percent,
                        "effectSize": r.effect_size,
                        "smallest": [{"step": s, "ratio": v} for s, v in r.smallest],
                        "catch": r.catch,
                        "medianSeconds": r.median_seconds,
                        "promoteSeconds": r.promote_seconds,
                    }
                    for r in self.sight
                ],
                "warnings": list(self.warnings),
            },
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
        adaptive=spec.adaptive(),
        baseline=state.baseline.describe() if state.baseline is not None else "",
        traffic_rps=state.assessment.rps if state.assessment is not None else None,
        sight=_sight(state.assessment, plan_steps=[s.describe() for s in plan]),
        warnings=state.assessment.warnings if state.assessment is not None else (),
        members=tuple(
            (m.host, m.stable_subset, m.canary_subset)
            for m in (spec.group.members if spec.group is not None else ())
        ),
    )


def _sight(assessment: PlanAssessment | None, plan_steps: list[str]) -> tuple[SightRow, ...]:
    if assessment is None:
        return ()
    analyses = [i for i, step in enumerate(plan_steps) if step.startswith("analysis")]
    rows = []
    for m in assessment.metrics:
        smallest = tuple(
            (
                f"{analyses[s.step - 1] + 1}" if s.step - 1 < len(analyses) else str(s.step),
                s.smallest,
            )
            for s in m.steps
        )
        rows.append(
            SightRow(
                m.metric,
                100.0 * m.bad_rate,
                m.effect_size,
                smallest,
                m.catch,
                m.median_seconds,
                m.promote_seconds,
            )
        )
    return tuple(rows)


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
        explanation=verdict.explanation,
    )


def _limit(verdict: MetricVerdict, spec: Canary) -> str:
    metric = verdict.metric.rpartition("/")[2]  # a release group's part: "ratings/<metric>"
    sequential = {c.name for c in spec.metric_checks() if is_sequential(spec, c)}
    if metric in sequential:
        return f"p < {sequential_alpha(spec, verdict.metric):g}"
    for check in spec.metric_checks():
        if check.name == metric and check.threshold_range is not None:
            bounds = check.threshold_range
            parts = [f"min {bounds.min:g}" if bounds.min is not None else "",
                     f"max {bounds.max:g}" if bounds.max is not None else ""]  # fmt: skip
            return " ".join(p for p in parts if p) or "none"
    return "none"


def _times(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.0f}x" if value >= 10 else f"{value:.2g}x"

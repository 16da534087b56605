"""The state of one rollout: frozen, changed only through ``with_*`` methods, and persisted as a
plain dict after every decision, so a controller killed mid-rollout resumes at the same step with
the same evidence (kopf's ``progression.State`` works the same way). Pure; made and changed by
:mod:`canarymesh.rollout.machine`, stored through the ``StateStore`` port, shown by
:mod:`canarymesh.views`.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field, replace
from typing import Any

from canarymesh.analysis.baseline import Baseline
from canarymesh.analysis.planning import PlanAssessment
from canarymesh.analysis.statistical import MetricTest
from canarymesh.analysis.verdict import Explanation, MetricVerdict, VerdictPhase
from canarymesh.rollout.actions import Weights
from canarymesh.rollout.phases import Phase

__all__ = ["HISTORY_LIMIT", "CanaryState", "HistoryEntry"]

HISTORY_LIMIT = 50
# 2: per-metric tests (evidence with its hidden states) replace version 1's evidence; the
# stable's baseline, the plan's assessment and explained verdicts were added. A version 1 state
# is read with its evidence dropped (the tests start again from the next window).
STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One decision that changed something, as the decision log shows it."""

    at: datetime.datetime
    phase: Phase
    step: int
    reason: str


@dataclass(frozen=True, slots=True)
class CanaryState:
    """Where a rollout stands. Times are aware datetimes from the controller's clock.

    ``verified_at`` is when the proxies were seen applying ``weights`` (None while pending):
    the clock of the current step and the usable metric windows start there. ``tests``: the
    statistical judge's running test of each metric; ``baseline``: the stable's traffic before
    the rollout; ``assessment``: what the plan can see at that traffic; ``checked_until``: the
    end of the last window whose custom metrics were checked.
    """

    name: str
    phase: Phase
    started_at: datetime.datetime
    weights: Weights
    step: int = 0
    verified_at: datetime.datetime | None = None
    step_started_at: datetime.datetime | None = None
    progress_at: datetime.datetime | None = None
    analysed_until: datetime.datetime | None = None
    failed_checks: int = 0
    passed_checks: int = 0
    tests: tuple[tuple[str, MetricTest], ...] = ()
    verdicts: tuple[MetricVerdict, ...] = ()
    baseline: Baseline | None = None
    assessment: PlanAssessment | None = None
    checked_until: datetime.datetime | None = None
    paused_by_user: bool = False
    promotion_stage: int = 0
    message: str = ""
    history: tuple[HistoryEntry, ...] = field(default=())

    @staticmethod
    def initial(name: str, stable_subset: str, now: datetime.datetime) -> CanaryState:
        return CanaryState(
            name=name,
            phase=Phase.INITIALIZING,
            started_at=now,
            weights=Weights(canary=0, stable_subset=stable_subset),
            progress_at=now,
        )

    # --- transitions -------------------------------------------------------------------------

    def with_phase(self, phase: Phase, reason: str, now: datetime.datetime) -> CanaryState:
        entry = HistoryEntry(now, phase, self.step, reason)
        history = (*self.history, entry)[-HISTORY_LIMIT:]
        return replace(self, phase=phase, message=reason, history=history)

    def with_message(self, reason: str, now: datetime.datetime) -> CanaryState:
        """Same phase, a new reason; logged only when it says something new: the judge's
        numbers change every second, so a reason that differs from the last logged one only
        in its numbers replaces the message without a new history entry."""
        if reason == self.message:
            return self
        last = self.history[-1] if self.history else None
        if last is not None and last.phase is self.phase and _gist(last.reason) == _gist(reason):
            return replace(self, message=reason)
        return self.with_phase(self.phase, reason, now)

    def with_weights(self, weights: Weights) -> CanaryState:
        """New desired weights: pending until the proxies are seen applying them."""
        return replace(self, weights=weights, verified_at=None, step_started_at=None)

    def with_verified(self, now: datetime.datetime) -> CanaryState:
        return replace(self, verified_at=now, step_started_at=now, progress_at=now)

    def with_step(self, step: int, now: datetime.datetime) -> CanaryState:
        """Start step ``step``: its clock starts now (weights are verified when this is called)."""
        return replace(self, step=step, step_started_at=now, progress_at=now, passed_checks=0)

    def with_analysis(
        self,
        tests: dict[str, MetricTest],
        verdicts: tuple[MetricVerdict, ...],
        analysed_until: datetime.datetime,
        *,
        failed: int,
        passed: int,
        checked: datetime.datetime | None = None,
    ) -> CanaryState:
        return replace(
            self,
            tests=tuple(sorted(tests.items())),
            verdicts=verdicts,
            analysed_until=analysed_until,
            failed_checks=self.failed_checks + failed,
            passed_checks=self.passed_checks + passed,
            checked_until=checked if checked is not None else self.checked_until,
        )

    def with_baseline(
        self,
        baseline: Baseline,
        assessment: PlanAssessment | None,
        tests: tuple[tuple[str, MetricTest], ...],
    ) -> CanaryState:
        return replace(self, baseline=baseline, assessment=assessment, tests=tuple(sorted(tests)))

    def with_paused(self, paused: bool) -> CanaryState:
        return replace(self, paused_by_user=paused)

    def with_resumed(self, now: datetime.datetime) -> CanaryState:
        """Back from a pause: the progress deadline counts from now, not from before it."""
        return replace(self, paused_by_user=False, progress_at=now)

    def with_failed_check(self) -> CanaryState:
        return replace(self, failed_checks=self.failed_checks + 1)

    def with_promotion_stage(self, stage: int) -> CanaryState:
        return replace(self, promotion_stage=stage)

    def test_of(self, metric: str) -> MetricTest | None:
        return dict(self.tests).get(metric)

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back equal."""
        return {
            "version": STATE_VERSION,
            "name": self.name,
            "phase": self.phase.value,
            "startedAt": _time(self.started_at),
            "weights": {
                "canary": self.weights.canary,
                "stableSubset": self.weights.stable_subset,
                "mirror": self.weights.mirror,
                "match": self.weights.match,
            },
            "step": self.step,
            "verifiedAt": _time(self.verified_at),
            "stepStartedAt": _time(self.step_started_at),
            "progressAt": _time(self.progress_at),
            "analysedUntil": _time(self.analysed_until),
            "failedChecks": self.failed_checks,
            "passedChecks": self.passed_checks,
            "tests": {metric: test.to_json() for metric, test in self.tests},
            "verdicts": [_verdict_json(v) for v in self.verdicts],
            "baseline": None if self.baseline is None else self.baseline.to_json(),
            "assessment": None if self.assessment is None else self.assessment.to_json(),
            "checkedUntil": _time(self.checked_until),
            "pausedByUser": self.paused_by_user,
            "promotionStage": self.promotion_stage,
            "message": self.message,
            "history": [
                {"at": _time(h.at), "phase": h.phase.value, "step": h.step, "reason": h.reason}
                for h in self.history
            ],
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CanaryState:
        """The state :meth:`to_dict` wrote; ValueError names what is wrong with other input."""
        if data.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"rollout state version {data.get('version')!r} is not supported")
        try:
            return _from_dict(data)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"rollout state is incomplete or malformed: {exc!r}") from exc


def _from_dict(data: dict[str, Any]) -> CanaryState:
    weights = data["weights"]
    current = data["version"] == STATE_VERSION
    baseline, assessment = data.get("baseline"), data.get("assessment")
    return CanaryState(
        name=str(data["name"]),
        phase=Phase(data["phase"]),
        started_at=_required_time(data["startedAt"]),
        weights=Weights(
            canary=int(weights["canary"]),
            stable_subset=str(weights["stableSubset"]),
            mirror=float(weights["mirror"]),
            match=bool(weights["match"]),
        ),
        step=int(data["step"]),
        verified_at=_parse_time(data["verifiedAt"]),
        step_started_at=_parse_time(data["stepStartedAt"]),
        progress_at=_parse_time(data["progressAt"]),
        analysed_until=_parse_time(data["analysedUntil"]),
        failed_checks=int(data["failedChecks"]),
        passed_checks=int(data["passedChecks"]),
        tests=tuple(sorted((m, MetricTest.from_json(t)) for m, t in data["tests"].items()))
        if current
        else (),
        verdicts=tuple(_verdict_from(v) for v in data["verdicts"]),
        baseline=Baseline.from_json(baseline) if current and baseline is not None else None,
        assessment=(
            PlanAssessment.from_json(assessment) if current and assessment is not None else None
        ),
        checked_until=_parse_time(data.get("checkedUntil")),
        paused_by_user=bool(data["pausedByUser"]),
        promotion_stage=int(data["promotionStage"]),
        message=str(data["message"]),
        history=tuple(
            HistoryEntry(_required_time(h["at"]), Phase(h["phase"]), int(h["step"]), h["reason"])
            for h in data["history"]
        ),
    )


_NUMBER = re.compile(r"(?<!step )(?<![A-Za-z])\d[\d.,e+-]*")


def _gist(reason: str) -> str:
    """``reason`` without its numbers (step numbers kept)."""
    return _NUMBER.sub("#", reason)


def _time(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: object) -> datetime.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"a time must be ISO 8601 text, not {value!r}")
    return datetime.datetime.fromisoformat(value)


def _required_time(value: object) -> datetime.datetime:
    parsed = _parse_time(value)
    if parsed is None:
        raise TypeError("a required time is missing")
    return parsed


def _verdict_json(verdict: MetricVerdict) -> dict[str, Any]:
    return {
        "metric": verdict.metric,
        "phase": verdict.phase.value,
        "reason": verdict.reason,
        "canaryValue": verdict.canary_value,
        "stableValue": verdict.stable_value,
        "samples": verdict.samples,
        "pValue": verdict.p_value,
        "explanation": None if verdict.explanation is None else verdict.explanation.to_json(),
    }


def _verdict_from(data: dict[str, Any]) -> MetricVerdict:
    return MetricVerdict(
        metric=str(data["metric"]),
        phase=VerdictPhase(data["phase"]),
        reason=str(data["reason"]),
        canary_value=data["canaryValue"],
        stable_value=data["stableValue"],
        samples=int(data["samples"]),
        p_value=data["pValue"],
        explanation=(
            Explanation.from_json(data["explanation"]) if data.get("explanation") else None
        ),
    )

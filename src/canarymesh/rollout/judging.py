"""Judging the metric windows of one observation: which windows count, which judge reads which
metric, what that does to the failed-check count. Pure; called by
:mod:`canarymesh.rollout.machine` in every phase where the canary takes traffic.

Rules:

* A window counts only if it starts at or after the moment the current weights were verified,
  and after the last window already judged: a window that straddles two weights (or was seen
  before) is discarded, so every number belongs to one traffic split.
* ``judge: statistical``: the built-in metrics go through the sequential test, whose evidence
  accumulates over the whole rollout; a rejection rolls back at once (the test's ``alpha`` is
  the false-alarm budget). Custom metrics are checked against their ``thresholdRange``.
* ``judge: threshold``: every metric of every window is a check; a window with a failed check
  adds one failed check, and ``failureLimit`` of them roll back (Flagger's threshold).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from canarymesh.analysis import statistical, threshold
from canarymesh.analysis.statistical import Evidence
from canarymesh.analysis.verdict import MetricVerdict, VerdictPhase, worst
from canarymesh.analysis.windows import INGRESS_SCOPE, Window
from canarymesh.api.canary import BUILTIN_METRICS, Canary, MetricCheck
from canarymesh.rollout.state import CanaryState

__all__ = ["Judgement", "judge_windows", "scoped_name", "sequential_alpha", "usable_windows"]


@dataclass(frozen=True, slots=True)
class Judgement:
    """The state after judging, the reason to roll back (None: no reason), and how many
    windows were measured (partly) before the current weights applied."""

    state: CanaryState
    rollback: str | None = None
    discarded: int = 0


def usable_windows(state: CanaryState, windows: tuple[Window, ...]) -> tuple[Window, ...]:
    if state.verified_at is None:
        return ()
    after = state.verified_at
    if state.analysed_until is not None and state.analysed_until > after:
        after = state.analysed_until
    return tuple(sorted((w for w in windows if w.start >= after), key=lambda w: w.start))


def judge_windows(state: CanaryState, spec: Canary, windows: tuple[Window, ...]) -> Judgement:
    usable = usable_windows(state, windows)
    verified = state.verified_at
    discarded = sum(1 for w in windows if verified is not None and w.start < verified)
    for window in usable:
        state, rollback = _judge_one(state, spec, window)
        if rollback is not None:
            return Judgement(state, rollback, discarded)
    return Judgement(state, None, discarded)


def _judge_one(state: CanaryState, spec: Canary, window: Window) -> tuple[CanaryState, str | None]:
    checks = spec.metric_checks()
    sequential = [c for c in checks if _is_sequential(spec, c)]
    evidence = dict(state.evidence)
    verdicts: list[MetricVerdict] = []
    alpha = sequential_alpha(spec)
    checked = [c for c in checks if not _is_sequential(spec, c)]
    check_verdicts: list[MetricVerdict] = []
    # A release group's window has a part per member and one for the ingress: each is its own
    # comparison, with its own evidence, so a verdict says which part decided it.
    for scope, part in window.parts():
        for check in sequential:
            key = scoped_name(scope, check.name)
            tolerance = check.tolerance or statistical.DEFAULT_TOLERANCE[check.name]
            evidence[key], verdict = statistical.judge(
                check.name,
                evidence.get(key, Evidence()),
                part,
                alpha=alpha,
                min_requests=spec.analysis.min_requests,
                tolerance=tolerance,
            )
            verdicts.append(_in_scope(scope, verdict))
        check_verdicts += [_in_scope(scope, v) for v in threshold.judge_window(part, checked)]
    failed = any(v.phase is VerdictPhase.FAILED for v in check_verdicts)
    passed = all(v.phase is VerdictPhase.SUCCESSFUL for v in (*verdicts, *check_verdicts))
    all_verdicts = (*verdicts, *check_verdicts)
    state = state.with_analysis(
        evidence, all_verdicts, window.end, failed=int(failed), passed=int(passed)
    )
    rejected = [v for v in verdicts if v.phase is VerdictPhase.FAILED]
    if rejected:
        return state, f"{rejected[0].reason}: rolling back"
    limit = spec.analysis.failure_limit
    if failed and state.failed_checks >= limit:
        first = worst(check_verdicts)
        assert first is not None  # failed implies at least one verdict
        counts = f"failed checks {state.failed_checks} >= failureLimit {limit}"
        return state, f"{first.reason} ({counts}): rolling back"
    return state, None


def sequential_alpha(spec: Canary) -> float:
    """Each sequential test's share of ``alpha`` (Bonferroni over the sequential metrics, and
    over the parts of a release group: the ingress and each member)."""
    count = sum(1 for check in spec.metric_checks() if _is_sequential(spec, check))
    parts = 1 + len(spec.group.members) if spec.group is not None else 1
    return spec.analysis.alpha / max(count * parts, 1)


def scoped_name(scope: str, metric: str) -> str:
    """The evidence key of ``metric`` in one part of a release group (``ratings/...``)."""
    return f"{scope}/{metric}" if scope else metric


def _in_scope(scope: str, verdict: MetricVerdict) -> MetricVerdict:
    if not scope:
        return verdict
    who = "ingress (end to end)" if scope == INGRESS_SCOPE else f"member {scope}"
    return replace(verdict, metric=scoped_name(scope, verdict.metric),
                   reason=f"release group {who}: {verdict.reason}")  # fmt: skip


def _is_sequential(spec: Canary, check: MetricCheck) -> bool:
    return (
        spec.analysis.judge == "statistical"
        and check.query is None
        and check.name in BUILTIN_METRICS
    )

"""Judging the metric windows of one observation: which windows count, which judge reads which
metric, what that does to the rollout. Pure; called by :mod:`canarymesh.rollout.machine` in
every phase where the canary takes traffic.

Rules:

* A window counts only if it starts after the last window already judged (none is seen twice).
  For the threshold judge it must also start at or after the moment the current weights were
  verified: a window that straddles two weights is discarded, so every rate belongs to one
  traffic split. The statistical judge compares counts, not rates, whatever the split was, so
  its windows run on across weight changes and no request goes unjudged.
* ``judge: statistical``: the built-in metrics go through the sequential tests of
  :mod:`canarymesh.analysis.statistical`, whose evidence accumulates over the whole rollout (the
  windows are as short as the controller makes them, a second); a rejection rolls back at once,
  each metric's share of ``alpha`` being its false-alarm budget. Custom metrics are checked
  against their ``thresholdRange`` once per analysis interval (the windows that carry their
  values).
* ``judge: threshold``: every metric of every window is a check; a window with a failed check
  adds one failed check, and ``failureLimit`` of them roll back (Flagger's threshold).
* Adaptive mode (:func:`gate_cleared`): an analysis step may end early once every statistical
  metric's evidence rules out the regression of its gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from canarymesh.analysis import statistical, threshold
from canarymesh.analysis.baseline import Baseline
from canarymesh.analysis.planning import Gate
from canarymesh.analysis.statistical import MetricTest
from canarymesh.analysis.verdict import MetricVerdict, VerdictPhase, worst
from canarymesh.analysis.windows import INGRESS_SCOPE, Window
from canarymesh.api.canary import BUILTIN_METRICS, Canary, MetricCheck
from canarymesh.rollout.state import CanaryState

__all__ = [
    "Judgement",
    "gate_cleared",
    "is_sequential",
    "judge_windows",
    "scoped_name",
    "scopes",
    "sequential_alpha",
    "start_tests",
    "usable_windows",
]


@dataclass(frozen=True, slots=True)
class Judgement:
    """The state after judging, the reason to roll back (None: no reason), and how many
    windows were measured (partly) before the current weights applied."""

    state: CanaryState
    rollback: str | None = None
    discarded: int = 0


def usable_windows(
    state: CanaryState, windows: tuple[Window, ...], continuous: bool = False
) -> tuple[Window, ...]:
    """The windows to judge, oldest first; ``continuous`` (statistical judge): across weight
    changes."""
    after = state.verified_at
    if continuous and state.analysed_until is not None:
        after = state.analysed_until
    if after is None:
        return ()
    if state.analysed_until is not None and state.analysed_until > after:
        after = state.analysed_until
    return tuple(sorted((w for w in windows if w.start >= after), key=lambda w: w.start))


def start_tests(spec: Canary, baseline: Baseline | None) -> tuple[tuple[str, MetricTest], ...]:
    """A fresh test for every statistical metric of ``spec``, from the stable's history; for a
    release group, one per metric and part (the ingress, then each member)."""
    return tuple(
        (scoped_name(scope, check.name), statistical.start(check, _baseline(scope, baseline)))
        for scope in scopes(spec)
        for check in spec.metric_checks()
        if is_sequential(spec, check)
    )


def scopes(spec: Canary) -> tuple[str, ...]:
    """The parts judged apart: ``""`` (the one service), or a release group's ingress and
    members (by short host, as :func:`canarymesh.controller.observe.measure` names them)."""
    if spec.group is None:
        return ("",)
    return (INGRESS_SCOPE, *(m.host.split(".", 1)[0] for m in spec.group.members))


def scoped_name(scope: str, metric: str) -> str:
    """The test's key of ``metric`` in one part of a release group (``ratings/...``)."""
    return f"{scope}/{metric}" if scope else metric


def _baseline(scope: str, baseline: Baseline | None) -> Baseline | None:
    # A group's baseline is the ingress's traffic before the rollout; members start without.
    return baseline if scope in ("", INGRESS_SCOPE) else None


def _in_scope(scope: str, verdict: MetricVerdict) -> MetricVerdict:
    if not scope:
        return verdict
    who = "ingress (end to end)" if scope == INGRESS_SCOPE else f"member {scope}"
    return replace(verdict, metric=scoped_name(scope, verdict.metric),
                   reason=f"release group {who}: {verdict.reason}")  # fmt: skip


def judge_windows(state: CanaryState, spec: Canary, windows: tuple[Window, ...]) -> Judgement:
    usable = usable_windows(state, windows, continuous=spec.analysis.judge == "statistical")
    discarded = len(windows) - len(usable)
    for window in usable:
        state, rollback = _judge_one(state, spec, window)
        if rollback is not None:
            return Judgement(state, rollback, discarded)
    return Judgement(state, None, discarded)


def _judge_one(state: CanaryState, spec: Canary, window: Window) -> tuple[CanaryState, str | None]:
    checks = spec.metric_checks()
    tests = dict(state.tests)
    if not tests and any(is_sequential(spec, c) for c in checks):
        tests = dict(start_tests(spec, state.baseline))
    verdicts: list[MetricVerdict] = []
    seconds = max(1.0, (window.end - window.start).total_seconds())
    idle_limit = spec.interval().total_seconds()
    # A release group's window has a part per member and one for the ingress: each is its own
    # comparison, with its own test, so a verdict says which part decided it.
    for scope, part in window.parts():
        rate = part.canary.requests / seconds
        for check in checks:
            if not is_sequential(spec, check):
                continue
            key = scoped_name(scope, check.name)
            test = tests.get(key) or statistical.start(check, _baseline(scope, state.baseline))
            tests[key] = statistical.observe(test, part)
            verdict = statistical.verdict(
                tests[key],
                alpha=sequential_alpha(spec, check.name),
                min_requests=spec.analysis.min_requests,
                idle_limit=idle_limit,
                canary_rate=rate,
            )
            verdicts.append(_in_scope(scope, verdict))
    checked = [c for c in checks if not is_sequential(spec, c)]
    judged_checks = bool(checked) and (spec.analysis.judge == "threshold" or bool(window.custom))
    check_verdicts = tuple(
        _in_scope(scope, v)
        for scope, part in window.parts()
        for v in (threshold.judge_window(part, checked) if judged_checks else ())
    )
    failed = any(v.phase is VerdictPhase.FAILED for v in check_verdicts)
    everything = (*verdicts, *check_verdicts)
    if not judged_checks:  # keep the custom checks' last verdicts on show
        kept = [v for v in state.verdicts if v.metric in {c.name for c in checked}]
        everything = (*verdicts, *kept)
    passed = all(v.phase is VerdictPhase.SUCCESSFUL for v in everything)
    state = state.with_analysis(
        tests,
        everything,
        window.end,
        failed=int(failed),
        passed=int(passed),
        checked=window.end if judged_checks else None,
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


def gate_cleared(state: CanaryState, spec: Canary, gate: Gate, last: bool) -> tuple[bool, str]:
    """Whether every statistical metric's evidence clears ``gate`` (the last gate also needs
    ``minRequests``), and a sentence saying how far each one is."""
    parts, cleared = [], True
    for metric, test in state.tests:
        ratio = test.effect * gate.factor
        have = test.evidence.log_futility(ratio)
        ok = have >= gate.need
        if last and test.evidence.canary_requests < spec.analysis.min_requests:
            ok = False
        cleared &= ok
        parts.append(
            f"{metric} rules out {ratio:.2g}x at {math.exp(min(have, 50)):.1f} to 1 "
            f"(needs {math.exp(gate.need):.1f})"
        )
    return cleared and bool(state.tests), "; ".join(parts)


def leaning_fine(state: CanaryState, gate: Gate, last: bool) -> bool:
    """Adaptive mode's fallback at a step's end: no metric holds, and every statistical
    metric's evidence favours the canary over its effect size by at least :data:`LEANING`
    (log odds), or, before a promotion, by half of what the last gate asks."""
    verdict = worst(state.verdicts)
    if verdict is not None and verdict.phase is not VerdictPhase.SUCCESSFUL:
        return False
    need = gate.need / 2 if last else LEANING
    return all(t.evidence.log_futility(t.effect) >= need for _, t in state.tests)


def not_leaning_bad(state: CanaryState) -> bool:
    """Every statistical metric's evidence favours the canary at least as much as its effect
    size (log odds >= 0): what adaptive mode asks before a long hold ends without a gate."""
    return all(t.evidence.log_futility(t.effect) >= 0 for _, t in state.tests)


# Log odds by which the evidence must favour the canary over its effect size for an adaptive
# step to end at its duration without clearing its gate (e^0.5: about 1.6 to 1); a promotion
# that way needs half the last gate's log odds (5.8 to 1 at power 0.97).
LEANING = 0.5


# How ``alpha`` is shared between the statistical metrics (a weighted Bonferroni split): errors
# are the sparse signal (a fraction of a percent of the requests against the few percent above a
# latency bound), so they get the larger share, and latency, with more data per second, pays
# less for its smaller one.
ALPHA_WEIGHTS = {statistical.SUCCESS: 3.0, statistical.LATENCY: 1.0}


def sequential_alpha(spec: Canary, metric: str | None = None) -> float:
    """``metric``'s share of ``alpha`` (a weighted Bonferroni split over the sequential
    metrics, :data:`ALPHA_WEIGHTS`, and evenly over a release group's parts); without
    ``metric``, the smallest share. ``metric`` may carry its part (``ratings/...``)."""
    names = [c.name for c in spec.metric_checks() if is_sequential(spec, c)]
    if not names:
        return spec.analysis.alpha
    metric = metric.rpartition("/")[2] if metric is not None else None
    total = sum(ALPHA_WEIGHTS.get(name, 1.0) for name in names) * len(scopes(spec))
    weights = [ALPHA_WEIGHTS.get(name, 1.0) for name in names]
    mine = ALPHA_WEIGHTS.get(metric, 1.0) if metric in names else min(weights)
    return spec.analysis.alpha * mine / total


def is_sequential(spec: Canary, check: MetricCheck) -> bool:
    return (
        spec.analysis.judge == "statistical"
        and check.query is None
        and check.name in BUILTIN_METRICS
    )

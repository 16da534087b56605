"""What a plan can see at the traffic it will get: before the first step, from the stable's
measured traffic (:class:`~canarymesh.analysis.baseline.Baseline`), the smallest regression of
each metric the statistical judge catches (with :data:`SIGHT` probability) by the end of each
analysis step, the chance it catches the metric's ``effectSize`` before the plan ends, how soon
(the median), and, in adaptive mode, when a healthy canary can expect to be promoted. Pure; called
by :mod:`canarymesh.rollout.machine` when a rollout starts, shown by ``rollout status`` and the
dashboard, which warn when the plan cannot see the regressions it names.

The arithmetic is the test's own, simplified: a regression ``r`` times the stable's rate ``p`` of
bad requests gives the canary ``r p N`` bad requests among ``N``; the test rejects when the
likelihood ratio of one of its alternatives beats ``1/alpha`` times the number of alternatives.
Looking only at the step's end (not at every second) makes the estimate cautious; taking the
stable's rate as known makes it a little hopeful; ``canarymesh rollout simulate`` measures the real
thing.

Adaptive mode's gates are here too (:func:`gates`): before leaving analysis step ``k`` of ``K``,
the evidence must rule out a regression ``effect * GATE_SPREAD ** ((K - k) / (K - 1))`` times the
stable (a large one first, the effect size last) by ``(k / K) ** 2`` of the log odds the
``power`` asks for (odds 1.5 to 1 at the first of three steps, 33 to 1 at the last): each
weight is given once the regressions it could not afford are unlikely, and a canary that is bad
but not catastrophic reaches the weights where its badness shows sooner.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from canarymesh.analysis.evidence import GRID, NULL_INDEX, WEIGHTS

__all__ = [
    "GATE_SPREAD",
    "SIGHT",
    "Gate",
    "MetricSight",
    "PlanAssessment",
    "Segment",
    "StepSight",
    "assess",
    "catch_probability",
    "gates",
]

SIGHT = 0.9  # "can see": catches the regression with at least this probability
GATE_SPREAD = 10.0  # adaptive: the first gate rules out regressions this many times the effect
_SHARES = tuple(w / sum(WEIGHTS) for w in WEIGHTS)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the plan: ``seconds`` at ``weight`` percent; ``step`` is the (1-based)
    number of the analysis step it belongs to, 0 for the stretch before an analysis ends."""

    weight: float
    seconds: float
    step: int = 0


@dataclass(frozen=True, slots=True)
class Gate:
    """Adaptive mode: leave analysis step ``step`` once every metric's evidence rules out a
    regression ``factor`` times its effect size by ``need`` (log odds)."""

    step: int
    factor: float
    need: float


@dataclass(frozen=True, slots=True)
class StepSight:
    step: int
    weight: float
    canary_requests: float
    smallest: float | None  # ratio caught with SIGHT probability by the step's end (None: >100x)


@dataclass(frozen=True, slots=True)
class MetricSight:
    """One metric's view of the plan. Ratios are of the canary's rate of bad requests to the
    stable's (``bad_rate``); ``effect`` is the metric's ``effectSize`` in those terms."""

    metric: str
    bad_rate: float
    effect_size: float
    effect: float
    steps: tuple[StepSight, ...]
    catch: float
    median_seconds: float | None
    promote_seconds: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "badRate": self.bad_rate,
            "effectSize": self.effect_size,
            "effect": self.effect,
            "steps": [
                {
                    "step": s.step,
                    "weight": s.weight,
                    "canaryRequests": s.canary_requests,
                    "smallest": s.smallest,
                }
                for s in self.steps
            ],  # fmt: skip
            "catch": self.catch,
            "medianSeconds": self.median_seconds,
            "promoteSeconds": self.promote_seconds,
        }

    @staticmethod
    def from_json(data: dict[str, object]) -> MetricSight:
        steps = data["steps"]
        assert isinstance(steps, list)
        return MetricSight(
            metric=str(data["metric"]),
            bad_rate=_num(data["badRate"]),
            effect_size=_num(data["effectSize"]),
            effect=_num(data["effect"]),
            steps=tuple(
                StepSight(
                    int(s["step"]),
                    _num(s["weight"]),
                    _num(s["canaryRequests"]),
                    None if s["smallest"] is None else _num(s["smallest"]),
                )
                for s in steps
            ),  # fmt: skip
            catch=_num(data["catch"]),
            median_seconds=_opt(data["medianSeconds"]),
            promote_seconds=_opt(data["promoteSeconds"]),
        )


@dataclass(frozen=True, slots=True)
class PlanAssessment:
    """What the plan can see at ``rps`` requests per second; ``warnings`` say what it cannot."""

    rps: float
    metrics: tuple[MetricSight, ...]
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "rps": self.rps,
            "metrics": [m.to_json() for m in self.metrics],
            "warnings": list(self.warnings),
        }

    @staticmethod
    def from_json(data: dict[str, object]) -> PlanAssessment:
        try:
            metrics, warnings = data["metrics"], data["warnings"]
            assert isinstance(metrics, list) and isinstance(warnings, list)
            return PlanAssessment(
                rps=_num(data["rps"]),
                metrics=tuple(MetricSight.from_json(m) for m in metrics),
                warnings=tuple(str(w) for w in warnings),
            )
        except (KeyError, AssertionError, TypeError, ValueError) as exc:
            raise ValueError(f"plan assessment is malformed: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class MetricPlan:
    """What :func:`assess` needs about one metric: its name, the stable's rate of bad requests,
    the tolerance and the effect size (ratios of bad-request rates; ``effect_size`` as the
    user wrote it, for the words), and its share of the false-alarm budget."""

    metric: str
    bad_rate: float
    tolerance: float
    effect: float
    effect_size: float
    alpha: float


def gates(analysis_steps: int, power: float) -> tuple[Gate, ...]:
    """Adaptive mode's gate for each of ``analysis_steps`` analysis steps (the last promotes)."""
    total = max(analysis_steps, 1)
    need = math.log(1.0 / max(1.0 - power, 1e-6))
    out = []
    for k in range(1, total + 1):
        spread = (total - k) / (total - 1) if total > 1 else 0.0
        out.append(Gate(k, GATE_SPREAD**spread, need * (k / total) ** 2))
    return tuple(out)


def catch_probability(
    requests: float, rate: float, ratio: float, tolerance: float, alpha: float
) -> float:
    """The chance that ``requests`` canary requests with bad ones at ``ratio`` times the stable's
    ``rate`` (``ratio`` above ``tolerance``) make the test reject at ``alpha``."""
    null = requests * rate * tolerance  # expected bad requests of a canary at the tolerance
    if null <= 0 or ratio <= tolerance:
        return 0.0
    mean = requests * rate * ratio
    best = 0.0
    for rho, share in zip(GRID[NULL_INDEX + 1 :], _SHARES, strict=True):
        target = math.log(1.0 / (share * alpha))
        count = math.ceil((target + null * (rho - 1)) / math.log(rho))
        best = max(best, _poisson_at_least(count, mean))
    return best


def assess(
    segments: Sequence[Segment],
    rps: float,
    metrics: Sequence[MetricPlan],
    *,
    power: float,
    min_requests: int,
    adaptive: bool,
) -> PlanAssessment:
    """What the plan of ``segments`` can see of each metric at ``rps`` requests per second."""
    warnings = []
    if rps <= 0:
        warnings.append(
            "no traffic measured before the rollout: the plan's power cannot be told "
            "(canarymesh rollout simulate --rps shows it for a rate you expect)"
        )
    sights = []
    analysis_steps = sorted({s.step for s in segments if s.step})
    for metric in metrics:
        sight = _sight(segments, rps, metric, power, min_requests, adaptive, analysis_steps)
        sights.append(sight)
        if rps > 0 and sight.catch < power:
            warnings.append(_cannot_see(sight, metric, rps, power, segments, adaptive))
    return PlanAssessment(rps, tuple(sights), tuple(warnings))


def _sight(
    segments: Sequence[Segment],
    rps: float,
    metric: MetricPlan,
    power: float,
    min_requests: int,
    adaptive: bool,
    analysis_steps: Sequence[int],
) -> MetricSight:
    steps, requests, elapsed = [], 0.0, 0.0
    alpha = metric.alpha
    median: float | None = None
    for segment in segments:
        share = rps * segment.weight / 100.0
        if median is None and share > 0:
            median = _median_within(requests, share, segment.seconds, metric, alpha, elapsed)
        requests += share * segment.seconds
        elapsed += segment.seconds
        if segment.step:
            smallest = _smallest(requests, metric, alpha)
            steps.append(StepSight(segment.step, segment.weight, requests, smallest))
    catch = catch_probability(requests, metric.bad_rate, metric.effect, metric.tolerance, alpha)
    promote = None
    if adaptive and rps > 0:
        promote = _promotion(segments, rps, metric, power, min_requests, analysis_steps)
    return MetricSight(
        metric.metric,
        metric.bad_rate,
        metric.effect_size,
        metric.effect,
        tuple(steps),
        catch,
        median,
        promote,
    )


def _median_within(
    before: float, share: float, seconds: float, metric: MetricPlan, alpha: float, at: float
) -> float | None:
    """The first second of this segment by which the effect size is caught half the time."""
    step = max(5.0, seconds / 24)
    t = 0.0
    while t <= seconds:
        chance = catch_probability(
            before + share * t, metric.bad_rate, metric.effect, metric.tolerance, alpha
        )
        if chance >= 0.5:
            return at + t
        t += step
    return None


def _smallest(requests: float, metric: MetricPlan, alpha: float) -> float | None:
    """The smallest ratio caught with SIGHT probability after ``requests`` (bisection)."""
    low, high = metric.tolerance * 1.01, metric.tolerance * 100.0
    if catch_probability(requests, metric.bad_rate, high, metric.tolerance, alpha) < SIGHT:
        return None
    for _ in range(30):
        middle = math.sqrt(low * high)
        chance = catch_probability(requests, metric.bad_rate, middle, metric.tolerance, alpha)
        low, high = (middle, high) if chance < SIGHT else (low, middle)
    return high


def _promotion(
    segments: Sequence[Segment],
    rps: float,
    metric: MetricPlan,
    power: float,
    min_requests: int,
    analysis_steps: Sequence[int],
) -> float | None:
    """Adaptive mode: the expected time a healthy canary takes to clear every gate (the
    expected evidence for it grows by KL(tolerance || ratio) per expected bad request)."""
    plan_gates = gates(len(analysis_steps), power)
    evidence = dict.fromkeys(range(len(plan_gates)), 0.0)
    requests, elapsed, index = 0.0, 0.0, 0
    weights = [s.weight for s in segments if s.step]
    if not weights:
        return None
    tau = metric.tolerance
    while index < len(plan_gates) and elapsed < 24 * 3600:
        weight = weights[min(index, len(weights) - 1)]
        share = rps * weight / 100.0
        for g, gate in enumerate(plan_gates):
            ratio = metric.effect * gate.factor
            evidence[g] += share * metric.bad_rate * (ratio - tau - tau * math.log(ratio / tau))
        requests += share
        elapsed += 1.0
        gate = plan_gates[index]
        last = index == len(plan_gates) - 1
        if evidence[index] >= gate.need and (not last or requests >= min_requests):
            index += 1
    return elapsed if index == len(plan_gates) else None


def _cannot_see(
    sight: MetricSight,
    metric: MetricPlan,
    rps: float,
    power: float,
    segments: Sequence[Segment],
    adaptive: bool,
) -> str:
    top = max((s.weight for s in segments), default=0.0)
    needed = _requests_for(metric, metric.alpha, power)
    what = "errors" if metric.metric == "request-success-rate" else "slow requests"
    if needed >= 1e8:
        return (
            f"{metric.metric}: this plan cannot see a {metric.effect_size:g}x regression at any "
            f"traffic: counted in the histogram's buckets it is hardly worse than the tolerance "
            f"allows (a {metric.effect:.2g}x rate of {what})"
        )
    text = (
        f"{metric.metric}: at {rps:.3g} req/s this plan catches a {metric.effect_size:g}x "
        f"regression only {100 * sight.catch:.0f}% of the time by its end (it needs about "
        f"{needed:.0f} canary requests with {100 * metric.bad_rate:.2g}% {what}"
    )
    if top > 0 and needed is not None:
        seconds = needed / (rps * top / 100.0)
        text += f": {_words(seconds)} at {top:g}%"
    text += ")"
    if adaptive:
        text += "; adaptive mode holds a suspicious canary until the evidence decides"
    return text


def _requests_for(metric: MetricPlan, alpha: float, power: float) -> float:
    low, high = 1.0, 1e9
    for _ in range(40):
        middle = math.sqrt(low * high)
        chance = catch_probability(middle, metric.bad_rate, metric.effect, metric.tolerance, alpha)
        low, high = (middle, high) if chance < power else (low, middle)
    return high


def _poisson_at_least(count: int, mean: float) -> float:
    """P(Poisson(mean) >= count): summed from the nearer tail, in at most 60 terms beyond
    which the terms no longer matter at the precision wanted here."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if count > mean:  # sum the upper tail from count up
        log_term = count * math.log(mean) - mean - math.lgamma(count + 1)
        total = 0.0
        for k in range(count, count + 60):
            term = math.exp(log_term)
            total += term
            if term <= total * 1e-9:
                break
            log_term += math.log(mean / (k + 1))
        return min(1.0, total)
    # count <= mean: one minus the lower tail, summed down from count - 1
    k = count - 1
    log_term = k * math.log(mean) - mean - math.lgamma(k + 1)
    below = 0.0
    while k >= 0 and k >= count - 1 - 60:
        term = math.exp(log_term)
        below += term
        if term <= below * 1e-9:
            break
        log_term += math.log(k / mean) if k > 0 else 0.0
        k -= 1
    return max(0.0, 1.0 - below)


def _words(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _num(value: object) -> float:
    if not isinstance(value, int | float):
        raise ValueError(f"expected a number, not {value!r}")
    return float(value)


def _opt(value: object) -> float | None:
    return None if value is None else _num(value)

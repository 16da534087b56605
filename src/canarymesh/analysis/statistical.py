"""The statistical judge: is the canary worse than the stable? Pure; called by
:mod:`canarymesh.rollout.judging` for every judged window (as short as a second), with the test of
each metric kept in the rollout's state (so a restarted controller continues the same test).

Both built-in metrics are tests of *bad requests*: 5xx answers for ``request-success-rate``,
slow answers for ``request-duration``. A stable request is slow above the bucket bound that holds
the stable's 99th percentile (learnt from its history, :func:`.baseline.slow_bound`); a canary
request, above the smallest bound at least ``tolerance`` times that one (a canary that does more
work may be that much slower). If the canary's durations are at most ``tolerance`` times the
stable's, its share of slow requests is at most the stable's, so both metrics test the same
hypothesis: the canary's rate of bad requests is at most ``tolerance`` (errors) or 1 (latency)
times the stable's. The evidence (:mod:`canarymesh.analysis.evidence`) is a likelihood ratio that
keeps its false-alarm guarantee whatever the number of looks, and learns the stable's level from
its history without letting spikes both versions share, or one side's bursts, pass for the
canary's doing. ``docs/judge.md`` has the whole argument.

Verdicts, each with an :class:`~canarymesh.analysis.verdict.Explanation`:

* **Failed**: the always-valid p-value is below ``alpha`` (the metric's share of the rollout's).
* **NoData**: the canary served nothing for a whole analysis interval.
* **Inconclusive**: fewer canary requests than ``minRequests``; or the evidence against the
  canary is :data:`HOLD_RATIO` to 1 or more (a suspicious canary is watched longer, not promoted);
  or, for latency, no bound learnt yet. The explanation says what would settle it.
* **Successful** otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from canarymesh.analysis.baseline import Baseline, above, slow_bound
from canarymesh.analysis.evidence import Evidence, Prior, update
from canarymesh.analysis.verdict import Explanation, MetricVerdict, VerdictPhase
from canarymesh.analysis.windows import Buckets, Counts, Window, count_above
from canarymesh.api.canary import MetricCheck

__all__ = [
    "DEFAULT_EFFECT",
    "DEFAULT_TOLERANCE",
    "HOLD_RATIO",
    "LATENCY",
    "SUCCESS",
    "MetricTest",
    "Slow",
    "effect_of",
    "observe",
    "start",
    "tolerance_of",
    "verdict",
]

SUCCESS = "request-success-rate"
LATENCY = "request-duration"
# Ratios of the canary's value to the stable's (error rates; latencies) the canary may have
# before it counts as worse, and (times the tolerance) that the rollout must catch, unless a
# metric says otherwise.
DEFAULT_TOLERANCE = {SUCCESS: 1.0, LATENCY: 1.0}
DEFAULT_EFFECT = {SUCCESS: 3.0, LATENCY: 1.5}
# A step does not pass while the evidence against the canary is at least this many to 1: a
# suspicious canary is watched longer instead of promoted. Ville's inequality covers any horizon,
# so holding costs no false alarms; a healthy canary's evidence decays.
HOLD_RATIO = 10.0
# Stable requests needed (history included) before the latency bound is chosen.
MIN_STABLE_FOR_BOUND = 200
# The smallest effect size (as a ratio of rates of bad requests) adaptive mode works with.
MIN_EFFECT = 1.2


@dataclass(frozen=True, slots=True)
class Slow:
    """What counts as slow (latency): above ``stable_ms`` for the stable, ``canary_ms`` for the
    canary."""

    stable_ms: float
    canary_ms: float


@dataclass(frozen=True, slots=True)
class MetricTest:
    """The running test of one built-in metric.

    ``effect``: the metric's effect size as a ratio of rates of bad requests (for latency,
    worked out from the stable's histogram). ``slow``: the latency bounds (None until the stable
    has shown enough requests; meanwhile ``learning`` gathers its histogram). ``idle``: seconds
    since the canary last served a request.
    """

    metric: str
    evidence: Evidence
    tolerance: float
    effect_size: float
    effect: float
    slow: Slow | None = None
    learning: Counts = Counts(0, 0)
    idle: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "evidence": self.evidence.to_json(),
            "tolerance": self.tolerance,
            "effectSize": self.effect_size,
            "effect": self.effect,
            "slowMs": None if self.slow is None else [self.slow.stable_ms, self.slow.canary_ms],
            "learning": Baseline(0.0, self.learning).to_json(),
            "idle": self.idle,
        }

    @staticmethod
    def from_json(data: dict[str, object]) -> MetricTest:
        try:
            evidence, learning, slow = data["evidence"], data["learning"], data["slowMs"]
            assert isinstance(evidence, dict) and isinstance(learning, dict)
            assert slow is None or (isinstance(slow, list) and len(slow) == 2)
            numbers = [data[k] for k in ("tolerance", "effectSize", "effect", "idle")]
            assert all(isinstance(n, int | float) for n in numbers)
            tolerance, effect_size, effect, idle = (float(n) for n in numbers)  # type: ignore[arg-type]
            return MetricTest(
                metric=str(data["metric"]),
                evidence=Evidence.from_json(evidence),
                tolerance=tolerance,
                effect_size=effect_size,
                effect=effect,
                slow=None if slow is None else Slow(float(slow[0]), float(slow[1])),
                learning=Baseline.from_json(learning).counts,
                idle=idle,
            )
        except (KeyError, AssertionError, TypeError) as exc:
            raise ValueError(f"metric test is malformed: {exc!r}") from exc


def tolerance_of(check: MetricCheck) -> float:
    return float(check.tolerance) if check.tolerance is not None else DEFAULT_TOLERANCE[check.name]


def effect_of(check: MetricCheck) -> float:
    """The regression to catch, as a ratio of the canary's value to the stable's: as written,
    or :data:`DEFAULT_EFFECT` times the tolerance (that much worse than what is allowed)."""
    if check.effect_size is not None:
        return float(check.effect_size)
    return DEFAULT_EFFECT[check.name] * tolerance_of(check)


def start(check: MetricCheck, baseline: Baseline | None) -> MetricTest:
    """The test of ``check`` before the first window, its belief taken from ``baseline``."""
    if check.name not in (SUCCESS, LATENCY):
        raise ValueError(f"the statistical judge has no test for {check.name}")
    history = baseline.counts if baseline is not None else Counts(0, 0)
    tolerance, effect_size = tolerance_of(check), effect_of(check)
    if check.name == SUCCESS:
        prior = Prior.from_history(history.errors, history.requests)
        evidence = Evidence.start(prior, tolerance)
        return MetricTest(SUCCESS, evidence, tolerance, effect_size, effect_size)
    test = MetricTest(LATENCY, Evidence.start(Prior()), tolerance, effect_size, effect_size)
    return _learn(test, history)


def observe(test: MetricTest, window: Window) -> MetricTest:
    """``test`` after ``window``."""
    seconds = max(1.0, (window.end - window.start).total_seconds())
    idle = 0.0 if window.canary.requests > 0 else test.idle + seconds
    test = replace(test, idle=idle)
    if test.metric == SUCCESS:
        canary = (window.canary.requests, window.canary.errors)
        stable = (window.stable.requests, window.stable.errors)
        return replace(test, evidence=update(test.evidence, canary, stable, seconds))
    if test.slow is None:
        test = _learn(test, window.stable)
    if test.slow is None or (not window.canary.buckets and not window.stable.buckets):
        return test
    canary = (window.canary.requests, _above(test.slow.canary_ms, window.canary.buckets))
    stable = (window.stable.requests, _above(test.slow.stable_ms, window.stable.buckets))
    return replace(test, evidence=update(test.evidence, canary, stable, seconds))


def _learn(test: MetricTest, stable: Counts) -> MetricTest:
    """Latency: add ``stable``'s histogram to what is known, and choose the bounds once the
    stable has shown enough requests."""
    learning = _merge(test.learning, stable)
    bound = slow_bound(learning) if learning.requests >= MIN_STABLE_FOR_BOUND else None
    if bound is None:
        return replace(test, learning=learning)
    canary_bound = next(
        (b for b, _ in learning.buckets if b >= test.tolerance * bound * (1 - 1e-9)), math.inf
    )
    slow_share = count_above(bound, learning.buckets) / max(learning.buckets[-1][1], 1)
    # The canary as slow as effectSize: its durations effectSize times the stable's, so its
    # share above canary_bound is the stable's share above canary_bound / effectSize.
    shifted = above(learning, canary_bound / test.effect_size)
    effect = max(MIN_EFFECT, shifted / slow_share) if slow_share > 0 else test.effect_size
    prior = Prior.from_history(count_above(bound, learning.buckets), learning.buckets[-1][1])
    return replace(
        test,
        evidence=Evidence.start(prior),
        slow=Slow(bound, canary_bound),
        effect=effect,
        learning=learning,
    )


def verdict(
    test: MetricTest,
    *,
    alpha: float,
    min_requests: int,
    idle_limit: float,
    canary_rate: float | None = None,
) -> MetricVerdict:
    """What ``test`` concludes now, in words with the numbers; ``alpha`` is this metric's share
    of the false-alarm budget, ``canary_rate`` the canary's requests per second now (to say how
    long more data would take)."""
    ev, metric = test.evidence, test.metric
    if test.slow is None and metric == LATENCY:
        seen = test.learning.requests
        reason = (
            f"{metric}: learning what is slow for the stable ({seen} of "
            f"{MIN_STABLE_FOR_BOUND} requests seen)"
        )
        return MetricVerdict(metric, VerdictPhase.INCONCLUSIVE, reason)
    explanation = _explain(test, alpha)
    numbers = _numbers(test, explanation)

    def made(phase: VerdictPhase, reason: str, settle: str = "") -> MetricVerdict:
        return MetricVerdict(
            metric,
            phase,
            reason,
            canary_value=_percent(ev.canary_bad, ev.canary_requests),
            stable_value=_percent(ev.stable_bad, ev.stable_requests),
            samples=ev.canary_requests,
            p_value=ev.p_value,
            explanation=replace(explanation, settle=settle),
        )

    if ev.p_value < alpha:
        return made(VerdictPhase.FAILED, f"{numbers} < alpha {alpha:g}")
    if test.idle >= idle_limit:
        reason = (
            f"{metric}: no requests reached the canary in the last {test.idle:.0f}s; "
            "probably it is not receiving traffic"
        )
        return made(VerdictPhase.NO_DATA, reason)
    if ev.canary_requests < min_requests:
        missing = min_requests - ev.canary_requests
        settle = f"{missing} more canary requests{_at_rate(missing, canary_rate)}"
        tail = f": not enough canary requests yet ({ev.canary_requests} < {min_requests})"
        return made(VerdictPhase.INCONCLUSIVE, f"{numbers}{tail}; {settle} would settle it", settle)
    if ev.log_mixture >= math.log(HOLD_RATIO):
        odds = math.exp(ev.log_mixture)
        tail = (
            f" >= alpha {alpha:g}, but the evidence against the canary is {odds:.0f} to 1 "
            f"(>= {HOLD_RATIO:g}; rollback at {1 / alpha:.0f}): watching longer"
        )
        settle = _to_reject(test, alpha, canary_rate)
        if settle:
            tail += f"; {settle} would settle it"
        return made(VerdictPhase.INCONCLUSIVE, numbers + tail, settle)
    tail = f" >= alpha {alpha:g}: no evidence the canary is worse"
    return made(VerdictPhase.SUCCESSFUL, numbers + tail)


def needed_to_rule_out(test: MetricTest, ratio: float, need: float) -> float | None:
    """Canary requests a healthy canary still needs for the evidence to rule out ``ratio``
    (times the stable's rate of bad requests) by ``need`` (log odds): expected, None when the
    stable's rate is unknown."""
    ev = test.evidence
    gap = need - ev.log_futility(ratio)
    if gap <= 0:
        return 0.0
    rate = _stable_rate(test)
    tau = ev.tolerance
    per_bad = ratio - tau - tau * math.log(ratio / tau)  # KL(Poisson(tau) || Poisson(ratio))
    if rate is None or rate <= 0 or per_bad <= 0:
        return None
    return gap / (rate * per_bad)


# --- explanations ---------------------------------------------------------------------------


def _explain(test: MetricTest, alpha: float) -> Explanation:
    ev = test.evidence
    low, high = ev.interval(alpha)
    prior_requests = max(0, round(ev.prior.requests - 50.0))
    return Explanation(
        canary_requests=ev.canary_requests,
        canary_bad=ev.canary_bad,
        stable_requests=ev.stable_requests,
        stable_bad=ev.stable_bad,
        stable_before=prior_requests,
        ratio=ev.estimate(),
        ratio_low=low,
        ratio_high=high,
        confidence=1.0 - alpha,
        p_value=ev.p_value,
        alpha=alpha,
        tolerance=test.tolerance,
        effect_size=test.effect_size,
        canary_bound_ms=test.slow.canary_ms if test.slow else None,
        stable_bound_ms=test.slow.stable_ms if test.slow else None,
    )


def _numbers(test: MetricTest, e: Explanation) -> str:
    what = "errors" if test.metric == SUCCESS else "slow"
    canary = _percent(e.canary_bad, e.canary_requests) or 0.0
    stable = _percent(e.stable_bad, e.stable_requests) or 0.0
    if test.slow is not None:
        canary_part = f"{canary:.2f}% (> {test.slow.canary_ms:g} ms)"
        stable_part = f"{stable:.2f}% (> {test.slow.stable_ms:g} ms)"
    else:
        canary_part, stable_part = f"{canary:.2f}%", f"{stable:.2f}%"
    ratio = "ratio -" if e.ratio is None else f"ratio {_ratio(e.ratio)}"
    text = (
        f"{test.metric} canary {what} {canary_part} vs stable {stable_part} "
        f"(n={e.canary_requests}/{e.stable_requests}"
        f"{f', {e.stable_before} before the rollout' if e.stable_before else ''}), "
        f"{ratio} ({100 * e.confidence:g}% CI {_ratio(e.ratio_low)}-{_ratio(e.ratio_high)}), "
        f"sequential p={e.p_value:.2g}"
    )
    if test.tolerance != 1.0:
        text += f" (tolerance {test.tolerance:g}x)"
    return text


def _to_reject(test: MetricTest, alpha: float, canary_rate: float | None) -> str:
    """How much more data a canary as bad as it looks now would need to be rolled back."""
    ev = test.evidence
    estimate, rate = ev.estimate(), _stable_rate(test)
    if estimate is None or rate is None or estimate <= ev.tolerance:
        return ""
    tau = ev.tolerance
    per_bad = estimate * math.log(estimate / tau) - estimate + tau
    gap = math.log(1.0 / alpha) - ev.log_mixture
    if per_bad <= 0 or gap <= 0:
        return ""
    requests = gap / (rate * per_bad)
    return (
        f"if the canary is {estimate:.2g}x as bad as the stable, about {requests:.0f} more "
        f"canary requests{_at_rate(requests, canary_rate)}"
    )


def _stable_rate(test: MetricTest) -> float | None:
    ev = test.evidence
    requests = ev.prior.requests + ev.stable_requests
    return (ev.prior.bad + ev.stable_bad) / requests if requests > 0 else None


def _at_rate(requests: float, rate: float | None) -> str:
    if rate is None or rate <= 0:
        return ""
    seconds = requests / rate
    return f" (~{_duration(seconds)} at {rate:.1f} req/s)"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _ratio(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.0f}x" if value >= 10 else f"{value:.2g}x"


def _percent(bad: int, requests: int) -> float | None:
    return 100.0 * bad / requests if requests else None


def _above(bound: float, buckets: Buckets) -> int:
    if not buckets:
        return 0
    if math.isinf(bound):
        return 0
    known = {b for b, _ in buckets}
    if bound in known:
        return count_above(bound, buckets)
    # Bounds the histogram lacks (a different bucket layout): the nearest bound below counts.
    lower = max((b for b in known if b <= bound), default=None)
    return count_above(lower, buckets) if lower is not None else buckets[-1][1]


def _merge(total: Counts, more: Counts) -> Counts:
    if not more.buckets:
        return Counts(total.requests + more.requests, total.errors + more.errors, total.buckets)
    if not total.buckets:
        return Counts(total.requests + more.requests, total.errors + more.errors, more.buckets)
    mine = dict(total.buckets)
    merged = tuple((b, n + mine.get(b, 0)) for b, n in more.buckets)
    return Counts(total.requests + more.requests, total.errors + more.errors, merged)

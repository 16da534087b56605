"""The statistical judge: is the canary worse than the stable, measured over the same windows?
Pure; called by :mod:`canarymesh.rollout.machine` once per new window, with the evidence kept
in the rollout's state (so a restarted controller continues the same test).

The test, for errors (5xx) and for slow requests alike ("bad" requests):

* Per window, given how many requests each version served (``n_c``, ``n_s``) and how many bad
  requests there were in all (``b``), the number of bad ones that are the canary's is
  Binomial(b, q) with ``q = n_c / (n_c + n_s)`` if both versions are equally good (a Poisson
  model of bad requests; with binomial requests it is hypergeometric, which is less spread, so
  the test below only becomes more conservative). Canary vs stable at the same moment: the
  load, the time of day and the shared backends cancel out.
* If the canary is ``r`` times worse, that probability is ``q r / (q r + 1 - q)``. The product
  over windows of the likelihood ratios is a martingale under "equally good"; so is the average
  over the grid :data:`RATIOS` of alternatives (a mixture sequential probability ratio test,
  mSPRT). By Ville's inequality, the chance that the average *ever* reaches ``1/alpha`` for a
  healthy canary is at most ``alpha``, however often we look and however long the rollout runs:
  the test may stop at the first window with enough evidence. ``1 / max(average)`` is an
  always-valid p-value.
* Latency: a request is slow when it is above the lower bound of the bucket that holds the
  99th percentile of the *pooled* histogram of the window. Pooling keeps the test exact: if
  both versions have the same latency, which requests land above a bound chosen from the pool
  says nothing about their version. At low canary weight the pool is almost all stable, so the
  bound is close to the stable's p99 bucket.

* Tolerance: the null hypothesis can allow the canary ``tolerance`` times the stable's rate of
  bad requests (the likelihood ratio against that boundary is still a supermartingale for any
  rate below it). Defaults in :data:`DEFAULT_TOLERANCE`.

Several metrics share ``alpha`` (Bonferroni): each is tested at ``alpha / k``.

Verdicts: Failed when the always-valid p-value drops below ``alpha``; Inconclusive while the
canary has served fewer than ``min_requests``, or while the *current* evidence against it is
still :data:`HOLD_RATIO` to 1 or more (so a suspicious canary is watched longer, not promoted);
NoData when a version served nothing in the window; Successful otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from canarymesh.analysis.verdict import MetricVerdict, VerdictPhase
from canarymesh.analysis.windows import Counts, Window, count_above, p99_bound

__all__ = [
    "DEFAULT_TOLERANCE",
    "LATENCY",
    "RATIOS",
    "SUCCESS",
    "Evidence",
    "bad_counts",
    "judge",
    "update",
]

SUCCESS = "request-success-rate"
LATENCY = "request-duration"
# How many times the stable's share of bad requests the canary may have before it counts as
# worse, unless a metric sets ``tolerance``. Latency gets room: a new version that makes one more
# call (reviews v3 calls ratings, v1 does not) is slower by design, not broken.
DEFAULT_TOLERANCE = {SUCCESS: 1.0, LATENCY: 2.0}
# A step does not pass while the current evidence against the canary is at least this many to 1:
# a suspicious canary is watched longer instead of promoted. The false-alarm bound still holds
# (Ville's inequality covers an unlimited horizon), and a healthy canary's evidence decays.
HOLD_RATIO = 10
# Alternatives of the mixture: how many times more often a bad request comes from the canary.
RATIOS = (1.5, 2.0, 3.0, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class Evidence:
    """The running test of one metric: log likelihood ratio per alternative, totals, peak."""

    log_ratios: tuple[float, ...] = (0.0,) * len(RATIOS)
    canary_requests: int = 0
    canary_bad: int = 0
    stable_requests: int = 0
    stable_bad: int = 0
    peak: float = 0.0  # the highest log of the mixture seen so far

    @property
    def log_mixture(self) -> float:
        top = max(self.log_ratios)
        mean = sum(math.exp(v - top) for v in self.log_ratios) / len(self.log_ratios)
        return top + math.log(mean)

    @property
    def p_value(self) -> float:
        """Always valid: P(a healthy canary ever shows this much evidence) <= this."""
        return min(1.0, math.exp(-self.peak))

    def to_json(self) -> dict[str, object]:
        return {
            "logRatios": list(self.log_ratios),
            "canary": [self.canary_requests, self.canary_bad],
            "stable": [self.stable_requests, self.stable_bad],
            "peak": self.peak,
        }

    @staticmethod
    def from_json(data: dict[str, object]) -> Evidence:
        canary, stable, ratios = data["canary"], data["stable"], data["logRatios"]
        if not (isinstance(canary, list) and isinstance(stable, list)):
            raise ValueError("evidence needs canary and stable [requests, bad] pairs")
        if not isinstance(ratios, list) or len(ratios) != len(RATIOS):
            raise ValueError(f"evidence needs {len(RATIOS)} log ratios")
        peak = data["peak"]
        if not isinstance(peak, int | float):
            raise ValueError("evidence peak must be a number")
        return Evidence(
            tuple(float(v) for v in ratios),
            int(canary[0]),
            int(canary[1]),
            int(stable[0]),
            int(stable[1]),
            float(peak),
        )


def update(
    evidence: Evidence,
    canary: tuple[int, int],
    stable: tuple[int, int],
    tolerance: float = 1.0,
) -> Evidence:
    """``evidence`` after one window of (requests, bad) for each version.

    The null hypothesis is "the canary's bad-request rate is at most ``tolerance`` times the
    stable's"; the alternatives are :data:`RATIOS` times that.
    """
    (n_c, bad_c), (n_s, bad_s) = canary, stable
    totals = replace(
        evidence,
        canary_requests=evidence.canary_requests + n_c,
        canary_bad=evidence.canary_bad + bad_c,
        stable_requests=evidence.stable_requests + n_s,
        stable_bad=evidence.stable_bad + bad_s,
    )
    if n_c == 0 or n_s == 0 or bad_c + bad_s == 0:
        return totals  # the window carries no information about which version is worse
    p0 = _share(n_c / (n_c + n_s), tolerance)
    ratios = []
    for r, log_ratio in zip(RATIOS, evidence.log_ratios, strict=True):
        p1 = _share(n_c / (n_c + n_s), tolerance * r)
        ratios.append(log_ratio + bad_c * math.log(p1 / p0) + bad_s * math.log((1 - p1) / (1 - p0)))
    updated = replace(totals, log_ratios=tuple(ratios))
    return replace(updated, peak=max(updated.peak, updated.log_mixture))


def _share(q: float, ratio: float) -> float:
    """The canary's share of bad requests when it serves ``q`` of the requests and is ``ratio``
    times as likely to fail each."""
    return q * ratio / (q * ratio + 1 - q)


def bad_counts(metric: str, canary: Counts, stable: Counts) -> tuple[int, int] | None:
    """(canary bad, stable bad) in one window for ``metric``; None when it cannot be told."""
    if metric == SUCCESS:
        return canary.errors, stable.errors
    if metric == LATENCY:
        if not canary.buckets or not stable.buckets:
            return None
        pooled = _pool(canary, stable)
        bound = p99_bound(pooled)
        if bound is None:
            return 0, 0  # every request in the first bucket: none is slow
        return count_above(bound, canary.buckets), count_above(bound, stable.buckets)
    raise ValueError(f"the statistical judge has no test for {metric}")


def judge(
    metric: str,
    evidence: Evidence,
    window: Window,
    *,
    alpha: float,
    min_requests: int,
    tolerance: float = 1.0,
) -> tuple[Evidence, MetricVerdict]:
    """Add ``window`` to ``evidence`` and say what the test concludes now."""
    bad = bad_counts(metric, window.canary, window.stable)
    if window.canary.requests == 0 or window.stable.requests == 0 or bad is None:
        side = "canary" if window.canary.requests == 0 else "stable"
        reason = (
            f"{metric}: no requests reached the {side} in the window; "
            "probably it is not receiving traffic"
        )
        return evidence, MetricVerdict(metric, VerdictPhase.NO_DATA, reason)
    counts = (window.canary.requests, bad[0]), (window.stable.requests, bad[1])
    after = update(evidence, *counts, tolerance=tolerance)
    return after, _verdict(metric, after, alpha, min_requests, tolerance)


def _verdict(
    metric: str, ev: Evidence, alpha: float, min_requests: int, tolerance: float
) -> MetricVerdict:
    what = "errors" if metric == SUCCESS else "slow"
    canary_rate = 100.0 * ev.canary_bad / ev.canary_requests
    stable_rate = 100.0 * ev.stable_bad / ev.stable_requests if ev.stable_requests else 0.0
    numbers = (
        f"{metric} canary {what} {canary_rate:.2f}% vs stable {stable_rate:.2f}% "
        f"(n={ev.canary_requests}/{ev.stable_requests}), sequential p={ev.p_value:.2g}"
    )
    if tolerance != 1.0:
        numbers += f" (tolerance {tolerance:g}x)"
    if ev.p_value < alpha:
        phase, tail = VerdictPhase.FAILED, f" < alpha {alpha:g}"
    elif ev.canary_requests < min_requests:
        phase = VerdictPhase.INCONCLUSIVE
        tail = f": not enough canary requests yet ({ev.canary_requests} < {min_requests})"
    elif ev.log_mixture >= math.log(HOLD_RATIO):
        phase = VerdictPhase.INCONCLUSIVE
        tail = (
            f" >= alpha {alpha:g}, but the evidence against the canary is still "
            f"{math.exp(ev.log_mixture):.0f} to 1 (>= {HOLD_RATIO}): watching longer"
        )
    else:
        phase, tail = (
            VerdictPhase.SUCCESSFUL,
            f" >= alpha {alpha:g}: no evidence the canary is worse",
        )
    return MetricVerdict(
        metric,
        phase,
        numbers + tail,
        canary_value=canary_rate,
        stable_value=stable_rate,
        samples=ev.canary_requests,
        p_value=ev.p_value,
    )


def _pool(canary: Counts, stable: Counts) -> tuple[tuple[float, int], ...]:
    stable_counts = dict(stable.buckets)
    if set(stable_counts) != {bound for bound, _ in canary.buckets}:
        raise ValueError("canary and stable histograms must have the same bucket bounds")
    return tuple((bound, count + stable_counts[bound]) for bound, count in canary.buckets)

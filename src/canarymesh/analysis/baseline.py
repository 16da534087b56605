"""The stable's traffic before the rollout: how many requests it served over how long, how many
failed, how long they took. Pure; measured by the controller before the first step
(:func:`canarymesh.controller.observe.measure_baseline`), kept in the rollout's state, and read by
the statistical judge (its belief about the stable's rates starts here) and by the plan's
assessment (:mod:`canarymesh.analysis.planning`: what the plan can see at this traffic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from canarymesh.analysis.windows import Counts

__all__ = ["Baseline", "above", "slow_bound"]

# The stable's slow requests: those above the largest bucket bound that at least this share of
# its requests exceed (the lower bound of the bucket that holds its 99th percentile).
SLOW_SHARE = 0.01
# ...unless more than this share exceeds that bound: then the bucket is too coarse for the tail.
COARSE_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class Baseline:
    """``counts`` of the stable over ``seconds`` before the rollout (zero seconds: no history
    was read)."""

    seconds: float
    counts: Counts

    @staticmethod
    def empty() -> Baseline:
        return Baseline(0.0, Counts(0, 0))

    @property
    def rps(self) -> float:
        return self.counts.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_rate(self) -> float | None:
        if self.counts.requests == 0:
            return None
        return self.counts.errors / self.counts.requests

    def describe(self) -> str:
        if self.counts.requests == 0:
            return "no traffic of the stable before the rollout"
        rate = self.error_rate or 0.0
        return (
            f"stable before the rollout: {self.counts.requests} requests in "
            f"{self.seconds:.0f}s ({self.rps:.1f} req/s), {100 * rate:.2f}% errors"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "seconds": self.seconds,
            "requests": self.counts.requests,
            "errors": self.counts.errors,
            "buckets": [[_bound_json(b), n] for b, n in self.counts.buckets],
        }

    @staticmethod
    def from_json(data: dict[str, object]) -> Baseline:
        try:
            buckets = data["buckets"]
            assert isinstance(buckets, list)
            seconds, requests, errors = data["seconds"], data["requests"], data["errors"]
            assert isinstance(seconds, int | float)
            assert isinstance(requests, int) and isinstance(errors, int)
            counts = Counts(requests, errors, tuple((_bound_from(b), int(n)) for b, n in buckets))
        except (KeyError, AssertionError, TypeError, ValueError) as exc:
            raise ValueError(f"baseline is malformed: {exc!r}") from exc
        return Baseline(float(seconds), counts)


def slow_bound(counts: Counts) -> float | None:
    """The bucket bound above which the stable's requests count as slow: the lower bound of the
    bucket that holds its 99th percentile (the largest finite bound that at least
    :data:`SLOW_SHARE` of them exceed), or that bucket's upper bound when more than
    :data:`COARSE_SHARE` exceed the lower one (a bucket too coarse to place the tail in), or,
    when no bound qualifies, the smallest bound nothing exceeds. None without a histogram."""
    if not counts.buckets or counts.buckets[-1][1] == 0:
        return None
    total = counts.buckets[-1][1]
    finite = [(b, c) for b, c in counts.buckets if not math.isinf(b)]
    chosen = None
    for index, (_, cumulative) in enumerate(finite):
        if total - cumulative >= SLOW_SHARE * total:
            chosen = index
    if chosen is None:
        return next((b for b, c in finite if c == total), finite[-1][0] if finite else None)
    if total - finite[chosen][1] > COARSE_SHARE * total and chosen + 1 < len(finite):
        chosen += 1
    return finite[chosen][0]


def above(counts: Counts, milliseconds: float) -> float:
    """The share of ``counts``' requests slower than ``milliseconds``, interpolated between
    bucket bounds (linearly in the log of the duration, where durations spread)."""
    if not counts.buckets or counts.buckets[-1][1] == 0:
        return 0.0
    total = counts.buckets[-1][1]
    lower_bound, lower_count = 0.0, 0
    for bound, cumulative in counts.buckets:
        if milliseconds <= bound:
            at: float
            if math.isinf(bound) or bound == lower_bound:
                at = lower_count if math.isinf(bound) else cumulative
            elif lower_bound <= 0:
                at = lower_count + (cumulative - lower_count) * milliseconds / bound
            else:
                share = math.log(milliseconds / lower_bound) / math.log(bound / lower_bound)
                at = lower_count + (cumulative - lower_count) * share
            return max(0.0, (total - at) / total)
        lower_bound, lower_count = bound, cumulative
    return 0.0


def _bound_json(bound: float) -> float | str:
    return "+Inf" if bound == float("inf") else bound


def _bound_from(value: object) -> float:
    if value == "+Inf":
        return float("inf")
    if not isinstance(value, int | float):
        raise ValueError(f"a bucket bound must be a number, not {value!r}")
    return float(value)

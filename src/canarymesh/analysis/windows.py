"""What one analysis window measured, for the canary and for the stable: the judges' input. Pure.

The controller builds a :class:`Window` from the queries of :mod:`canarymesh.analysis.queries`
(the test fakes and ``bench/judge.py`` build them from simulated requests), and passes it to
:func:`canarymesh.rollout.machine.advance` inside an observation.

Durations arrive as a cumulative histogram (Prometheus' ``le`` buckets), so this module also
holds the two readings of a histogram the judges need: a quantile (as ``histogram_quantile``
computes it) and the number of requests slower than a bucket bound.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, replace

__all__ = ["INGRESS_SCOPE", "Buckets", "Counts", "Window", "count_above", "p99_bound", "quantile"]

# The scope of a release group's end-to-end comparison (its members' scopes are their hosts).
INGRESS_SCOPE = "ingress"

# Cumulative (upper bound in ms, requests at or below it), ascending, last bound +Inf.
Buckets = tuple[tuple[float, int], ...]


@dataclass(frozen=True, slots=True)
class Counts:
    """Requests one version served in a window, how many failed (5xx), and their durations."""

    requests: int
    errors: int
    buckets: Buckets = ()

    def __post_init__(self) -> None:
        if self.requests < 0 or not 0 <= self.errors <= self.requests:
            raise ValueError(f"inconsistent counts: {self.errors} errors of {self.requests}")

    @property
    def success_rate(self) -> float | None:
        """Percent of requests that did not fail; None without requests."""
        if self.requests == 0:
            return None
        return 100.0 * (self.requests - self.errors) / self.requests


@dataclass(frozen=True, slots=True)
class Window:
    """One analysis interval ``[start, end)`` measured for both versions at the same time.

    ``custom`` holds the canary's value of each custom metric (None: the query returned nothing).
    """

    start: datetime.datetime
    end: datetime.datetime
    canary: Counts
    stable: Counts
    custom: tuple[tuple[str, float | None], ...] = ()
    # A release group's other comparisons over the same interval, judged each on its own:
    # (scope, window) per member service; ``canary``/``stable`` above are then the ingress's.
    scopes: tuple[tuple[str, Window], ...] = ()

    def custom_value(self, name: str) -> float | None:
        return dict(self.custom).get(name)

    def parts(self) -> tuple[tuple[str, Window], ...]:
        """What to judge: this window alone (scope ``""``), or for a release group the ingress
        end to end and then each member."""
        if not self.scopes:
            return (("", self),)
        return ((INGRESS_SCOPE, replace(self, scopes=())), *self.scopes)


def quantile(q: float, buckets: Buckets) -> float | None:
    """The ``q`` quantile by linear interpolation inside its bucket, like Prometheus'
    ``histogram_quantile``; None without observations. A quantile in the +Inf bucket is the
    highest finite bound, as Prometheus returns."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def p99_bound(buckets: Buckets) -> float | None:
    """The lower bound of the bucket holding the 99th percentile: the largest finite bound
    with at least 1% of the requests above it. None when there is no such bound."""
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    chosen = None
    for bound, count in buckets:
        if not math.isinf(bound) and total - count >= 0.01 * total:
            chosen = bound
    return chosen


def count_above(bound: float, buckets: Buckets) -> int:
    """Requests slower than ``bound`` (which must be one of the buckets' bounds)."""
    if not buckets:
        return 0
    total = buckets[-1][1]
    for upper, count in buckets:
        if upper == bound:
            return total - count
    raise ValueError(f"{bound} is not a bucket bound of this histogram")

"""Simulated traffic of one service with a stable and a canary version, second by second.

Requests arrive as a Poisson process at ``rps`` in all and are split by the canary's share of the
traffic at that second (what the router has applied). Each request fails (a 5xx) with its
version's error rate and takes a lognormal time (median ``median_ms``, shape ``sigma``; the canary
may be slower by a factor and by a fixed extra), counted into Istio's duration buckets, as the
mesh's telemetry would count it. Two kinds of trouble that are not the canary's doing can be
switched on:

* **shared spikes** (:class:`Spikes`): now and then, for a while, both versions fail ``errors``
  times as often and are ``latency`` times slower (a backend both call, a load spike);
* **one replica's bursts** (:class:`Bursts`): one replica of one version (of ``replicas`` that
  share its traffic) now and then fails ``failure`` of its requests for a few seconds;
* **a shifted level** (``shift``): from the rollout on, both versions fail that many times as
  often as the stable did before (its history misleads).

Seconds before the rollout (``history``) carry the stable's traffic alone, as a service that ran
before its canary did. Everything is drawn from one seeded :class:`random.Random`, so a run can be
repeated exactly.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DURATION_BUCKETS",
    "Bursts",
    "SecondCounts",
    "Side",
    "SimulatedTraffic",
    "Spikes",
    "TrafficModel",
]

# Istio's (Envoy's) default duration buckets in ms, as the mesh's telemetry counts them.
DURATION_BUCKETS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
    600000, 1800000, 3600000,
)  # fmt: skip
Side = Literal["stable", "canary"]


@dataclass(frozen=True, slots=True)
class Spikes:
    """Shared trouble: starts on average every ``every`` s, lasts ``duration`` s on average."""

    every: float = 120.0
    duration: float = 10.0
    errors: float = 10.0
    latency: float = 2.0


@dataclass(frozen=True, slots=True)
class Bursts:
    """One replica's trouble: one of ``replicas`` replicas of ``side`` (``either``: drawn per
    run) fails ``failure`` of its requests for ``duration`` s, on average every ``every`` s."""

    every: float = 300.0
    duration: float = 5.0
    failure: float = 0.5
    replicas: int = 2
    side: Side | Literal["either"] = "either"


@dataclass(frozen=True, slots=True)
class TrafficModel:
    rps: float
    stable_errors: float = 0.005
    canary_errors: float = 0.005
    median_ms: float = 20.0
    sigma: float = 0.5
    canary_latency: float = 1.0  # the canary's durations are this many times the stable's...
    canary_extra_ms: float = 0.0  # ...plus this (a version that makes one more call)
    spikes: Spikes | None = None
    bursts: Bursts | None = None
    history: int = 600  # seconds of stable-only traffic before the rollout
    shift: float = 1.0  # from the rollout on, both versions fail this many times as often

    def __post_init__(self) -> None:
        for name in ("stable_errors", "canary_errors"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1")
        if self.rps <= 0 or self.median_ms <= 0 or self.sigma < 0 or self.canary_latency <= 0:
            raise ValueError("rps, median and latency factor must be positive")


@dataclass(slots=True)
class SecondCounts:
    """What one version served in one second: requests, 5xx, requests per duration bucket
    (the last slot is +Inf)."""

    requests: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))


class SimulatedTraffic:
    """Generates seconds on demand (:meth:`generate_until`) with the canary share the router
    applied (:meth:`route`). Second ``0`` is the first second of history; the rollout begins at
    second ``model.history``."""

    def __init__(self, model: TrafficModel, rng: random.Random) -> None:
        self.model = model
        self.rng = rng
        self.seconds: dict[Side, list[SecondCounts]] = {"stable": [], "canary": []}
        self.share_changes: list[tuple[int, float]] = [(0, 0.0)]
        self._spike_left = 0
        self._burst_left = 0
        self._burst_side: Side = "canary"
        if model.bursts is not None:
            side = model.bursts.side
            self._burst_side = (
                ("canary" if rng.random() < 0.5 else "stable") if side == "either" else side
            )
        # Per second: the canary's expected 5xx beyond what the stable would have failed.
        self.excess: list[float] = []
        self._cdfs: dict[tuple[float, float], tuple[float, ...]] = {}

    # --- routing -------------------------------------------------------------------------

    def route(self, share: float, from_second: int) -> None:
        """From ``from_second`` on, the canary serves ``share`` (0..1) of the requests."""
        while self.share_changes and self.share_changes[-1][0] >= from_second:
            if len(self.share_changes) == 1:
                break
            self.share_changes.pop()
        self.share_changes.append((from_second, share))

    def share_at(self, second: int) -> float:
        index = bisect.bisect_right([s for s, _ in self.share_changes], second) - 1
        return self.share_changes[max(index, 0)][1]

    # --- generation ------------------------------------------------------------------------

    def generate_until(self, second: int) -> None:
        """Make sure every second before ``second`` exists."""
        while len(self.seconds["stable"]) < second:
            self._one_second(len(self.seconds["stable"]))

    def _one_second(self, second: int) -> None:
        model, rng = self.model, self.rng
        spike_errors, spike_latency = self._spike()
        if second >= model.history:
            spike_errors *= model.shift
        burst = self._burst()
        share = self.share_at(second)
        total = _poisson(rng, model.rps)
        canary_n = sum(1 for _ in range(total) if rng.random() < share) if share > 0 else 0
        stable = self._version(
            total - canary_n, model.stable_errors * spike_errors, spike_latency, 0.0,
            burst if self._burst_side == "stable" else 0.0,
        )  # fmt: skip
        canary = self._version(
            canary_n,
            model.canary_errors * spike_errors,
            spike_latency * model.canary_latency,
            model.canary_extra_ms,
            burst if self._burst_side == "canary" else 0.0,
        )
        self.seconds["stable"].append(stable)
        self.seconds["canary"].append(canary)
        self.excess.append(
            canary_n
            * (
                min(model.canary_errors * spike_errors, 1.0)
                - min(model.stable_errors * spike_errors, 1.0)
            )
        )

    def _spike(self) -> tuple[float, float]:
        spikes = self.model.spikes
        if spikes is None:
            return 1.0, 1.0
        if self._spike_left <= 0 and self.rng.random() < 1.0 / spikes.every:
            self._spike_left = max(1, round(self.rng.expovariate(1.0 / spikes.duration)))
        if self._spike_left > 0:
            self._spike_left -= 1
            return spikes.errors, spikes.latency
        return 1.0, 1.0

    def _burst(self) -> float:
        """The failure share of the bursting replica this second (0: no burst)."""
        bursts = self.model.bursts
        if bursts is None:
            return 0.0
        if self._burst_left <= 0 and self.rng.random() < 1.0 / bursts.every:
            self._burst_left = max(1, round(bursts.duration))
        if self._burst_left > 0:
            self._burst_left -= 1
            return bursts.failure / max(bursts.replicas, 1)  # one replica's share of the traffic
        return 0.0

    def _version(
        self, n: int, error_rate: float, factor: float, extra_ms: float, burst: float
    ) -> SecondCounts:
        rng = self.rng
        counts = SecondCounts(requests=n)
        fail = min(1.0, error_rate)
        cdf = self._cdf(factor, extra_ms)
        buckets = counts.buckets
        errors = 0
        for _ in range(n):
            if rng.random() < fail or (burst > 0.0 and rng.random() < burst):
                errors += 1
            buckets[bisect.bisect_right(cdf, rng.random())] += 1
        counts.errors = errors
        return counts

    def _cdf(self, factor: float, extra_ms: float) -> tuple[float, ...]:
        """P(duration <= bound) for every bucket bound: lognormal (median ``median_ms``,
        times ``factor``), plus ``extra_ms``."""
        key = (factor, extra_ms)
        cached = self._cdfs.get(key)
        if cached is None:
            model = self.model
            mu = math.log(model.median_ms * factor)
            cached = tuple(
                _lognormal_cdf(bound - extra_ms, mu, model.sigma) for bound in DURATION_BUCKETS
            )
            self._cdfs[key] = cached
        return cached


def _lognormal_cdf(x: float, mu: float, sigma: float) -> float:
    if x <= 0:
        return 0.0
    if sigma == 0:
        return 1.0 if math.log(x) >= mu else 0.0
    return 0.5 * math.erfc(-(math.log(x) - mu) / (sigma * math.sqrt(2)))


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: exact (Knuth) for small means, normal beyond."""
    if mean > 60:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k

"""In-memory fakes of the controller's ports (:mod:`canarymesh.ports`), for unit tests of the
state machine and of anything that drives it. Each fake behaves like the real adapter in what
the core relies on (weights apply after a delay, a store round-trips through JSON, a metrics
source can go offline) and records what it was asked, so tests assert on behaviour.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from canarymesh.analysis.measure import ConfigCounters
from canarymesh.api.canary import Canary
from canarymesh.errors import TemporaryError
from canarymesh.ports import Clock, MetricsSource, Sample, StateStore, TrafficRouter
from canarymesh.rollout.actions import Weights

__all__ = ["FakeClock", "FakeMetrics", "FakeRouter", "MemoryStore"]

EPOCH = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


@dataclass
class FakeClock:
    """Time that moves only when told to (``sleep`` or ``advance``)."""

    current: datetime.datetime = EPOCH
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime.datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> datetime.datetime:
        self.current += datetime.timedelta(seconds=seconds)
        return self.current


@dataclass
class FakeRouter:
    """Managed routes of one Canary: weights apply ``apply_delay`` after they are set, like
    proxies acknowledging an xDS push."""

    clock: FakeClock
    apply_delay: float = 0.5
    weights: Weights | None = None
    set_at: datetime.datetime | None = None
    finalized: str | None = None
    calls: list[str] = field(default_factory=list)

    def reconcile(self, canary: Canary, weights: Weights) -> None:
        self.calls.append(f"reconcile {weights.describe()}")
        self._set(weights)

    def set_weights(self, canary: Canary, weights: Weights) -> None:
        self.calls.append(f"set_weights {weights.describe()}")
        self._set(weights)

    def get_weights(self, canary: Canary) -> Weights:
        if self.weights is None:
            return Weights(0, canary.stable_subset())
        return self.weights

    def verify_weights(self, canary: Canary, weights: Weights) -> bool:
        if self.weights != weights or self.set_at is None:
            return False
        applied = self.set_at + datetime.timedelta(seconds=self.apply_delay)
        return self.clock.now() >= applied

    def finalize(self, canary: Canary, stable_subset: str) -> None:
        self.calls.append(f"finalize {stable_subset}")
        self.finalized = stable_subset
        self._set(Weights(0, stable_subset))

    def _set(self, weights: Weights) -> None:
        if weights != self.weights:
            self.weights, self.set_at = weights, self.clock.now()


@dataclass
class FakeMetrics:
    """Answers each query with the samples registered for its exact text; can go offline.

    ``counters``: queries answered with counters that grow steadily from ``EPOCH``, each series
    by its per-second rate (what the controller's counter readings need)."""

    answers: dict[str, tuple[Sample, ...]] = field(default_factory=dict)
    counters: dict[str, tuple[Sample, ...]] = field(default_factory=dict)
    online: bool = True
    asked: list[tuple[str, datetime.datetime]] = field(default_factory=list)

    def query(self, promql: str, at: datetime.datetime) -> tuple[Sample, ...]:
        self.asked.append((promql, at))
        if not self.online:
            raise TemporaryError("metrics source unreachable", delay=5.0)
        if promql in self.counters:
            seconds = max(0.0, (at - EPOCH).total_seconds())
            return tuple(Sample(s.labels, s.value * seconds) for s in self.counters[promql])
        return self.answers.get(promql, ())

    def serve(
        self,
        host: str,
        version: str,
        rps: float,
        errors_per_second: float,
        config: ConfigCounters | None = None,
    ) -> None:
        """Counters of ``version`` of ``host`` (an FQDN): ``rps`` requests a second, all under
        25 ms, ``errors_per_second`` of them 5xx (``config``: of a config canary's set)."""
        from canarymesh.analysis.measure import counter_queries

        queries = counter_queries(host, version, config)
        self.counters[queries["request-counters"]] = (Sample((), rps),)
        self.counters[queries["error-counters"]] = (Sample((), errors_per_second),)
        self.counters[queries["duration-counters"]] = tuple(
            Sample((("le", le),), rps) for le in ("25", "+Inf")
        )

    def is_online(self) -> bool:
        return self.online


@dataclass
class MemoryStore:
    """Keeps each state as JSON text, so what is saved must survive serialisation."""

    texts: dict[str, str] = field(default_factory=dict)

    def load(self, name: str) -> Mapping[str, Any] | None:
        text = self.texts.get(name)
        return None if text is None else dict(json.loads(text))

    def save(self, name: str, state: Mapping[str, Any]) -> None:
        self.texts[name] = json.dumps(state, sort_keys=True)


def _conforms(
    clock: FakeClock, router: FakeRouter, metrics: FakeMetrics, store: MemoryStore
) -> tuple[Clock, TrafficRouter, MetricsSource, StateStore]:
    # mypy checks here that each fake satisfies its Protocol.
    return clock, router, metrics, store

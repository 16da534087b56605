"""A test harness for the state machine: specs from YAML-like dicts, windows from counts, and
a miniature controller that executes decisions against the fakes of ``tests/fakes.py``."""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from canarymesh.analysis.baseline import Baseline
from canarymesh.analysis.windows import Counts, Window
from canarymesh.api.canary import Canary
from canarymesh.rollout.actions import (
    Action,
    FinalizeRoutes,
    ReconcileRoutes,
    RunWebhook,
    SetWeights,
)
from canarymesh.rollout.machine import (
    Decision,
    Observation,
    WebhookResult,
    advance,
    needs_baseline,
)
from canarymesh.rollout.phases import TERMINAL, Command
from canarymesh.rollout.state import CanaryState
from tests.fakes import EPOCH, FakeClock, FakeRouter, MemoryStore

BOUNDS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, math.inf)
TARGET = {
    "host": "reviews",
    "virtualService": "reviews",
    "stableSubset": "v1",
    "canarySubset": "v3",
}


def spec(**fields: Any) -> Canary:
    return Canary.model_validate({"target": TARGET, **fields})


def at(seconds: float) -> datetime.datetime:
    return EPOCH + datetime.timedelta(seconds=seconds)


def counts(requests: int, errors: int = 0, slow: int = 0) -> Counts:
    """``requests`` answered in 20 ms, except ``slow`` of them in 300 ms."""
    fast = requests - slow
    buckets = tuple((b, fast if b < 300 else requests) for b in BOUNDS)
    return Counts(requests, errors, buckets)


def window(start: float, end: float, canary: Counts, stable: Counts) -> Window:
    return Window(at(start), at(end), canary, stable)


def kinds(decision: Decision) -> list[str]:
    return [type(a).__name__ for a in decision.actions]


Traffic = Callable[[int, float], tuple[Counts, Counts]]


def healthy(weight: int, seconds: float) -> tuple[Counts, Counts]:
    total = int(20 * seconds)
    canary = total * weight // 100
    return counts(canary, canary // 200), counts(total - canary, (total - canary) // 200)


def failing(weight: int, seconds: float) -> tuple[Counts, Counts]:
    total = int(20 * seconds)
    canary = total * weight // 100
    return counts(canary, canary // 10), counts(total - canary, (total - canary) // 200)


@dataclass
class Controller:
    """Plays the controller loop: executes actions on a FakeRouter, answers webhooks, makes
    windows from ``traffic`` once weights are verified, hands over ``baseline`` (the stable's
    traffic before the rollout) while the machine asks for it, and persists every state."""

    canary: Canary
    traffic: Traffic = healthy
    clock: FakeClock = field(default_factory=FakeClock)
    store: MemoryStore = field(default_factory=MemoryStore)
    hooks_ok: bool = True
    metrics_online: bool = True
    baseline: Baseline = field(default_factory=lambda: Baseline(600.0, counts(12000, 60)))
    executed: list[Action] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    router: FakeRouter = field(init=False)
    window_start: datetime.datetime | None = None
    pending_hooks: list[RunWebhook] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.router = FakeRouter(self.clock)

    def state(self) -> CanaryState:
        saved = self.store.load("reviews")
        if saved is None:
            return CanaryState.initial("reviews", self.canary.stable_subset(), self.clock.now())
        return CanaryState.from_dict(dict(saved))

    def tick(self, command: Command | None = None) -> Decision:
        state = self.state()
        observation = Observation(
            self.canary,
            weights_verified=self.router.verify_weights(self.canary, state.weights),
            metrics_online=self.metrics_online,
            windows=self._windows(state) if self.metrics_online else (),
            webhooks=tuple(WebhookResult(h.name, self.hooks_ok, "") for h in self.pending_hooks),
            command=command,
            baseline=self.baseline if needs_baseline(state, self.canary) else None,
        )
        self.pending_hooks = []
        decision = advance(state, observation, self.clock.now())
        for action in decision.actions:
            self._execute(action)
        self.store.save("reviews", decision.state.to_dict())
        self.decisions.append(decision)
        return decision

    def run(self, limit: int = 2000) -> CanaryState:
        for _ in range(limit):
            decision = self.tick()
            if decision.state.phase in TERMINAL:
                return decision.state
            self.clock.advance(min(decision.requeue_after.total_seconds(), 5.0))
        raise AssertionError(f"no terminal phase after {limit} ticks: {self.state().message}")

    def _windows(self, state: CanaryState) -> tuple[Window, ...]:
        if state.verified_at is None:
            return ()
        if self.window_start is None or self.window_start < state.verified_at:
            self.window_start = state.verified_at
        interval = self.canary.interval()
        found = []
        while self.window_start + interval <= self.clock.now():
            canary, stable = self.traffic(state.weights.canary, interval.total_seconds())
            found.append(Window(self.window_start, self.window_start + interval, canary, stable))
            self.window_start += interval
        return tuple(found)

    def _execute(self, action: Action) -> None:
        self.executed.append(action)
        if isinstance(action, SetWeights):
            self.router.set_weights(self.canary, action.weights)
        elif isinstance(action, ReconcileRoutes):
            self.router.reconcile(self.canary, action.weights)
        elif isinstance(action, FinalizeRoutes):
            self.router.finalize(self.canary, action.stable_subset)
        elif isinstance(action, RunWebhook):
            self.pending_hooks.append(action)

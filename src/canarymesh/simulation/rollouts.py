"""Simulated rollouts through the real controller: :func:`simulate_rollout` plays the clock, the
router (weights apply ``APPLY_DELAY`` after they are set, as proxies acknowledge a push) and
Prometheus (:mod:`.prometheus`) for :class:`canarymesh.controller.loop.Controller`, which
observes, calls :func:`canarymesh.rollout.machine.advance` and executes the decisions, once a
second as the controller process does.

A rollout ends, for the simulation, at the decision that settles it: the first decision of a
rollback, or the one that starts the promotion. Its :class:`Outcome` says which, when (seconds
since the rollout started), and what it cost: the canary's requests and failed requests before
that decision, and how many of those failures the stable would not have served.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from canarymesh.api.canary import Canary, Webhook
from canarymesh.controller.loop import Controller
from canarymesh.controller.observe import fqdn
from canarymesh.controller.wiring import CanaryItem, Wiring
from canarymesh.rollout.actions import Weights
from canarymesh.rollout.machine import Decision, WebhookResult
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.simulation.prometheus import SimulatedPrometheus
from canarymesh.simulation.traffic import Side, SimulatedTraffic, TrafficModel

__all__ = ["APPLY_DELAY", "START", "Outcome", "simulate_rollout"]

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
APPLY_DELAY = 1  # seconds from set_weights to every proxy serving the new split
TICK = 1.0  # the controller looks at a running rollout once a second
SETTLED = (Phase.ROLLING_BACK, Phase.FAILED, Phase.PROMOTING, Phase.SUCCEEDED)
Result = Literal["promoted", "rolled back", "undecided"]


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    seconds: float
    canary_requests: int
    canary_failed: int
    excess_failed: float
    reason: str
    warnings: tuple[str, ...] = ()  # what the plan said, before the rollout, it cannot see


@dataclass
class _Clock:
    current: datetime.datetime

    def now(self) -> datetime.datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.current += datetime.timedelta(seconds=seconds)


@dataclass
class _Router:
    """The managed routes of the simulated service: the canary's share reaches the traffic
    (and ``verify_weights`` says so) ``APPLY_DELAY`` seconds after it is set."""

    clock: _Clock
    traffic: SimulatedTraffic
    epoch: datetime.datetime
    weights: Weights | None = None
    applied_at: float = 0.0

    def _now(self) -> float:
        return (self.clock.now() - self.epoch).total_seconds()

    def _set(self, weights: Weights) -> None:
        if weights == self.weights:
            return
        self.weights = weights
        self.applied_at = self._now() + APPLY_DELAY
        self.traffic.route(weights.canary / 100.0, int(self.applied_at))

    def reconcile(self, canary: Canary, weights: Weights) -> None:
        self._set(weights)

    def set_weights(self, canary: Canary, weights: Weights) -> None:
        self._set(weights)

    def get_weights(self, canary: Canary) -> Weights:
        return self.weights or Weights(0, canary.stable_subset())

    def verify_weights(self, canary: Canary, weights: Weights) -> bool:
        return weights == self.weights and self._now() >= self.applied_at

    def finalize(self, canary: Canary, stable_subset: str) -> None:
        self._set(Weights(0, stable_subset))


@dataclass
class _Quiet:
    """Canary source, command inbox, webhooks (always yes), load control and decision sink."""

    item: CanaryItem
    store: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def list(self) -> tuple[CanaryItem, ...]:
        return (self.item,)

    def take_command(self, name: str) -> str | None:
        return None

    def call(self, item: CanaryItem, hook: Webhook, phase: str) -> WebhookResult:
        return WebhookResult(hook.name, True)

    def start(self, item: CanaryItem) -> None:
        return None

    def stop(self, key: str) -> None:
        return None

    def record(self, item: CanaryItem, before: CanaryState, decision: Decision) -> None:
        return None

    def load(self, name: str) -> Mapping[str, Any] | None:
        return self.store.get(name)

    def save(self, name: str, state: Mapping[str, Any]) -> None:
        self.store[name] = state


def simulate_rollout(
    spec: Canary, model: TrafficModel, seed: int, time_limit: float = 3600.0
) -> Outcome:
    """One rollout of ``spec`` on traffic ``model``, from start to the decision that settles it.

    ``model`` stands for all the traffic, so the spec's load generator is left out."""
    spec = spec.model_copy(update={"load_generator": None})
    rng = random.Random(seed)
    traffic = SimulatedTraffic(model, rng)
    epoch = START - datetime.timedelta(seconds=model.history)
    clock = _Clock(START)
    item = CanaryItem("default", "reviews", f"sim-{seed}", spec)
    host = fqdn(spec.target.host, item.namespace)
    versions: dict[Side, str] = {"stable": spec.stable_subset(), "canary": spec.canary_subset()}
    prometheus = SimulatedPrometheus(traffic, host, versions, epoch)
    router = _Router(clock, traffic, epoch)
    quiet = _Quiet(item)
    wiring = Wiring(quiet, lambda _: router, prometheus, quiet, clock, quiet, quiet, quiet, quiet)
    controller = Controller(wiring)
    settled = {phase.value for phase in SETTLED}
    while (clock.now() - START).total_seconds() <= time_limit:
        controller.run_once()
        record = quiet.store.get(item.key)
        if record is not None and record["state"]["phase"] in settled:
            break
        clock.sleep(TICK)
    record = quiet.store.get(item.key)
    state = CanaryState.from_dict(dict(record["state"])) if record else None
    return _outcome(state, traffic, model, (clock.now() - START).total_seconds())


def _outcome(
    state: CanaryState | None, traffic: SimulatedTraffic, model: TrafficModel, seconds: float
) -> Outcome:
    first, last = model.history, model.history + int(seconds)
    canary = traffic.seconds["canary"][first:last]
    result: Result = "undecided"
    if state is not None and state.phase in (Phase.ROLLING_BACK, Phase.FAILED):
        result = "rolled back"
    elif state is not None and state.phase in (Phase.PROMOTING, Phase.SUCCEEDED):
        result = "promoted"
    return Outcome(
        result=result,
        seconds=seconds,
        canary_requests=sum(s.requests for s in canary),
        canary_failed=sum(s.errors for s in canary),
        excess_failed=sum(traffic.excess[first:last]),
        reason=state.message if state is not None else "no decision",
        warnings=state.assessment.warnings if state and state.assessment else (),
    )

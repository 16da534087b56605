"""The controller loop: for each Canary, observe, ask :func:`canarymesh.rollout.machine.advance`,
persist the new state, execute the decision's actions through the ports. No decisions here.

Run by :mod:`canarymesh.controller.local` (the background process of a local mesh) and by the
unit tests with the fakes of ``tests/fakes.py``. Order matters for restarts: the new state is
saved *before* its actions run, and the machine re-issues any action whose effect it has not
seen verified, so a controller killed between the two resumes at the same step and finishes
the job. Errors are caught here and only here (the loop boundary): one failing Canary is
logged and retried after a short delay, never stops the others.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

from canarymesh.analysis.baseline import Baseline
from canarymesh.analysis.windows import Window
from canarymesh.api.canary import Canary
from canarymesh.controller import observe
from canarymesh.controller.wiring import CanaryItem, Wiring
from canarymesh.errors import CanaryMeshError, ConfigError, TemporaryError
from canarymesh.ports import TrafficRouter
from canarymesh.rollout.actions import (
    Action,
    FinalizeRoutes,
    ReconcileRoutes,
    RunWebhook,
    SetWeights,
    StartLoad,
    StopLoad,
)
from canarymesh.rollout.machine import Observation, WebhookResult, advance, needs_baseline
from canarymesh.rollout.phases import TERMINAL, Command
from canarymesh.rollout.state import CanaryState

__all__ = ["MAX_REQUEUE", "Controller", "record_of"]

log = logging.getLogger("canarymesh.controller")

# Look at every running rollout at least this often: cheap, and a window is judged as soon as
# Prometheus has it instead of up to an interval later.
MAX_REQUEUE = datetime.timedelta(seconds=1)
ERROR_RETRY = datetime.timedelta(seconds=2)


def record_of(item: CanaryItem, state: CanaryState) -> dict[str, Any]:
    """What the store keeps for a rollout: which rollout it is, and its state."""
    return {"rolloutId": item.rollout_id, "namespace": item.namespace, "state": state.to_dict()}


class Controller:
    def __init__(self, wiring: Wiring) -> None:
        self.w = wiring
        self.due: dict[str, datetime.datetime] = {}
        self.answers: dict[str, list[WebhookResult]] = {}
        self.seen: set[str] = set()
        self.readings: dict[str, observe.Readings] = {}

    def run(self, stop: Callable[[], bool], tick: float = 0.25) -> None:
        while not stop():
            self.run_once()
            self.w.clock.sleep(tick)

    def run_once(self) -> None:
        try:
            items = self.w.canaries.list()
        except Exception:  # the loop boundary: the source may be briefly unreachable
            log.exception("cannot list Canaries; retrying")
            return
        for gone in self.seen - {item.key for item in items}:
            self._forget(gone)
        for item in items:
            self.seen.add(item.key)
            self._maybe_reconcile(item)

    def _forget(self, key: str) -> None:
        self.seen.discard(key)
        self.due.pop(key, None)
        self.readings.pop(key, None)
        try:
            self.w.load.stop(key)
        except Exception:  # the loop boundary
            log.exception("%s: stopping its load generator failed", key)

    def _maybe_reconcile(self, item: CanaryItem) -> None:
        now = self.w.clock.now()
        try:
            text = self.w.inbox.take_command(item.key)
            command = Command(text) if text is not None else None
            if command is None and now < self.due.get(item.key, now):
                return
            wait = self.reconcile(item, command)
        except Exception as err:  # the loop boundary: log, retry this Canary later
            if isinstance(err, CanaryMeshError):
                log.error("%s: %s", item.key, err)  # ours: the message says it all
                if isinstance(err, ConfigError):
                    self._report(item, err)
            else:
                log.exception("%s: reconcile failed: %s", item.key, err)
            delay = err.delay if isinstance(err, TemporaryError) else ERROR_RETRY.total_seconds()
            wait = datetime.timedelta(seconds=min(delay, ERROR_RETRY.total_seconds()))
        self.due[item.key] = now + min(wait, MAX_REQUEUE)

    def _report(self, item: CanaryItem, err: ConfigError) -> None:
        """Put a user error in the rollout's record, so ``rollout get`` says why nothing moves."""
        try:
            state = self.load_state(item)
            if state.phase not in TERMINAL:
                state = state.with_message(f"cannot proceed: {err}", self.w.clock.now())
                self.w.store.save(item.key, record_of(item, state))
        except Exception:  # the loop boundary: reporting must not stop the loop
            log.exception("%s: cannot record the error", item.key)

    def reconcile(self, item: CanaryItem, command: Command | None = None) -> datetime.timedelta:
        """One decision for ``item``; returns when to look again."""
        state = self.load_state(item)
        if state.phase in TERMINAL:
            return item.canary.interval()
        router = self.w.router_for(item)
        observation = self.observe(item, state, router, command)
        decision = advance(state, observation, self.w.clock.now())
        self.w.store.save(item.key, record_of(item, decision.state))
        self.execute(item, router, decision.actions)
        self.w.sink.record(item, state, decision)
        return decision.requeue_after

    def load_state(self, item: CanaryItem) -> CanaryState:
        record = self.w.store.load(item.key)
        if record is not None and record.get("rolloutId") == item.rollout_id:
            return CanaryState.from_dict(dict(record["state"]))
        self.w.load.stop(item.key)  # a new rollout: nothing of the old one keeps running
        self.answers.pop(item.key, None)
        now = self.w.clock.now()
        return CanaryState.initial(item.name, item.canary.stable_subset(), now)

    def observe(
        self,
        item: CanaryItem,
        state: CanaryState,
        router: TrafficRouter,
        command: Command | None,
    ) -> Observation:
        spec = item.canary
        verified = router.verify_weights(spec, state.weights)
        online, windows = self._windows(item, state)
        baseline = None
        if needs_baseline(state, spec):
            baseline = self._baseline(item)
            online = online and baseline is not None
        hooks = tuple(self.answers.pop(item.key, []))
        return Observation(spec, verified, online, windows, hooks, command, baseline)

    def _windows(self, item: CanaryItem, state: CanaryState) -> tuple[bool, tuple[Window, ...]]:
        """Whether the metrics source answered, and the windows it measured."""
        spec = item.canary
        due = observe.due_windows(state, spec, self.w.clock.now())
        if not due or spec.skip_analysis:
            return True, ()
        readings = self.readings.setdefault(item.key, {})
        try:
            if not self.w.metrics.is_online():
                return False, ()
            return True, tuple(
                observe.measure(
                    self.w.metrics, item, s, e, readings, observe.custom_due(state, spec, e)
                )
                for s, e in due
            )
        except TemporaryError as err:
            log.warning("%s: metrics source unreachable: %s", item.key, err)
            return False, ()

    def _baseline(self, item: CanaryItem) -> Baseline | None:
        """The stable's traffic before the rollout; None while the source does not answer."""
        try:
            if not self.w.metrics.is_online():
                return None
            return observe.measure_baseline(self.w.metrics, item, self.w.clock.now())
        except TemporaryError as err:
            log.warning("%s: cannot measure the stable's traffic yet: %s", item.key, err)
            return None

    def execute(self, item: CanaryItem, router: TrafficRouter, actions: tuple[Action, ...]) -> None:
        spec = item.canary
        for action in actions:
            if isinstance(action, ReconcileRoutes):
                router.reconcile(spec, action.weights)
            elif isinstance(action, SetWeights):
                router.set_weights(spec, action.weights)
            elif isinstance(action, FinalizeRoutes):
                router.finalize(spec, action.stable_subset)
            elif isinstance(action, RunWebhook):
                self._webhook(item, spec, action)
            elif isinstance(action, StartLoad):
                self.w.load.start(item)
            elif isinstance(action, StopLoad):
                self.w.load.stop(item.key)

    def _webhook(self, item: CanaryItem, spec: Canary, action: RunWebhook) -> None:
        hooks = {h.name: h for h in spec.webhooks}
        hook = hooks.get(action.name)
        if hook is None:
            return  # the spec changed since the decision: the next one will not ask for it
        result = self.w.webhooks.call(item, hook, action.type)
        if not result.ok:
            log.warning("%s: webhook %s answered: %s", item.key, hook.name, result.detail)
        self.answers.setdefault(item.key, []).append(result)

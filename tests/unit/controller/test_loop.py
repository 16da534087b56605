"""The controller loop against the in-memory fakes: it executes the machine's decisions through
the ports, persists before acting, resumes from the store, holds when metrics are offline, and
takes manual commands. No I/O, a fake clock."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass, field

from canarymesh.api.canary import Canary, Webhook
from canarymesh.controller.loop import Controller
from canarymesh.controller.metrics import ControllerMetrics
from canarymesh.controller.observe import due_windows, fqdn
from canarymesh.controller.wiring import CanaryItem, Wiring, canary_item
from canarymesh.errors import ConfigError
from canarymesh.ports import state_of
from canarymesh.rollout.machine import WebhookResult
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from tests.fakes import FakeClock, FakeMetrics, FakeRouter, MemoryStore

SPEC = Canary.model_validate(
    {
        "target": {"host": "reviews", "virtualService": "reviews", "stableSubset": "v1",
                   "canarySubset": "v3"},
        "strategy": {"canary": {"steps": [{"setWeight": 50}, {"analysis": {"duration": "10s"}}]}},
        "analysis": {"interval": "5s", "minRequests": 10,
                     "metrics": [{"name": "request-success-rate"}]},
        "progressDeadline": "5m",
    }
)  # fmt: skip
ITEM = CanaryItem("default", "reviews", "r1", SPEC)


@dataclass
class Doubles:
    items: tuple[CanaryItem, ...] = (ITEM,)
    commands: dict[str, str] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)

    def list(self) -> tuple[CanaryItem, ...]:
        return self.items

    def take_command(self, name: str) -> str | None:
        return self.commands.pop(name, None)

    def call(self, item: CanaryItem, hook: Webhook, phase: str) -> WebhookResult:
        return WebhookResult(hook.name, True)

    def start(self, item: CanaryItem) -> None:
        self.started.append(item.key)

    def stop(self, key: str) -> None:
        self.started = [k for k in self.started if k != key]


def answer(metrics: FakeMetrics, version: str, requests: float, errors: float) -> None:
    """``version`` serves ``requests`` (``errors`` of them 5xx) every 5 seconds."""
    metrics.serve(fqdn("reviews", "default"), version, requests / 5, errors / 5)


def build(
    store: MemoryStore | None = None,
    clock: FakeClock | None = None,
    sink: ControllerMetrics | None = None,
) -> tuple[Controller, FakeClock, FakeRouter, FakeMetrics, MemoryStore, Doubles]:
    clock = clock or FakeClock()
    router, metrics, store = FakeRouter(clock), FakeMetrics(), store or MemoryStore()
    doubles = Doubles()
    wiring = Wiring(doubles, lambda item: router, metrics, store, clock, doubles, doubles,
                    doubles, sink or ControllerMetrics())  # fmt: skip
    return Controller(wiring), clock, router, metrics, store, doubles


def run(
    controller: Controller, clock: FakeClock, store: MemoryStore, seconds: float
) -> CanaryState:
    for _ in range(int(seconds / 0.5)):
        controller.run_once()
        clock.advance(0.5)
        state = state_of(store.load(ITEM.key))
        if state is not None and state.phase in (Phase.SUCCEEDED, Phase.FAILED):
            return state
    state = state_of(store.load(ITEM.key))
    assert state is not None
    return state


def test_healthy_canary_is_promoted_through_the_router() -> None:
    controller, clock, router, metrics, store, _ = build()
    answer(metrics, "v3", 100, 0)
    answer(metrics, "v1", 100, 0)
    state = run(controller, clock, store, 120)
    assert state.phase is Phase.SUCCEEDED, state.message
    assert router.finalized == "v3"
    assert "set_weights canary 50% / stable 50%" in router.calls
    assert any(at >= clock.current - datetime.timedelta(seconds=120) for _, at in metrics.asked)


def test_faulty_canary_rolls_back_with_the_metric_in_the_reason() -> None:
    controller, clock, router, metrics, store, _ = build()
    answer(metrics, "v3", 100, 30)
    answer(metrics, "v1", 100, 0)
    state = run(controller, clock, store, 120)
    assert state.phase is Phase.FAILED
    assert router.weights is not None and router.weights.canary == 0
    assert "request-success-rate" in state.message and "30.00%" in state.message


def test_a_new_controller_resumes_at_the_same_step() -> None:
    controller, clock, router, metrics, store, _ = build()
    answer(metrics, "v3", 100, 0)
    answer(metrics, "v1", 100, 0)
    for _ in range(8):
        controller.run_once()
        clock.advance(0.5)
    before = state_of(store.load(ITEM.key))
    assert before is not None and before.step == 1 and before.phase is Phase.PROGRESSING
    again, _, _, _, _, _ = build(store, clock)
    again.w = dataclasses.replace(again.w, router_for=lambda item: router, metrics=metrics)
    again.run_once()
    after = state_of(store.load(ITEM.key))
    assert after is not None and after.step == 1 and after.started_at == before.started_at
    assert run(again, clock, store, 120).phase is Phase.SUCCEEDED


def test_metrics_offline_holds_and_never_promotes() -> None:
    controller, clock, _, metrics, store, _ = build()
    metrics.online = False
    state = run(controller, clock, store, 30)
    assert state.phase is Phase.INITIALIZING  # the stable's history cannot be read either
    assert state.message.endswith("to be measured (metrics source unreachable)")
    metrics.online = True
    answer(metrics, "v3", 100, 0)
    answer(metrics, "v1", 100, 0)
    run(controller, clock, store, 5)
    metrics.online = False
    state = run(controller, clock, store, 60)
    assert state.phase is Phase.PROGRESSING
    assert "metrics source unreachable" in state.message


def test_abort_command_rolls_back() -> None:
    controller, clock, router, metrics, store, doubles = build()
    answer(metrics, "v3", 100, 0)
    answer(metrics, "v1", 100, 0)
    run(controller, clock, store, 3)
    doubles.commands[ITEM.key] = "abort"
    state = run(controller, clock, store, 10)
    assert state.phase is Phase.FAILED and "aborted by user" in state.message
    assert router.weights is not None and router.weights.canary == 0


def test_windows_start_at_verification_and_wait_for_the_scrape() -> None:
    clock = FakeClock()
    state = CanaryState.initial("r", "v1", clock.now()).with_verified(clock.now())
    threshold = SPEC.model_copy(
        update={"analysis": SPEC.analysis.model_copy(update={"judge": "threshold"})}
    )
    assert due_windows(state, threshold, clock.advance(5.5)) == []  # 5 s interval, 1 s lag
    windows = due_windows(state, threshold, clock.advance(11))
    assert [(s - state.started_at).seconds for s, _ in windows] == [0, 5, 10]
    # The statistical judge reads everything new, at least a second of it.
    assert due_windows(state, SPEC, state.started_at + datetime.timedelta(seconds=1.5)) == []
    start, end = due_windows(state, SPEC, clock.now())[0]
    assert (start, end) == (state.started_at, clock.now() - datetime.timedelta(seconds=1))
    judged = dataclasses.replace(state, analysed_until=end, verified_at=None)
    assert due_windows(judged, SPEC, clock.advance(3))[0][0] == end  # across weight changes


def test_the_controller_metrics_follow_the_decisions() -> None:
    sink = ControllerMetrics()
    controller, clock, _, metrics, store, _ = build(sink=sink)
    answer(metrics, "v3", 100, 30)
    answer(metrics, "v1", 100, 0)
    run(controller, clock, store, 120)
    labels = {"namespace": "default", "canary": "reviews"}
    value = sink.registry.get_sample_value
    assert value("canarymesh_rollout_weight", labels) == 0
    assert value("canarymesh_rollout_phase", {**labels, "phase": "Failed"}) == 1
    assert value("canarymesh_rollout_phase", {**labels, "phase": "Progressing"}) == 0
    assert value("canarymesh_rollout_decisions_total", {**labels, "decision": "rollback"}) == 1
    assert (
        value("canarymesh_rollout_decisions_total", {**labels, "decision": "advance"}) or 0
    ) >= 1


def test_a_user_error_is_shown_in_the_record_and_retried() -> None:
    controller, clock, router, metrics, store, _ = build()

    def missing(item: CanaryItem) -> FakeRouter:
        raise ConfigError("VirtualService default/reviews is not applied")

    controller.w = dataclasses.replace(controller.w, router_for=missing)
    run(controller, clock, store, 3)
    state = state_of(store.load(ITEM.key))
    assert state is not None and state.phase is Phase.INITIALIZING
    assert state.message == "cannot proceed: VirtualService default/reviews is not applied"
    controller.w = dataclasses.replace(controller.w, router_for=lambda item: router)
    answer(metrics, "v3", 100, 0)
    answer(metrics, "v1", 100, 0)
    assert run(controller, clock, store, 120).phase is Phase.SUCCEEDED


def _config_spec(kind: str) -> Canary:
    resource = {
        "apiVersion": "networking.istio.io/v1",
        "kind": kind,
        "metadata": {"name": "details"},
        "spec": {"hosts": ["details"]},
    }
    return Canary.model_validate({
        "target": {"host": "details"},
        "config": {"resources": [resource]},
        "strategy": {"canary": {"steps": [{"setWeight": 50}, {"analysis": {"duration": "10s"}}]}},
        "analysis": {"interval": "5s", "minRequests": 10,
                     "metrics": [{"name": "request-success-rate"}]},
        "progressDeadline": "5m",
    })  # fmt: skip


def test_a_config_canary_is_judged_on_its_sets_of_sidecars() -> None:
    item = canary_item("default", "reviews", "r1", _config_spec("VirtualService"), (), "local")
    assert item.config is not None and item.config.reporter == "source"
    policy = canary_item("default", "p", "r1", _config_spec("AuthorizationPolicy"), (), "cluster")
    assert policy.config is not None and policy.config.reporter == "destination"
    controller, clock, router, metrics, store, doubles = build()
    doubles.items = (item,)
    host = fqdn("details", "default")
    # The stable set's sidecars are fine; the canary set's get a fault on 30% of their calls.
    metrics.serve(host, "canary", 20, 6, item.config)
    metrics.serve(host, "stable", 20, 0, item.config)
    # The version canary's series (no config labels) say nothing is wrong: they must not count.
    metrics.serve(host, "v3", 20, 0)
    state = run(controller, clock, store, 120)
    assert state.phase is Phase.FAILED
    assert "canary errors 30.00% vs stable 0.00%" in state.message
    asked = {promql for promql, _ in metrics.asked}
    assert any('config_canary="default/reviews",set="canary"' in q for q in asked)

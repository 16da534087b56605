"""The state machine is the same object in both runtimes: one scripted rollout, driven by the
real controller loop with the same fake clock and metrics, once through the in-memory router and
store of ``tests/fakes.py`` and once through the Kubernetes router and status store (the real
``kubernetes`` client against the fake API server). The decisions must be identical, and the
cluster's objects must end where the fake router ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from canarymesh.api.canary import Canary, Webhook
from canarymesh.controller.loop import Controller
from canarymesh.controller.observe import fqdn
from canarymesh.controller.wiring import CanaryItem, Wiring
from canarymesh.ports import StateStore, TrafficRouter
from canarymesh.rollout.machine import Decision, WebhookResult
from canarymesh.rollout.state import CanaryState
from canarymesh.runtime.kube.client import KubeApi
from canarymesh.runtime.kube.rollout_store import KubeStateStore
from canarymesh.runtime.kube.router import KubeRouter
from tests.fakes import FakeClock, FakeMetrics, FakeRouter, MemoryStore
from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.unit.kube.test_adapters import seed_bookinfo

SPEC = Canary.model_validate(
    {
        "target": {"host": "reviews", "virtualService": "reviews", "stableSubset": "v1",
                   "canarySubset": "v3"},
        "strategy": {"canary": {
            "steps": [{"setWeight": 20}, {"analysis": {"duration": "10s"}}, {"setWeight": 50},
                      {"pause": {"duration": "5s"}}, {"analysis": {"duration": "10s"}}],
            "match": [{"headers": {"end-user": {"exact": "jason"}}}]}},
        "analysis": {"interval": "5s", "minRequests": 10,
                     "metrics": [{"name": "request-success-rate"}]},
    }
)  # fmt: skip
ITEM = CanaryItem("webapps", "reviews", "r1", SPEC)


@dataclass
class Script:
    """Everything but the router and the store, identical for both runs."""

    decisions: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def list(self) -> tuple[CanaryItem, ...]:
        return (ITEM,)

    def take_command(self, name: str) -> str | None:
        return None

    def call(self, item: CanaryItem, hook: Webhook, phase: str) -> WebhookResult:
        return WebhookResult(hook.name, True)

    def start(self, item: CanaryItem) -> None: ...

    def stop(self, key: str) -> None: ...

    def record(self, item: CanaryItem, before: CanaryState, decision: Decision) -> None:
        actions = tuple(type(a).__name__ for a in decision.actions)
        self.decisions.append((decision.state.phase.value, decision.reason, actions))


def metrics_for(canary_errors: float) -> FakeMetrics:
    """Each version serves 100 requests every 5 s; the canary ``canary_errors`` of them 5xx."""
    metrics = FakeMetrics()
    for version, errors in (("v3", canary_errors), ("v1", 0.0)):
        metrics.serve(fqdn("reviews", "webapps"), version, 20.0, errors / 5)
    return metrics


def drive(router: TrafficRouter, store: StateStore, clock: FakeClock, errors: float) -> Script:
    script = Script()
    wiring = Wiring(script, lambda item: router, metrics_for(errors), store, clock, script,
                    script, script, script)  # fmt: skip
    controller = Controller(wiring)
    for _ in range(240):
        controller.run_once()
        clock.advance(0.5)
        if script.decisions and script.decisions[-1][0] in ("Succeeded", "Failed"):
            break
    return script


@pytest.mark.parametrize(("errors", "end"), [(0.0, "Succeeded"), (30.0, "Failed")])
def test_both_routers_see_the_same_decisions(
    server: FakeApiServer, errors: float, end: str
) -> None:
    clock = FakeClock()
    local = FakeRouter(clock, apply_delay=0.0)
    expected = drive(local, MemoryStore(), clock, errors)

    seed_bookinfo(server)
    with client.ApiClient(client.Configuration(host=server.url)) as api_client:
        api = KubeApi(api_client)
        router = KubeRouter(api, "webapps", "reviews")
        got = drive(router, KubeStateStore(api, "test"), FakeClock(), errors)
        final = router.get_weights(SPEC)

    assert expected.decisions[-1][0] == end
    assert len(expected.decisions) >= 5
    assert got.decisions == expected.decisions
    assert final == local.get_weights(SPEC)
    status: dict[str, Any] = server.object("canarymesh.io", "canaries", "webapps", "reviews")[
        "status"
    ]
    assert status["phase"] == end
    events = [o for (_, p, _, _), o in server.objects.items() if p == "events"]
    # One Event per entry of the decision log (a reason that only updates the judge's numbers
    # is no new entry).
    history = CanaryState.from_dict(dict(status["rolloutState"]["state"])).history
    assert len(events) == len(history)
    assert {e["note"] for e in events} == {h.reason for h in history}

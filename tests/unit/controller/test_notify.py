"""The notifier against local HTTP receivers (aiohttp on 127.0.0.1): each receiver kind gets a
body of its own shape with the decision's explanation, the webhook's signature verifies,
deliveries are retried with backoff and refusals are not, a dead receiver holds back neither
the decisions nor the other receivers, a full queue drops and counts, and no URL or key ever
reaches the log."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from canarymesh.analysis.verdict import MetricVerdict, VerdictPhase
from canarymesh.api.canary import Canary, Webhook
from canarymesh.api.notifications import AlertProviderSpec
from canarymesh.controller.loop import Controller
from canarymesh.controller.metrics import ControllerMetrics
from canarymesh.controller.notify import Notifier, NotifyMetrics, Retry
from canarymesh.controller.wiring import (
    CanaryItem,
    DecisionSinks,
    ProviderItem,
    Wiring,
    provider_items,
)
from canarymesh.ports import state_of
from canarymesh.rollout.machine import Decision, WebhookResult
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.views.notification_payloads import SIGNATURE_HEADER
from tests.fakes import FakeClock, FakeMetrics, FakeRouter, MemoryStore
from tests.support.receivers import Receiver, shape_problems

KINDS = ("slack", "msteams", "discord", "webhook", "alertmanager")
HMAC_KEY = b"s3cret-hmac-key"
FAST = Retry(attempts=3, first=0.01, cap=0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@dataclass
class Providers:
    """AlertProviders and Secrets in memory; ``gate`` (when set) holds every read until set."""

    items: list[ProviderItem] = field(default_factory=list)
    secrets: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    gate: threading.Event | None = None
    asked: threading.Event = field(default_factory=threading.Event)

    def providers(self) -> tuple[ProviderItem, ...]:
        self.asked.set()
        if self.gate is not None:
            self.gate.wait(30)
        return tuple(self.items)

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        return self.secrets.get((namespace, name))

    def add(self, name: str, kind: str, url: str, **spec: Any) -> None:
        self.items.append(
            ProviderItem("default", name, AlertProviderSpec.model_validate(
                {"type": kind, "secretRef": {"name": name}, "timeout": "1s", **spec}))
        )  # fmt: skip
        self.secrets[("default", name)] = {"address": url.encode(), "hmacKey": HMAC_KEY}


def notifier(source: Providers, clock: FakeClock, **options: Any) -> tuple[Notifier, Any]:
    registry = CollectorRegistry()
    made = Notifier(source, NotifyMetrics(registry), clock, **{"retry": FAST, **options})
    return made, registry.get_sample_value


def spec(notifications: list[dict[str, Any]], steps: list[dict[str, Any]]) -> Canary:
    return Canary.model_validate({
        "target": {"host": "reviews", "virtualService": "reviews", "stableSubset": "v1",
                   "canarySubset": "v3"},
        "strategy": {"canary": {"steps": steps}},
        "skipAnalysis": True,
        "notifications": notifications,
    })  # fmt: skip


@dataclass
class Doubles:
    items: tuple[CanaryItem, ...]
    commands: dict[str, str] = field(default_factory=dict)

    def list(self) -> tuple[CanaryItem, ...]:
        return self.items

    def take_command(self, name: str) -> str | None:
        return self.commands.pop(name, None)

    def call(self, item: CanaryItem, hook: Webhook, phase: str) -> WebhookResult:
        return WebhookResult(hook.name, True)

    def start(self, item: CanaryItem) -> None: ...

    def stop(self, key: str) -> None: ...


def drive(
    item: CanaryItem, sink: Notifier, clock: FakeClock, until: Phase, resume: bool = False
) -> CanaryState:
    """Run the real loop (fake router, store and clock) until the rollout reaches ``until``."""
    store, doubles = MemoryStore(), Doubles((item,))
    router = FakeRouter(clock)
    wiring = Wiring(doubles, lambda _: router, FakeMetrics(), store, clock, doubles, doubles,
                    doubles, DecisionSinks(ControllerMetrics(), sink))  # fmt: skip
    controller = Controller(wiring)
    state = None
    for _ in range(400):
        controller.run_once()
        clock.advance(0.5)
        state = state_of(store.load(item.key))
        assert state is not None
        if state.phase is Phase.PAUSED and resume:
            doubles.commands[item.key] = "resume"
        if state.phase is until:
            return state
    raise AssertionError(f"never reached {until}: {state}")


def test_a_rollout_reaches_every_receiver_kind_in_its_own_shape(receiver: Receiver) -> None:
    source, clock = Providers(), FakeClock()
    for kind in KINDS:
        source.add(f"team-{kind}", kind, receiver.url(f"/{kind}"), **(
            {"channel": "#deploys"} if kind == "slack" else {}))  # fmt: skip
    steps: list[dict[str, Any]] = [
        {"setWeight": 20}, {"pause": {"duration": "2s"}}, {"setWeight": 50}, {"pause": {}},
    ]  # fmt: skip
    refs = [{"providerRef": {"name": f"team-{kind}"}} for kind in KINDS]
    item = CanaryItem("default", "reviews", "r1", spec(refs, steps))
    made, value = notifier(source, clock)
    made.start()
    try:
        drive(item, made, clock, Phase.SUCCEEDED, resume=True)
        assert made.idle.wait(10)
    finally:
        made.stop()
    hooks = receiver.on("/webhook")
    events = [r.json()["event"] for r in hooks]
    assert events == ["started", "step", "step", "step", "paused", "step", "promoted"]
    for kind in ("slack", "msteams", "discord", "webhook"):
        got = receiver.on(f"/{kind}")
        assert len(got) == 7, kind
        for request in got:
            assert shape_problems(kind, request) == [], (kind, request.body)
    slack = receiver.on("/slack")[-1].json()
    assert slack["channel"] == "#deploys" and "promoted" in slack["text"]
    assert "promoted: v3 is the stable subset" in slack["blocks"][1]["text"]["text"]
    # Alertmanager hears the pause (firing) and what ends it (resolved), nothing else.
    posted = receiver.on("/alertmanager/api/v2/alerts")  # the address is the base URL
    assert all(shape_problems("alertmanager", r) == [] for r in posted)
    alerts = [a for r in posted for a in r.json()]
    paused = [a for a in alerts if a["labels"]["alertname"] == "CanaryPaused"]
    (firing,) = [a for a in paused if a["endsAt"] > a["startsAt"]]
    assert firing["labels"] == {"alertname": "CanaryPaused", "namespace": "default",
                                "canary": "reviews", "severity": "warning"}  # fmt: skip
    resolved = paused[paused.index(firing) + 1]
    assert resolved["endsAt"] == resolved["startsAt"] > firing["startsAt"]
    for request in hooks:
        expected = "sha256=" + hmac.new(HMAC_KEY, request.body, hashlib.sha256).hexdigest()
        assert request.headers[SIGNATURE_HEADER] == expected
    sent = value("canarymesh_notifications_total", {"provider": "default/team-webhook",
                 "type": "webhook", "event": "step", "outcome": "sent"})  # fmt: skip
    assert sent == 4
    labels = {"namespace": "default", "canary": "reviews", "event": "promoted"}
    assert value("canarymesh_rollout_events_total", labels) == 1


def rollback(notifications: list[dict[str, Any]], namespace: str = "default") -> tuple[
    CanaryItem, CanaryState, Decision
]:  # fmt: skip
    now = FakeClock().now()
    item = CanaryItem(namespace, "ratings", "r7", spec(notifications, [{"setWeight": 50}]))
    before = CanaryState.initial("ratings", "v1", now).with_phase(Phase.PROGRESSING, "step", now)
    verdict = MetricVerdict("request-success-rate", VerdictPhase.FAILED,
                            "request-success-rate canary 70.00% (n=120) < min 99%", 70.0, 99.9,
                            120)  # fmt: skip
    reason = "request-success-rate canary 70.00% (n=120) < min 99% (failed checks 1 >= " \
             "failureLimit 1): rolling back"  # fmt: skip
    after = before.with_analysis({}, (verdict,), now, failed=1, passed=0)
    after = after.with_phase(Phase.ROLLING_BACK, reason, now)
    return item, before, Decision(after, (), reason)


def test_the_explanation_reaches_the_receiver(receiver: Receiver) -> None:
    source, clock = Providers(), FakeClock()
    source.add("hook", "webhook", receiver.url("/hook"))
    made, _ = notifier(source, clock)
    made.start()
    made.record(*rollback([{"providerRef": {"name": "hook"}, "events": ["rolledBack"]}]))
    (request,) = receiver.wait_for("/hook", 1)
    made.stop()
    body = request.json()
    assert body["event"] == "rolledBack" and body["severity"] == "critical"
    assert body["reason"].startswith("request-success-rate canary 70.00%")
    assert body["verdicts"] == [{
        "metric": "request-success-rate", "phase": "Failed",
        "reason": "request-success-rate canary 70.00% (n=120) < min 99%",
        "canaryValue": 70.0, "stableValue": 99.9, "samples": 120, "pValue": None,
    }]  # fmt: skip
    assert request.headers["X-Canarymesh-Event"] == "rolledBack"


def test_failed_deliveries_are_retried_with_backoff(receiver: Receiver) -> None:
    source, clock = Providers(), FakeClock()
    source.add("hook", "webhook", receiver.url("/hook"))
    receiver.fail_then("/hook", 503, 429)
    made, value = notifier(source, clock)
    made.start()
    made.record(*rollback([{"providerRef": {"name": "hook"}}]))
    assert made.idle.wait(10)
    made.stop()
    bodies = [r.body for r in receiver.on("/hook")]
    assert len(bodies) == 3 and len(set(bodies)) == 1  # the same delivery, three attempts
    labels = {"provider": "default/hook", "type": "webhook"}
    assert value("canarymesh_notification_retries_total", labels) == 2
    assert value("canarymesh_notifications_total",
                 {**labels, "event": "rolledBack", "outcome": "sent"}) == 1  # fmt: skip


def test_a_refusal_is_not_retried(receiver: Receiver) -> None:
    source, clock = Providers(), FakeClock()
    source.add("hook", "slack", receiver.url("/slack"))
    receiver.fail_then("/slack", 404)
    made, value = notifier(source, clock)
    made.start()
    made.record(*rollback([{"providerRef": {"name": "hook"}}]))
    assert made.idle.wait(10)
    made.stop()
    assert len(receiver.on("/slack")) == 1
    assert value("canarymesh_notifications_total", {"provider": "default/hook", "type": "slack",
                 "event": "rolledBack", "outcome": "failed"}) == 1  # fmt: skip


def test_a_hanging_receiver_holds_back_neither_decisions_nor_others(receiver: Receiver) -> None:
    source, clock = Providers(), FakeClock()
    source.add("stuck", "discord", receiver.url("/stuck"))
    source.add("fine", "discord", receiver.url("/fine"))
    receiver.hang.add("/stuck")
    made, value = notifier(source, clock, retry=Retry(attempts=1))
    made.start()
    try:
        item, before, decision = rollback(
            [{"providerRef": {"name": "stuck"}}, {"providerRef": {"name": "fine"}}]
        )
        for _ in range(5):
            made.record(item, before, decision)
        # Every delivery to the healthy receiver arrives while the other one holds its first.
        assert len(receiver.wait_for("/fine", 5)) == 5
        assert len(receiver.on("/stuck")) == 1
    finally:
        receiver.release()
        assert made.idle.wait(10)
        made.stop()
    assert len(receiver.on("/stuck")) == 5  # in order, once released


def test_a_dead_receivers_full_backlog_drops_counts_and_says_so_once(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    source, clock = Providers(), FakeClock()
    source.add("stuck", "discord", receiver.url("/stuck"))
    receiver.hang.add("/stuck")
    made, value = notifier(source, clock, retry=Retry(attempts=1), lane_capacity=2)
    made.start()
    try:
        item, before, decision = rollback([{"providerRef": {"name": "stuck"}}])
        made.record(item, before, decision)
        receiver.wait_for("/stuck", 1)  # the first is in flight; 2 wait; the rest are dropped
        with caplog.at_level(logging.WARNING, logger="canarymesh.notify"):
            for _ in range(9):
                made.record(item, before, decision)
            labels = {"provider": "default/stuck", "type": "discord", "event": "rolledBack",
                      "outcome": "dropped"}  # fmt: skip
            deadline = time.monotonic() + 10
            while (value("canarymesh_notifications_total", labels) or 0) < 7:
                assert time.monotonic() < deadline, value("canarymesh_notifications_total", labels)
                time.sleep(0.01)
    finally:
        receiver.release()
        assert made.idle.wait(10)
        made.stop()
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped == ["notifications to discord provider default/stuck are dropped from now "
                       "on: its backlog of 2 is full"]  # fmt: skip
    assert len(receiver.on("/stuck")) == 3


def test_record_never_waits_and_a_full_queue_drops_and_counts(receiver: Receiver) -> None:
    gate = threading.Event()
    source, clock = Providers(gate=gate), FakeClock()
    source.add("hook", "webhook", receiver.url("/hook"))
    made, value = notifier(source, clock, capacity=2)
    made.start()
    item, before, decision = rollback([{"providerRef": {"name": "hook"}}])
    made.record(item, before, decision)
    assert source.asked.wait(10)  # the notifier's thread holds the first event, reading
    for _ in range(5):  # the provider list is blocked: record still returns at once
        made.record(item, before, decision)
    labels = {"namespace": "default", "canary": "ratings", "event": "rolledBack"}
    assert value("canarymesh_notification_events_dropped_total", labels) == 3
    gate.set()
    assert made.idle.wait(10)
    made.stop()
    assert len(receiver.on("/hook")) == 3


def test_mesh_wide_providers_hear_every_canary_once(receiver: Receiver) -> None:
    source, clock = Providers(), FakeClock()
    source.add("ops", "webhook", receiver.url("/ops"), meshWide={"events": ["rolledBack"]})
    source.add("prod", "webhook", receiver.url("/prod"),
               meshWide={"namespaces": ["prod"]})  # fmt: skip
    made, _ = notifier(source, clock)
    made.start()
    made.record(*rollback([]))  # the Canary names nobody
    made.record(*rollback([{"providerRef": {"name": "ops"}}]))  # named and mesh-wide: once
    made.record(*rollback([], namespace="prod"))
    assert made.idle.wait(10)
    made.stop()
    assert [r.json()["namespace"] for r in receiver.on("/ops")] == ["default", "default", "prod"]
    assert [r.json()["namespace"] for r in receiver.on("/prod")] == ["prod"]


def test_inline_providers_and_their_secrets(receiver: Receiver) -> None:
    source, clock = Providers(), FakeClock()
    source.secrets[("default", "teams-url")] = {"address": receiver.url("/teams").encode()}
    made, _ = notifier(source, clock)
    made.start()
    inline = {"provider": {"type": "msteams", "secretRef": {"name": "teams-url"}}}
    made.record(*rollback([inline]))
    (request,) = receiver.wait_for("/teams", 1)
    made.stop()
    assert shape_problems("msteams", request) == []
    card = request.json()["attachments"][0]["content"]
    assert any("70.00%" in block.get("text", "") for block in card["body"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_url_or_key_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    source, clock = Providers(), FakeClock()
    dead = f"http://127.0.0.1:{free_port()}/services/T0/B0/TOKEN-abc123"
    source.add("slack", "slack", dead)
    source.add("hook", "webhook", dead)
    source.secrets[("default", "hook")].pop("hmacKey")  # misconfigured: refused, named
    made, value = notifier(source, clock)
    made.start()
    with caplog.at_level(logging.DEBUG, logger="canarymesh.notify"):
        made.record(*rollback([{"providerRef": {"name": "slack"}},
                               {"providerRef": {"name": "hook"}}]))  # fmt: skip
        assert made.idle.wait(10)
        made.stop()
    text = caplog.text
    assert "TOKEN-abc123" not in text and HMAC_KEY.decode() not in text
    assert "slack provider default/slack failed (ClientConnectorError)" in text
    assert "Secret default/hook has no key hmacKey" in text
    for provider, kind in (("default/slack", "slack"), ("default/hook", "webhook")):
        assert value("canarymesh_notifications_total", {"provider": provider, "type": kind,
                     "event": "rolledBack", "outcome": "failed"}) == 1  # fmt: skip


def test_a_missing_provider_is_logged_and_the_rollout_goes_on(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    source, clock = Providers(), FakeClock()
    made, _ = notifier(source, clock)
    made.start()
    with caplog.at_level(logging.ERROR, logger="canarymesh.notify"):
        made.record(*rollback([{"providerRef": {"name": "nobody"}}]))
        assert made.idle.wait(10)
    made.stop()
    assert "AlertProvider default/nobody does not exist; rolledBack not notified" in caplog.text


def test_retry_delays_grow_and_stay_under_the_cap() -> None:
    retry = Retry(attempts=8, first=0.5, factor=2.0, cap=30.0)
    highest = [retry.delay(n, lambda low, high: high) for n in range(8)]
    assert highest == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert all(retry.delay(n, lambda low, high: low) == 0.0 for n in range(8))
    assert datetime.timedelta(seconds=sum(highest)) < datetime.timedelta(minutes=2)


def test_provider_items_leave_out_what_cannot_be_read_and_keep_the_rest() -> None:
    documents = [
        {"metadata": {"name": "team", "namespace": "shop"}, "spec": {"type": "slack"}},
        {"metadata": {"name": "broken"}, "spec": {"type": "carrier-pigeon"}},
        {"metadata": {"name": "ops"}, "spec": {"type": "alertmanager", "address": "http://am"}},
    ]
    items = provider_items(documents)
    assert [(i.namespace, i.name, i.spec.type) for i in items] == [
        ("shop", "team", "slack"),
        ("default", "ops", "alertmanager"),
    ]

"""Rollout events and their payloads, pure: which decisions make which events, and each
receiver's body within its limits, escaped, signed."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json

import pytest

from canarymesh.analysis.verdict import MetricVerdict, VerdictPhase
from canarymesh.api.canary import Canary
from canarymesh.rollout.machine import Decision
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.views.notification_payloads import (
    SIGNATURE_HEADER,
    alertmanager_alerts,
    alertmanager_events,
    alertmanager_url,
    discord_message,
    request_for,
    slack_message,
    teams_message,
)
from canarymesh.views.rollout_events import RolloutEvent, rollout_events

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
SPEC = Canary.model_validate({
    "target": {"host": "reviews", "virtualService": "reviews", "stableSubset": "v1",
               "canarySubset": "v3"},
    "strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]}},
})  # fmt: skip


def event(
    kind: str = "rolledBack", reason: str = "aborted by user", **more: object
) -> RolloutEvent:
    fields: dict[str, object] = {
        "kind": kind, "namespace": "default", "canary": "reviews", "rollout_id": "r1", "at": NOW,
        "phase": "RollingBack", "step": 2, "steps": 3, "step_text": "2/3 (pause (until resumed))",
        "canary_weight": 10, "stable_subset": "v1", "canary_subset": "v3", "reason": reason,
    }  # fmt: skip
    return RolloutEvent(**{**fields, **more})  # type: ignore[arg-type]


def kinds(before: CanaryState, after: CanaryState, reason: str = "why") -> list[str]:
    return [e.kind for e in rollout_events("default", "reviews", "r1", SPEC, before,
                                           Decision(after, (), reason), NOW)]  # fmt: skip


def test_which_decisions_make_which_events() -> None:
    initial = CanaryState.initial("reviews", "v1", NOW)
    waiting = initial.with_message("waiting for the managed routes", NOW)
    assert kinds(initial, waiting) == ["started"]
    assert kinds(waiting, waiting.with_message("still waiting", NOW)) == []
    running = waiting.with_phase(Phase.PROGRESSING, "step 1", NOW)
    at_gate = running.with_step(1, NOW).with_phase(Phase.PAUSED, "waiting for resume", NOW)
    assert kinds(running, at_gate) == ["step", "paused"]
    back = at_gate.with_phase(Phase.ROLLING_BACK, "aborted by user", NOW)
    assert kinds(at_gate, back) == ["rolledBack"]
    assert kinds(back, back.with_phase(Phase.FAILED, "rolled back: aborted", NOW)) == []
    promoting = running.with_step(3, NOW).with_phase(Phase.PROMOTING, "promoting", NOW)
    assert kinds(promoting, promoting.with_phase(Phase.SUCCEEDED, "promoted", NOW)) == ["promoted"]
    # A controller that restarts mid-rollout loads a state with history: no second "started".
    assert kinds(running, running.with_message("holding", NOW)) == []


def test_an_event_carries_the_step_weight_reason_and_verdicts() -> None:
    before = CanaryState.initial("reviews", "v1", NOW).with_phase(Phase.PROGRESSING, "s", NOW)
    verdict = MetricVerdict("request-duration", VerdictPhase.FAILED, "p99 900 ms > max 500 ms")
    after = before.with_analysis({}, (verdict,), NOW, failed=1, passed=0)
    after = after.with_phase(Phase.ROLLING_BACK, "request-duration failed: rolling back", NOW)
    decision = Decision(after, (), "request-duration failed: rolling back")
    (made,) = rollout_events("prod", "reviews", "r9", SPEC, before, decision, NOW)
    assert (made.kind, made.key, made.rollout_id, made.severity) == (
        "rolledBack", "prod/reviews", "r9", "critical")  # fmt: skip
    assert made.step_text == "1/3 (setWeight 10%)" and made.canary_subset == "v3"
    assert made.verdict_lines() == ("request-duration Failed: p99 900 ms > max 500 ms",)


def test_slack_escapes_its_control_characters_and_keeps_block_limits() -> None:
    message = slack_message(event(reason="<!channel> & " + "x" * 5000), "#deploys", "bot")
    assert message["channel"] == "#deploys" and message["username"] == "bot"
    section = message["blocks"][1]["text"]["text"]
    assert section.startswith("&lt;!channel&gt; &amp; ") and len(section) == 3000
    assert "<!channel>" not in json.dumps(message)
    assert len(message["text"]) <= 3000


def test_discord_never_pings_and_truncates() -> None:
    message = discord_message(event(reason="@everyone " + "y" * 5000))
    assert message["allowed_mentions"] == {"parse": []}
    assert len(message["content"]) == 2000 and len(message["embeds"][0]["description"]) == 4096
    assert message["embeds"][0]["color"] == 0xD32F2F


def test_teams_gets_one_adaptive_card() -> None:
    (attachment,) = teams_message(event())["attachments"]
    card = attachment["content"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["type"] == "AdaptiveCard" and card["body"][0]["color"] == "Attention"
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Canary weight"] == "10%" and facts["Versions"] == "v1 -> v3"


def test_the_webhook_is_signed_over_the_exact_body() -> None:
    made = request_for("webhook", event(), "d1", hmac_key=b"k")
    assert made is not None
    body, headers = made
    assert headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    document = json.loads(body)
    assert document["delivery"] == "d1" and document["event"] == "rolledBack"
    assert document["time"] == "2026-01-01T12:00:00+00:00"
    with pytest.raises(ValueError, match="always signed"):
        request_for("webhook", event(), "d1")


def test_alertmanager_fires_conditions_and_resolves_them() -> None:
    fired, ended = alertmanager_alerts(event("rolledBack"))  # a rollback also ends a pause
    assert ended["labels"]["alertname"] == "CanaryPaused" and ended["endsAt"] == ended["startsAt"]
    assert fired["labels"]["alertname"] == "CanaryRolledBack"
    assert fired["labels"]["severity"] == "critical" and fired["endsAt"] > fired["startsAt"]
    resolved = alertmanager_alerts(event("promoted", "promoted: v3 is the stable subset"))
    assert {a["labels"]["alertname"] for a in resolved} == {"CanaryRolledBack", "CanaryPaused"}
    assert all(a["endsAt"] == a["startsAt"] for a in resolved)
    assert request_for("alertmanager", event("step"), "d")  # resolves a pause
    assert alertmanager_events(["rolledBack"]) == {"rolledBack", "started", "promoted"}
    assert alertmanager_events(["step"]) == {"step"}
    assert alertmanager_url("http://am:9093/") == "http://am:9093/api/v2/alerts"
    assert alertmanager_url("http://am:9093/api/v2/alerts") == "http://am:9093/api/v2/alerts"

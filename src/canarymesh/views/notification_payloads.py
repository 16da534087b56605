"""A rollout event as each receiver wants it: Slack, Microsoft Teams, Discord, a signed generic
webhook, Alertmanager. Pure (dicts and bytes out); called by the controller's notifier
(:mod:`canarymesh.controller.notify`), which only adds the URL and sends.

* **Slack** (incoming webhook): ``text`` (the notification line, also the fallback) and
  ``blocks`` (header, the reason, step/weight/phase fields, the verdicts, the rollout id).
* **Teams** (a Workflows "post to a channel when a webhook request is received" URL): a
  ``message`` whose attachment is an Adaptive Card 1.4 (title, reason, facts, verdicts).
* **Discord** (channel webhook): ``content`` and one embed (title, description, colour,
  fields, timestamp); mentions disabled, so no text of an event can ping anyone.
* **Webhook**: :func:`webhook_body` as JSON, signed by :func:`sign` (HMAC-SHA256 of the exact
  body bytes with the Secret's ``hmacKey``) in ``X-Canarymesh-Signature-256: sha256=<hex>``.
* **Alertmanager** (``POST /api/v2/alerts``): alerts for the conditions someone acts on,
  ``CanaryRolledBack`` (critical) and ``CanaryPaused`` (warning), firing until the event that
  ends them (:data:`RESOLVED_BY`) sends them again with ``endsAt`` now, or for a day.

Receivers' limits are respected by truncation (Slack: 3000 characters a text block; Discord:
2000 content, 4096 description, 1024 a field; Teams has no hard limit below a payload's 28 KB).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any

from canarymesh.views.rollout_events import RolloutEvent

__all__ = [
    "ALERT_HOLD",
    "ALERTMANAGER_PATH",
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "RESOLVED_BY",
    "SIGNATURE_HEADER",
    "alertmanager_alerts",
    "alertmanager_events",
    "alertmanager_url",
    "discord_message",
    "encode",
    "request_for",
    "sign",
    "slack_message",
    "teams_message",
    "webhook_body",
]

Json = dict[str, Any]

SIGNATURE_HEADER = "X-Canarymesh-Signature-256"
EVENT_HEADER = "X-Canarymesh-Event"
DELIVERY_HEADER = "X-Canarymesh-Delivery"
ALERTMANAGER_PATH = "/api/v2/alerts"
# A firing alert's endsAt when no later event resolves it (Alertmanager resolves it then).
ALERT_HOLD = datetime.timedelta(hours=24)
# Alertmanager alert -> the events that end its condition (a new or promoted rollout ends a
# failure; any move ends a pause).
RESOLVED_BY: Mapping[str, frozenset[str]] = {
    "CanaryRolledBack": frozenset({"started", "promoted"}),
    "CanaryPaused": frozenset({"started", "step", "promoted", "rolledBack"}),
}
_FIRES = {"rolledBack": "CanaryRolledBack", "paused": "CanaryPaused"}
_COLORS = {"rolledBack": 0xD32F2F, "paused": 0xF9A825, "promoted": 0x2E7D32}
_BLUE = 0x1565C0
_SLACK_MARK = {
    "started": ":arrow_forward:",
    "step": ":arrow_right:",
    "paused": ":double_vertical_bar:",
    "promoted": ":white_check_mark:",
    "rolledBack": ":x:",
}
_TEAMS_COLOR = {"rolledBack": "Attention", "paused": "Warning", "promoted": "Good"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _facts(event: RolloutEvent) -> list[tuple[str, str]]:
    return [
        ("Step", event.step_text),
        ("Canary weight", f"{event.canary_weight}%"),
        ("Phase", event.phase),
        ("Versions", f"{event.stable_subset} -> {event.canary_subset}"),
    ]


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn control characters; everything else is shown as written.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(
    event: RolloutEvent, channel: str | None = None, username: str | None = None
) -> Json:
    """An incoming-webhook message: ``text`` (notification and fallback) and ``blocks``."""
    reason = _slack_escape(event.reason)
    blocks: list[Json] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(event.title, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(reason, 3000)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{name}*\n{_slack_escape(value)}", 2000)}
                for name, value in _facts(event)
            ],
        },
    ]
    verdicts = event.verdict_lines()
    if verdicts:
        text = "\n".join(f"• {_slack_escape(line)}" for line in verdicts)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, 3000)}})
    blocks.append({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"rollout {_slack_escape(event.rollout_id)}"}],
    })  # fmt: skip
    message: Json = {
        "text": _cut(f"{_SLACK_MARK[event.kind]} {event.title}: {reason}", 3000),
        "blocks": blocks,
    }
    if channel:
        message["channel"] = channel
    if username:
        message["username"] = username
    return message


def teams_message(event: RolloutEvent) -> Json:
    """A Workflows webhook message carrying one Adaptive Card."""
    body: list[Json] = [
        {
            "type": "TextBlock",
            "text": event.title,
            "weight": "Bolder",
            "size": "Medium",
            "color": _TEAMS_COLOR.get(event.kind, "Accent"),
            "wrap": True,
        },
        {"type": "TextBlock", "text": event.reason, "wrap": True},
        {
            "type": "FactSet",
            "facts": [{"title": name, "value": value} for name, value in _facts(event)],
        },
    ]
    for line in event.verdict_lines():
        body.append({"type": "TextBlock", "text": line, "wrap": True, "isSubtle": True})
    body.append(
        {
            "type": "TextBlock",
            "text": f"rollout {event.rollout_id}",
            "isSubtle": True,
            "size": "Small",
        }  # fmt: skip
    )
    card: Json = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def discord_message(event: RolloutEvent, username: str | None = None) -> Json:
    """A channel-webhook message: ``content`` and one embed."""
    fields = [
        {"name": name, "value": _cut(value, 1024), "inline": True} for name, value in _facts(event)
    ]
    for line in event.verdict_lines()[:20]:
        metric, _, rest = line.partition(": ")
        fields.append({"name": _cut(metric, 256), "value": _cut(rest or line, 1024),
                       "inline": False})  # fmt: skip
    embed: Json = {
        "title": _cut(event.title, 256),
        "description": _cut(event.reason, 4096),
        "color": _COLORS.get(event.kind, _BLUE),
        "fields": fields,
        "footer": {"text": _cut(f"rollout {event.rollout_id}", 2048)},
        "timestamp": event.at.isoformat(),
    }
    message: Json = {
        "content": _cut(f"{event.title}: {event.reason}", 2000),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }
    if username:
        message["username"] = username
    return message


def webhook_body(event: RolloutEvent, delivery: str) -> Json:
    """The generic webhook's JSON document (``docs/notifications.md`` describes each field)."""
    return {
        "apiVersion": "canarymesh.io/v1alpha1",
        "kind": "RolloutEvent",
        "delivery": delivery,
        "event": event.kind,
        "severity": event.severity,
        "time": event.at.isoformat(),
        "namespace": event.namespace,
        "canary": event.canary,
        "rolloutId": event.rollout_id,
        "phase": event.phase,
        "step": event.step,
        "steps": event.steps,
        "stepText": event.step_text,
        "canaryWeight": event.canary_weight,
        "stableSubset": event.stable_subset,
        "canarySubset": event.canary_subset,
        "reason": event.reason,
        "verdicts": [
            {
                "metric": v.metric,
                "phase": v.phase.value,
                "reason": v.reason,
                "canaryValue": v.canary_value,
                "stableValue": v.stable_value,
                "samples": v.samples,
                "pValue": v.p_value,
            }
            for v in event.verdicts
        ],
    }


def encode(document: object) -> bytes:
    """The exact bytes sent (and signed): compact UTF-8 JSON."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def sign(body: bytes, key: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``, the value of :data:`SIGNATURE_HEADER`."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def alertmanager_events(subscribed: Iterable[str]) -> frozenset[str]:
    """The events an Alertmanager subscription is sent: those it names, and the ones that
    resolve the alerts those fire."""
    wanted = set(subscribed)
    for kind, alert in _FIRES.items():
        if kind in wanted:
            wanted |= RESOLVED_BY[alert]
    return frozenset(wanted)


def alertmanager_alerts(event: RolloutEvent) -> list[Json]:
    """The alerts ``event`` fires or resolves (empty when it does neither)."""
    alerts = []
    fired = _FIRES.get(event.kind)
    if fired is not None:
        alerts.append(_alert(event, fired, event.at + ALERT_HOLD))
    for alert, resolvers in RESOLVED_BY.items():
        if event.kind in resolvers and alert != fired:
            alerts.append(_alert(event, alert, event.at))
    return alerts


def _alert(event: RolloutEvent, name: str, ends: datetime.datetime) -> Json:
    severity = "critical" if name == "CanaryRolledBack" else "warning"
    description = "\n".join((event.reason, *event.verdict_lines()))
    return {
        # Labels identify the condition (one per Canary), so a later event resolves it.
        "labels": {
            "alertname": name,
            "namespace": event.namespace,
            "canary": event.canary,
            "severity": severity,
        },
        "annotations": {
            "summary": event.title,
            "description": description,
            "rollout_id": event.rollout_id,
            "step": event.step_text,
            "canary_weight": str(event.canary_weight),
        },
        "startsAt": event.at.isoformat(),
        "endsAt": ends.isoformat(),
    }


def alertmanager_url(address: str) -> str:
    """The alerts endpoint of an Alertmanager at ``address`` (a base URL or the endpoint)."""
    base = address.rstrip("/")
    return base if base.endswith(ALERTMANAGER_PATH) else base + ALERTMANAGER_PATH


def request_for(
    kind: str,
    event: RolloutEvent,
    delivery: str,
    *,
    channel: str | None = None,
    username: str | None = None,
    hmac_key: bytes | None = None,
) -> tuple[bytes, dict[str, str]] | None:
    """The body and headers to POST for ``event`` to a receiver of ``kind``; None when the
    event means nothing to it (an Alertmanager event that fires and resolves nothing)."""
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: event.kind,
        DELIVERY_HEADER: delivery,
    }
    document: object
    if kind == "slack":
        document = slack_message(event, channel, username)
    elif kind == "msteams":
        document = teams_message(event)
    elif kind == "discord":
        document = discord_message(event, username)
    elif kind == "alertmanager":
        document = alertmanager_alerts(event)
        if not document:
            return None
    elif kind == "webhook":
        if hmac_key is None:
            raise ValueError("a webhook is always signed: no HMAC key")
        body = encode(webhook_body(event, delivery))
        return body, {**headers, SIGNATURE_HEADER: sign(body, hmac_key)}
    else:
        raise ValueError(f"unknown receiver kind {kind!r}")
    return encode(document), headers

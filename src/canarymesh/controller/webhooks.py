"""``HttpWebhooks``: the controller's :class:`~canarymesh.controller.wiring.WebhookCaller` on
both runtimes. It POSTs Flagger's payload (name, namespace, phase, metadata); a 2xx answer means
go on, anything else (or no answer) means stop, and the machine decides what that does."""

from __future__ import annotations

import datetime
import json
import urllib.request

from canarymesh.api.canary import Webhook
from canarymesh.api.durations import parse_duration
from canarymesh.controller.wiring import CanaryItem
from canarymesh.rollout.machine import WebhookResult

__all__ = ["HttpWebhooks"]


class HttpWebhooks:
    """POSTs Flagger's payload (name, namespace, phase, metadata); 2xx means go on."""

    def call(self, item: CanaryItem, hook: Webhook, phase: str) -> WebhookResult:
        body = {"name": item.name, "namespace": item.namespace, "phase": phase,
                "metadata": dict(hook.metadata)}  # fmt: skip
        request = urllib.request.Request(
            hook.url, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        timeout = parse_duration(hook.timeout) or datetime.timedelta(seconds=10)
        # No proxy: a hook is the user's endpoint, HTTP_PROXY is the mesh apps' variable.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout.total_seconds()) as response:
                return WebhookResult(hook.name, 200 <= response.status < 300, str(response.status))
        except OSError as err:
            return WebhookResult(hook.name, False, str(err))

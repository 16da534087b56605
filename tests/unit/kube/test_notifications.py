"""Notifications from the in-cluster operator, as on the local mesh: two replicas of the entry
point's loop against one API server, AlertProviders and Secrets read through the API (one named
by the Canary, one mesh-wide in the controller's namespace), delivered to a local receiver.
Only the Lease holder decides, so each event arrives once, signed with the Secret's key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from canarymesh.controller.kube import KubeProviders
from canarymesh.runtime.kube.client import KubeApi
from canarymesh.views.notification_payloads import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER
from tests.support.receivers import Receiver, shape_problems
from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.unit.kube.replicas import quick_canary, replicas
from tests.unit.kube.test_adapters import seed_bookinfo

KEY = b"cluster-hmac-key"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def secret(namespace: str, name: str, **data: str) -> dict[str, object]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace}, "data": encoded}  # fmt: skip


def seed(server: FakeApiServer, receiver: Receiver) -> None:
    seed_bookinfo(server)
    notifications = [{"providerRef": {"name": "team-slack"}, "events": ["promoted"]}]
    server.put("canarymesh.io", "canaries", quick_canary(notifications=notifications))
    server.put("", "secrets", secret("webapps", "team-slack", address=receiver.url("/slack")))
    server.put("canarymesh.io", "alertproviders", {
        "metadata": {"name": "team-slack", "namespace": "webapps"},
        "spec": {"type": "slack", "secretRef": {"name": "team-slack"}},
    })  # fmt: skip
    server.put(
        "",
        "secrets",
        secret("canarymesh-system", "hooks", address=receiver.url("/hooks"), hmacKey=KEY.decode()),
    )
    server.put("canarymesh.io", "alertproviders", {
        "metadata": {"name": "everyone", "namespace": "canarymesh-system"},
        "spec": {"type": "webhook", "secretRef": {"name": "hooks"}, "meshWide": {}},
    })  # fmt: skip
    # An unreadable provider is left out, not fatal.
    server.put("canarymesh.io", "alertproviders", {
        "metadata": {"name": "broken", "namespace": "webapps"}, "spec": {"type": "pager"},
    })  # fmt: skip


def test_two_replicas_notify_each_event_once(server: FakeApiServer, receiver: Receiver) -> None:
    seed(server, receiver)
    with replicas(server, "replica-a", "replica-b", notify=True):
        promoted = receiver.wait_for("/slack", 1, timeout=30)
        receiver.wait_for("/hooks", 3, timeout=10)
        time.sleep(0.5)  # a second replica's duplicate would have arrived by now

    status = server.object("canarymesh.io", "canaries", "webapps", "reviews")["status"]
    assert status["phase"] == "Succeeded", status["message"]
    # The Canary's own provider, for the one event it asked for.
    assert [r.headers[EVENT_HEADER] for r in receiver.on("/slack")] == ["promoted"]
    assert shape_problems("slack", promoted[0]) == []
    assert "webapps/reviews" in promoted[0].json()["text"]
    # The mesh-wide provider, for every event, each once, signed with its Secret's key.
    hooks = receiver.on("/hooks")
    events = [r.headers[EVENT_HEADER] for r in hooks]
    assert events[0] == "started" and events[-1] == "promoted" and "step" in events
    assert len({r.headers[DELIVERY_HEADER] for r in hooks}) == len(hooks)
    assert len(events) == len(set(events)) + events.count("step") - 1
    for received in hooks:
        wanted = "sha256=" + hmac.new(KEY, received.body, hashlib.sha256).hexdigest()
        assert received.headers[SIGNATURE_HEADER] == wanted
        assert shape_problems("webhook", received) == []
    assert ("list", "canarymesh.io", "alertproviders") in server.verbs()
    assert ("get", "", "secrets") in server.verbs()


def test_providers_are_read_from_every_namespace_and_a_missing_secret_is_none(
    server: FakeApiServer,
) -> None:
    server.put("canarymesh.io", "alertproviders", {
        "metadata": {"name": "team-slack", "namespace": "webapps"},
        "spec": {"type": "slack", "secretRef": {"name": "gone"}},
    })  # fmt: skip
    with client.ApiClient(client.Configuration(host=server.url)) as api_client:
        providers = KubeProviders(KubeApi(api_client))
        (found,) = providers.providers()
        assert (found.namespace, found.name, found.spec.type) == ("webapps", "team-slack", "slack")
        assert providers.secret("webapps", "gone") is None

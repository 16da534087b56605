"""The README's demo receiver (``canary-manifests/notifications/receiver.py``) takes what each
receiver kind is sent, prints its headline, and refuses a webhook signed with another key: it
runs here as a real HTTP server on a loopback port, fed the payloads the notifier builds."""

from __future__ import annotations

import http.server
import importlib.util
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from canarymesh.views.notification_payloads import request_for
from tests.unit.views.test_notification_payloads import event

DEMO = Path(__file__).parents[3] / "canary-manifests" / "notifications" / "receiver.py"
PATHS = {"slack": "/slack", "msteams": "/teams", "discord": "/discord", "webhook": "/webhook",
         "alertmanager": "/alertmanager/api/v2/alerts"}  # fmt: skip


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notification_demo_receiver", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo() -> Iterator[tuple[str, bytes]]:
    module = load_demo()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), module.Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", module.KEY
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, body, headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_each_kind_is_read_and_a_forged_webhook_refused(
    demo: tuple[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    url, key = demo
    told = event("rolledBack", "request-success-rate canary errors 12% > 1%: rolling back")
    for kind, path in PATHS.items():
        made = request_for(kind, told, "d1", hmac_key=key)
        assert made is not None
        assert post(url + path, *made) == 204, kind
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all("rolledBack" in line for line in lines)
    assert all("request-success-rate" in line for line in lines[:4]), lines
    assert "CanaryRolledBack firing" in lines[4]
    forged = request_for("webhook", told, "d2", hmac_key=b"someone else's key")
    assert forged is not None
    assert post(url + "/webhook", *forged) == 401
    assert "REFUSED" in capsys.readouterr().out

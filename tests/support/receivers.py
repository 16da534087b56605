"""Local HTTP receivers for notification tests: an aiohttp server on 127.0.0.1 (a port chosen at
run time) in a thread of its own, recording every POST and answering as each path is told:
a status sequence (``fail_then``), a hang (``hang``), or 200.

Each path stands for one receiver (``/slack``, ``/teams``, ...); :func:`shape_problems` says
what is wrong with a body for the receiver kind it claims to be, as the real services would
refuse it (Slack needs ``text`` or ``blocks``, a Teams Workflows webhook an Adaptive Card
attachment, Discord ``content`` or ``embeds``, Alertmanager a list of alerts with labels).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["Received", "Receiver", "shape_problems"]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """``start()`` it, POST to ``url(path)``, read ``received``; ``stop()`` at the end."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _release: asyncio.Event | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_then(self, path: str, *statuses: int) -> None:
        """Answer the next POSTs to ``path`` with ``statuses``, then 200."""
        self.statuses[path] = list(statuses)

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(found := self.on(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(found)} of {count} requests in {timeout}s")
            time.sleep(0.02)
        return found

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.received.append(Received(request.path, dict(request.headers), body))
        if request.path in self.hang:
            assert self._release is not None
            await self._release.wait()
        queued = self.statuses.get(request.path)
        status = queued.pop(0) if queued else 200
        return web.Response(status=status, text="ok" if status < 300 else "no")

    def start(self) -> Receiver:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self._release = asyncio.Event()
            server = site._server
            assert isinstance(server, asyncio.base_events.Server)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def release(self) -> None:
        """Let hanging requests answer."""
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    def stop(self) -> None:
        self.release()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


def _slack(body: Any) -> list[str]:
    problems = []
    if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
        return ["Slack needs text or blocks"]
    for block in body.get("blocks", []):
        if block.get("type") not in {"header", "section", "context", "divider"}:
            problems.append(f"unknown block type {block.get('type')}")
        text = block.get("text", {})
        if text and (text.get("type") not in {"plain_text", "mrkdwn"} or len(text["text"]) > 3000):
            problems.append("a block's text must be plain_text/mrkdwn up to 3000 characters")
        if len(block.get("fields", [])) > 10:
            problems.append("a section has more than 10 fields")
    return problems


def _teams(body: Any) -> list[str]:
    try:
        (attachment,) = body["attachments"]
        card = attachment["content"]
    except (KeyError, TypeError, ValueError):
        return ["Teams needs a message with one attachment"]
    problems = []
    if body.get("type") != "message":
        problems.append("type must be message")
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        problems.append("the attachment must be an Adaptive Card")
    if card.get("type") != "AdaptiveCard" or not card.get("version") or not card.get("body"):
        problems.append("an Adaptive Card needs type, version and body")
    return problems


def _discord(body: Any) -> list[str]:
    if not isinstance(body, dict) or not (body.get("content") or body.get("embeds")):
        return ["Discord needs content or embeds"]
    problems = []
    if len(body.get("content", "")) > 2000:
        problems.append("content over 2000 characters")
    for embed in body.get("embeds", []):
        if len(embed.get("description", "")) > 4096 or len(embed.get("fields", [])) > 25:
            problems.append("an embed over Discord's limits")
        if any(len(f["value"]) > 1024 or not f["value"] for f in embed.get("fields", [])):
            problems.append("a field value empty or over 1024 characters")
    return problems


def _alertmanager(body: Any) -> list[str]:
    if not isinstance(body, list) or not body:
        return ["Alertmanager takes a non-empty list of alerts"]
    return [
        "an alert needs labels with alertname, and startsAt"
        for alert in body
        if not alert.get("labels", {}).get("alertname") or "startsAt" not in alert
    ]


def _webhook(body: Any) -> list[str]:
    wanted = {"apiVersion", "kind", "event", "namespace", "canary", "reason", "verdicts", "time"}
    missing = wanted - set(body) if isinstance(body, dict) else wanted
    return [f"missing {', '.join(sorted(missing))}"] if missing else []


SHAPES: dict[str, Callable[[Any], list[str]]] = {
    "slack": _slack,
    "msteams": _teams,
    "discord": _discord,
    "alertmanager": _alertmanager,
    "webhook": _webhook,
}


def shape_problems(kind: str, received: Received) -> list[str]:
    """What a receiver of ``kind`` would refuse in ``received`` (empty: nothing)."""
    if received.headers.get("Content-Type") != "application/json":
        return ["Content-Type is not application/json"]
    return SHAPES[kind](received.json())

"""The built-in load generator: GETs at a fixed rate for a bounded time, loopback only.

Started by the canary controller for a Canary's ``loadGenerator`` (``StartLoad`` action) and by
``canarymesh demo`` for the ingress traffic. It runs its own event loop in a daemon thread, so
the synchronous controller loop and the CLI can start and stop it without becoming async.

Bounds, so a typo cannot flood the machine: at most :data:`MAX_RPS` requests per second, at most
:data:`MAX_CONCURRENCY` in flight (late requests are skipped and counted, never queued), and a
``duration`` after which it stops by itself. Only loopback addresses are contacted: a URL naming
a mesh host (``http://productpage.webapps:9080/productpage``) is sent to the mesh's ingress
gateway with that ``Host`` header, as a caller outside the mesh would reach it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from canarymesh.errors import ConfigError

__all__ = ["MAX_CONCURRENCY", "MAX_RPS", "LoadGenerator", "LoadStats", "loopback_target"]

MAX_RPS = 500.0
MAX_CONCURRENCY = 64


@dataclass
class LoadStats:
    """What the generator sent: answers by status code (0 = connection error), skipped ticks."""

    codes: Counter[int] = field(default_factory=Counter)
    skipped: int = 0

    @property
    def sent(self) -> int:
        return sum(self.codes.values())


def loopback_target(url: str, ingress_url: str | None) -> tuple[str, dict[str, str]]:
    """The loopback URL to request for ``url``, and the extra headers (Host) it needs."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"load generator url {url!r}: only http://host[:port]/path is supported")
    if _is_loopback(parts.hostname):
        return url, {}
    if ingress_url is None:
        raise ConfigError(f"load generator url {url!r} names a mesh host but no ingress is known")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return ingress_url.rstrip("/") + path, {"Host": parts.netloc}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoadGenerator:
    """``rps`` GETs of ``url`` per second for ``duration`` seconds (or until :meth:`stop`)."""

    def __init__(
        self,
        url: str,
        rps: float,
        duration: float,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        host = urlsplit(url).hostname or ""
        if not _is_loopback(host):
            raise ConfigError(f"load generator: {url} is not a loopback address")
        if not 0 < rps <= MAX_RPS:
            raise ConfigError(f"load generator: rps must be in (0, {MAX_RPS:g}], not {rps:g}")
        self.url, self.rps, self.duration = url, rps, duration
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.stats = LoadStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadgen", daemon=True)

    def start(self) -> LoadGenerator:
        self._thread.start()
        return self

    def stop(self) -> LoadStats:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout + 1)
        return self.stats

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        connector = aiohttp.TCPConnector(limit=MAX_CONCURRENCY)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=connector, trust_env=False
        ) as session:
            in_flight: set[asyncio.Task[None]] = set()
            started = time.monotonic()
            sent = 0
            while not self._stop.is_set() and time.monotonic() - started < self.duration:
                due = started + sent / self.rps
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                sent += 1
                if len(in_flight) >= MAX_CONCURRENCY:
                    self.stats.skipped += 1
                    continue
                task = asyncio.create_task(self._one(session))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.wait(in_flight, timeout=self.timeout)

    async def _one(self, session: aiohttp.ClientSession) -> None:
        try:
            async with session.get(self.url, headers=self.headers) as response:
                await response.read()
                self.stats.codes[response.status] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.stats.codes[0] += 1

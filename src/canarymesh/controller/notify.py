"""The notifier: tells Slack, Teams, Discord, signed webhooks and Alertmanager about rollouts.

A :class:`~canarymesh.controller.wiring.DecisionSink` (the loop reports every decision to it,
next to the controller's metrics). ``record`` only derives the events (pure,
:mod:`canarymesh.views.rollout_events`) and puts them in a bounded queue; it never waits on a
network, a Secret or a lock held by a sender, so a slow or dead receiver cannot delay a
decision. When the queue is full the event is dropped and counted
(``canarymesh_notification_events_dropped_total``).

Everything else runs on the notifier's own thread, an asyncio loop:

* each event is resolved into deliveries: the Canary's subscriptions (an AlertProvider by
  ``providerRef``, or inline) and every provider with ``meshWide`` whose events and namespaces
  cover it, each provider once; URLs and HMAC keys are read from their Secrets at that moment
  (a rotated Secret takes effect with the next event);
* each receiver has its own lane (deliveries in order, one at a time, a bounded backlog), so a
  dead Slack never holds back a Discord;
* a delivery is retried with exponential backoff and full jitter on connection errors,
  timeouts, 5xx and 429 (``Retry-After`` honoured up to the cap); another answer ends it.

Secrets stay secret: logs name the provider, its kind and the Secret, never a URL or a key
(aiohttp's errors carry the URL, so only their class name is logged), and redirects are not
followed (a redirect would carry the signed body elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import logging
import queue
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge

from canarymesh.api.durations import parse_duration
from canarymesh.api.notifications import (
    EVENTS,
    SECRET_ADDRESS_KEY,
    SECRET_HMAC_KEY,
    AlertProviderSpec,
    Notification,
)
from canarymesh.controller.wiring import CanaryItem, ProviderSource
from canarymesh.errors import ConfigError
from canarymesh.ports import Clock
from canarymesh.rollout.machine import Decision
from canarymesh.rollout.state import CanaryState
from canarymesh.views.notification_payloads import (
    alertmanager_events,
    alertmanager_url,
    request_for,
)
from canarymesh.views.rollout_events import RolloutEvent, rollout_events

__all__ = ["NotifyMetrics", "Notifier", "Retry"]

log = logging.getLogger("canarymesh.notify")

EVENT_CAPACITY = 1000  # events waiting to be resolved
LANE_CAPACITY = 100  # deliveries waiting for one receiver


@dataclass(frozen=True, slots=True)
class Retry:
    """Exponential backoff with full jitter: attempt n waits a random time up to
    ``min(cap, first * factor**n)``; ``attempts`` tries in all."""

    attempts: int = 6
    first: float = 0.5
    factor: float = 2.0
    cap: float = 30.0

    def delay(self, attempt: int, pick: Callable[[float, float], float]) -> float:
        return pick(0.0, min(self.cap, self.first * self.factor**attempt))


class NotifyMetrics:
    """The notifier's series, in the controller's registry (so on its ``/metrics``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "canarymesh_rollout_events",
            "Rollout events (started, step, paused, promoted, rolledBack)",
            ["namespace", "canary", "event"],
            registry=registry,
        )
        self.deliveries = Counter(
            "canarymesh_notifications",
            "Notification deliveries by provider, receiver kind, event and outcome "
            "(sent, failed, dropped)",
            ["provider", "type", "event", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "canarymesh_notification_retries",
            "Delivery attempts retried after a connection error, a timeout, 5xx or 429",
            ["provider", "type"],
            registry=registry,
        )
        self.dropped = Counter(
            "canarymesh_notification_events_dropped",
            "Events dropped before delivery because the notifier's queue was full",
            ["namespace", "canary", "event"],
            registry=registry,
        )
        self.queued = Gauge(
            "canarymesh_notification_queue",
            "Events waiting to be resolved into deliveries",
            registry=registry,
        )


@dataclass(frozen=True, slots=True)
class _Job:
    """One event and the Canary's subscriptions when it happened."""

    event: RolloutEvent
    notifications: tuple[Notification, ...]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST to one receiver. ``receiver`` keys its lane (a digest, never the URL)."""

    provider: str
    kind: str
    receiver: str
    url: str
    body: bytes
    headers: Mapping[str, str]
    timeout: float
    event: str


_STOP = object()


class Notifier:
    def __init__(
        self,
        source: ProviderSource,
        metrics: NotifyMetrics,
        clock: Clock,
        *,
        retry: Retry | None = None,
        capacity: int = EVENT_CAPACITY,
        lane_capacity: int = LANE_CAPACITY,
    ) -> None:
        self.source = source
        self.metrics = metrics
        self.clock = clock
        self.retry = retry or Retry()
        self.lane_capacity = lane_capacity
        self._inbox: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._lanes: dict[str, asyncio.Queue[Delivery]] = {}
        self._dropping: set[str] = set()  # receivers whose backlog is full
        self._inbox_full = False  # the loop's side only
        self._tasks: set[asyncio.Task[None]] = set()
        self._random = random.Random()
        self._session: aiohttp.ClientSession | None = None
        self.idle = threading.Event()  # set while nothing is queued or in flight (tests)
        self.idle.set()
        self._busy = 0
        self._busy_lock = threading.Lock()

    # --- the loop's side: never blocks ----------------------------------------------------

    def record(self, item: CanaryItem, before: CanaryState, decision: Decision) -> None:
        try:
            events = rollout_events(item.namespace, item.name, item.rollout_id, item.canary,
                                    before, decision, self.clock.now())  # fmt: skip
        except Exception:  # a notification must never cost a decision
            log.exception("%s: cannot derive the rollout's events", item.key)
            return
        for event in events:
            self.metrics.events.labels(event.namespace, event.canary, event.kind).inc()
            self._submit(_Job(event, item.canary.notifications))

    def _submit(self, job: _Job) -> None:
        self._enter()
        try:
            self._inbox.put_nowait(job)
        except queue.Full:
            self._leave()
            event = job.event
            self.metrics.dropped.labels(event.namespace, event.canary, event.kind).inc()
            if not self._inbox_full:  # once per spell: logging each drop would cost the loop
                self._inbox_full = True
                log.warning("notifier queue full (%d events): events are dropped from now "
                            "on, first %s of %s", self._inbox.maxsize, event.kind,
                            event.key)  # fmt: skip
            return
        if self._inbox_full:
            self._inbox_full = False
            log.warning("notifier queue takes events again")
        self.metrics.queued.set(self._inbox.qsize())

    def _enter(self) -> None:
        with self._busy_lock:
            self._busy += 1
            self.idle.clear()

    def _leave(self) -> None:
        with self._busy_lock:
            self._busy -= 1
            if self._busy == 0:
                self.idle.set()

    # --- the notifier's thread ---------------------------------------------------------------

    def start(self) -> Notifier:
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop taking events; deliveries still in flight get ``timeout`` seconds."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._inbox.put(_STOP, timeout=timeout)
        self._thread.join(timeout + 1.0)
        self._thread = None

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        connector = aiohttp.TCPConnector(limit_per_host=4)
        # No proxy: receivers are the user's endpoints; HTTP_PROXY is the mesh apps' variable.
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
            self._session = session
            while True:
                job = await asyncio.to_thread(self._inbox.get)
                self.metrics.queued.set(self._inbox.qsize())
                if job is _STOP:
                    break
                assert isinstance(job, _Job)
                try:
                    deliveries = await asyncio.to_thread(self.deliveries, job)
                except Exception:  # the notifier's boundary: log, go on with the next event
                    log.exception("%s: cannot resolve the %s notifications", job.event.key,
                                  job.event.kind)  # fmt: skip
                    deliveries = []
                for delivery in deliveries:
                    self._offer(delivery)
                self._leave()
            await self._drain()

    async def _drain(self, grace: float = 2.0) -> None:
        """Give what is queued ``grace`` seconds to be delivered, then stop the lanes."""
        joins = [asyncio.create_task(lane.join()) for lane in self._lanes.values()]
        if joins:
            await asyncio.wait(joins, timeout=grace)
        for task in [*joins, *self._tasks]:
            task.cancel()

    def _offer(self, delivery: Delivery) -> None:
        lane = self._lanes.get(delivery.receiver)
        if lane is None:
            lane = self._lanes[delivery.receiver] = asyncio.Queue(self.lane_capacity)
            task = asyncio.get_running_loop().create_task(self._serve_lane(lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            lane.put_nowait(delivery)
        except asyncio.QueueFull:
            self._count(delivery, "dropped")
            # Said once per spell of drops (a dead receiver would otherwise flood the log):
            # canarymesh_notifications_total{outcome="dropped"} counts every one.
            if delivery.receiver not in self._dropping:
                self._dropping.add(delivery.receiver)
                log.warning("notifications to %s provider %s are dropped from now on: its "
                            "backlog of %d is full", delivery.kind, delivery.provider,
                            self.lane_capacity)  # fmt: skip
            return
        if delivery.receiver in self._dropping:
            self._dropping.discard(delivery.receiver)
            log.warning("notifications to %s provider %s are queued again", delivery.kind,
                        delivery.provider)  # fmt: skip
        self._enter()

    async def _serve_lane(self, lane: asyncio.Queue[Delivery]) -> None:
        while True:
            delivery = await lane.get()
            try:
                await self._deliver(delivery)
            except Exception:  # the lane's boundary: one bad delivery never stops the lane
                log.exception("notification of %s to %s provider %s failed", delivery.event,
                              delivery.kind, delivery.provider)  # fmt: skip
                self._count(delivery, "failed")
            finally:
                lane.task_done()
                self._leave()

    async def _deliver(self, delivery: Delivery) -> None:
        why = ""
        for attempt in range(self.retry.attempts):
            wait = None
            try:
                timeout = aiohttp.ClientTimeout(total=delivery.timeout)
                assert self._session is not None  # set before any lane starts
                async with self._session.post(
                    delivery.url,
                    data=delivery.body,
                    headers=dict(delivery.headers),
                    timeout=timeout,
                    allow_redirects=False,
                ) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self._count(delivery, "sent")
                        return
                    why = f"HTTP {response.status}"
                    if response.status != 429 and response.status < 500:
                        break  # the receiver refused this request: sending it again won't help
                    wait = _retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as err:
                why = type(err).__name__  # its text carries the URL: never logged
            if attempt + 1 < self.retry.attempts:
                self.metrics.retries.labels(delivery.provider, delivery.kind).inc()
                delay = self.retry.delay(attempt, self._random.uniform)
                await asyncio.sleep(min(self.retry.cap, wait) if wait is not None else delay)
        self._count(delivery, "failed")
        log.warning("notification of %s to %s provider %s failed (%s)", delivery.event,
                    delivery.kind, delivery.provider, why)  # fmt: skip

    def _count(self, delivery: Delivery, outcome: str) -> None:
        self.metrics.deliveries.labels(
            delivery.provider, delivery.kind, delivery.event, outcome
        ).inc()

    # --- resolution (blocking reads; on a worker thread of the notifier) -------------------

    def deliveries(self, job: _Job) -> list[Delivery]:
        """The POSTs ``job``'s event makes: one per provider that wants it."""
        event = job.event
        providers = self.source.providers()
        chosen: dict[str, tuple[str, AlertProviderSpec, set[str]]] = {}
        by_name = {(p.namespace, p.name): p for p in providers}
        for index, entry in enumerate(job.notifications):
            wanted: set[str] = set(entry.events or EVENTS)
            if entry.provider_ref is not None:
                ref = entry.provider_ref
                namespace = ref.namespace or event.namespace
                found = by_name.get((namespace, ref.name))
                if found is None:
                    log.error("%s: AlertProvider %s/%s does not exist; %s not notified",
                              event.key, namespace, ref.name, event.kind)  # fmt: skip
                    continue
                key, spec, where = f"{namespace}/{ref.name}", found.spec, namespace
            else:
                assert entry.provider is not None  # validated: one of the two
                key, spec, where = f"{event.key}#{index}", entry.provider, event.namespace
            _, _, before = chosen.get(key, (where, spec, set()))
            chosen[key] = (where, spec, before | wanted)
        for provider in providers:
            mesh_wide = provider.spec.mesh_wide
            if mesh_wide is None:
                continue
            if mesh_wide.namespaces and event.namespace not in mesh_wide.namespaces:
                continue
            key = f"{provider.namespace}/{provider.name}"
            _, _, before = chosen.get(key, (provider.namespace, provider.spec, set()))
            events = set(mesh_wide.events or EVENTS)
            chosen[key] = (provider.namespace, provider.spec, before | events)
        out = []
        for key, (namespace, spec, subscribed) in sorted(chosen.items()):
            if spec.type == "alertmanager":
                subscribed = set(alertmanager_events(subscribed))
            if event.kind not in subscribed:
                continue
            try:
                delivery = self._delivery(key, namespace, spec, event)
            except ConfigError as err:
                log.error("%s: %s notification to %s provider %s: %s", event.key, event.kind,
                          spec.type, key, err)  # fmt: skip
                self.metrics.deliveries.labels(key, spec.type, event.kind, "failed").inc()
                continue
            if delivery is not None:
                out.append(delivery)
        return out

    def _delivery(
        self, key: str, namespace: str, spec: AlertProviderSpec, event: RolloutEvent
    ) -> Delivery | None:
        data: Mapping[str, bytes] = {}
        if spec.secret_ref is not None:
            found = self.source.secret(namespace, spec.secret_ref.name)
            if found is None:
                raise ConfigError(f"Secret {namespace}/{spec.secret_ref.name} does not exist")
            data = found
        address = data.get(SECRET_ADDRESS_KEY)
        url = address.decode().strip() if address is not None else spec.address
        if not url:
            raise ConfigError(
                f"Secret {namespace}/{spec.secret_ref.name if spec.secret_ref else '?'} has no "
                f"key {SECRET_ADDRESS_KEY}"
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"the {SECRET_ADDRESS_KEY} of its Secret is not an http(s) URL")
        key_bytes = None
        if spec.type == "webhook":
            key_bytes = data.get(SECRET_HMAC_KEY)
            if not key_bytes:
                raise ConfigError(
                    f"Secret {namespace}/{spec.secret_ref.name if spec.secret_ref else '?'} has "
                    f"no key {SECRET_HMAC_KEY}: a webhook is always signed"
                )
        if spec.type == "alertmanager":
            url = alertmanager_url(url)
        request = request_for(spec.type, event, uuid.uuid4().hex, channel=spec.channel,
                              username=spec.username, hmac_key=key_bytes)  # fmt: skip
        if request is None:
            return None
        body, headers = request
        timeout = parse_duration(spec.timeout) or datetime.timedelta(seconds=5)
        receiver = hashlib.sha256(url.encode()).hexdigest()[:16]
        return Delivery(key, spec.type, receiver, url, body, headers, timeout.total_seconds(),
                        event.kind)  # fmt: skip


def _retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header given in seconds (an HTTP date is not honoured)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

"""What notifications cost the controller's loop, and how fast they arrive.

    .venv/bin/python bench/notify.py                  # 500 decisions per sink
    .venv/bin/python bench/notify.py --decisions 2000 # a burst over the queue's 1,000

The loop reports every decision to its sink. The baseline is the sink without notifications
(the controller's metrics alone); against it, the same decisions go to the metrics and the
notifier with five mesh-wide providers (Slack, Teams, Discord, a signed webhook, Alertmanager),
first with every receiver answering at once, then with every receiver hanging (it never
answers: the worst receiver there is), all at once; then 100 decisions 50 ms apart to healthy
receivers ("paced"). Each decision makes one ``step`` event. Reported: the
time ``record`` takes per decision (median and p99) as a ratio of the baseline's, and, with
healthy receivers, the time from ``record`` to the receiver holding the request (p50, p99),
and what was dropped: events when the queue (1,000) was full, deliveries when a receiver's
backlog (100) was. The decisions come as one burst, far
faster than a loop makes them (a few a second per Canary): the latencies are queueing under
that burst, an upper bound.
Receivers are an aiohttp server on 127.0.0.1 in this process; nothing else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import re
import statistics
import threading
import time
from collections.abc import Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry

from canarymesh.api.canary import Canary
from canarymesh.api.notifications import AlertProviderSpec
from canarymesh.controller.metrics import ControllerMetrics
from canarymesh.controller.notify import Notifier, NotifyMetrics, Retry
from canarymesh.controller.wiring import CanaryItem, DecisionSink, DecisionSinks, ProviderItem
from canarymesh.ports.clock import SystemClock
from canarymesh.rollout.machine import Decision
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState

DECISION = re.compile(r"decision (\d+)")
KINDS = ("slack", "msteams", "discord", "webhook", "alertmanager")
SPEC = Canary.model_validate({
    "target": {"host": "reviews", "virtualService": "reviews", "stableSubset": "v1",
               "canarySubset": "v3"},
    "strategy": {"canary": {"steps": [{"setWeight": 10}] * 20}},
})  # fmt: skip


class Receivers:
    """POSTs answered at once (``hang`` False) or never; the arrival time of each delivery."""

    def __init__(self, hang: bool) -> None:
        self.hang = hang
        self.arrived: list[tuple[int, float]] = []
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.ready = threading.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        found = DECISION.search(body.decode())
        if found is not None:  # every kind's body carries the reason, "decision <n>"
            self.arrived.append((int(found.group(1)), time.perf_counter()))
        if self.hang:
            await asyncio.sleep(3600)
        return web.Response(status=204)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> Receivers:
        self.thread.start()
        self.ready.wait(10)
        return self


class Providers:
    def __init__(self, url: str) -> None:
        self.url = url

    def providers(self) -> tuple[ProviderItem, ...]:
        made = []
        for kind in KINDS:
            spec = {"type": kind, "secretRef": {"name": kind}, "meshWide": {}, "timeout": "2s"}
            made.append(ProviderItem("default", kind, AlertProviderSpec.model_validate(spec)))
        return tuple(made)

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        return {"address": f"{self.url}/{name}".encode(), "hmacKey": b"bench-key"}


def decisions(count: int) -> list[tuple[CanaryItem, CanaryState, Decision]]:
    """``count`` decisions, each passing a step (one ``step`` event), over 100 Canaries."""
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    out = []
    for n in range(count):
        item = CanaryItem("default", f"app-{n % 100}", f"r{n}", SPEC)
        before = CanaryState.initial(item.name, "v1", now).with_phase(Phase.PROGRESSING, "x", now)
        before = before.with_step(n % 10, now)
        after = before.with_step(n % 10 + 1, now)
        out.append((item, before, Decision(after, (), f"decision {n}")))
    return out


def timed(
    sink: DecisionSink, work: list[tuple[CanaryItem, CanaryState, Decision]], pace: float = 0.0
) -> tuple[list[float], list[float]]:
    """How long each ``record`` took, and when each began (``pace`` seconds apart)."""
    spent, began = [], []
    for item, before, decision in work:
        if pace:
            time.sleep(pace)
        start = time.perf_counter()
        sink.record(item, before, decision)
        spent.append(time.perf_counter() - start)
        began.append(start)
    return spent, began


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    count: int, hang: bool, pace: float = 0.0
) -> tuple[list[float], list[float], list[float], int]:
    """(baseline record times, notifier record times, delivery latencies, drops: events
    when the queue was full and deliveries when a receiver's backlog was)."""
    receivers = Receivers(hang).start()
    registry = CollectorRegistry()
    notifier = Notifier(Providers(f"http://127.0.0.1:{receivers.port}"),
                        NotifyMetrics(registry), SystemClock(),
                        retry=Retry(attempts=3, first=0.01)).start()  # fmt: skip
    work = decisions(count)
    baseline, _ = timed(DecisionSinks(ControllerMetrics()), work, pace)
    measured, began = timed(DecisionSinks(ControllerMetrics(), notifier), work, pace)
    if not hang:
        notifier.idle.wait(120)
    latencies = [at - began[n] for n, at in list(receivers.arrived)]
    dropped = int(sum(
        s.value for m in registry.collect() for s in m.samples
        if s.name == "canarymesh_notification_events_dropped_total"
        or (s.name == "canarymesh_notifications_total" and s.labels["outcome"] == "dropped")
    ))  # fmt: skip
    notifier.stop(timeout=0.5)
    # The receivers' thread is a daemon: it ends with the process (stopping its loop under
    # hanging requests only makes noise).
    return baseline, measured, latencies, dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=500)
    args = parser.parse_args()
    print(f"{args.decisions} decisions, 5 mesh-wide receivers each\n")
    print(f"{'receivers':10} {'record p50 us':>14} {'p99 us':>8} {'vs baseline p50':>16} "
          f"{'p99':>6} {'dropped':>8}")  # fmt: skip
    runs = [("healthy", args.decisions, False, 0.0), ("hanging", args.decisions, True, 0.0),
            ("paced", 100, False, 0.05)]  # fmt: skip
    for name, count, hang, pace in runs:
        baseline, measured, latencies, dropped = run(count, hang, pace)
        b50, b99 = statistics.median(baseline), p(baseline, 0.99)
        m50, m99 = statistics.median(measured), p(measured, 0.99)
        print(f"{name:10} {m50 * 1e6:14.1f} {m99 * 1e6:8.1f} {m50 / b50:15.2f}x "
              f"{m99 / b99:5.2f}x {dropped:8d}")  # fmt: skip
        if hang:
            print(f"{'':10} no receiver answered; every record returned")
        else:
            print(f"{'':10} {len(latencies)} requests arrived; from record to arrival: "
                  f"p50 {p(latencies, 0.5) * 1e3:.1f} ms, p99 "
                  f"{p(latencies, 0.99) * 1e3:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()

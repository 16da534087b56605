"""Replicas of the in-cluster entry point's loop (``canarymesh.controller.kube.run``) against
one fake API server, as the Deployment runs them: each with its own client, watch, Lease
elector and (optionally) notifier; all stopped and closed on leaving."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from canarymesh.controller.kube import KubeProviders, KubeSettings, run, wiring_for
from canarymesh.controller.metrics import ControllerMetrics
from canarymesh.controller.notify import Notifier, NotifyMetrics, Retry
from canarymesh.ports.clock import SystemClock
from canarymesh.runtime.kube.client import KubeApi
from canarymesh.runtime.kube.lease import LeaderElector
from canarymesh.runtime.kube.watch import CanaryWatch
from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.unit.kube.test_adapters import canary_doc

__all__ = ["Replica", "quick_canary", "replicas"]


@dataclass
class Replica:
    identity: str
    api: KubeApi
    notifier: Notifier | None


def quick_canary(**spec: Any) -> dict[str, Any]:
    """reviews in webapps: 50% for a 1 s pause, no analysis (plus ``spec``'s fields)."""
    doc = canary_doc()
    doc["spec"] = {
        "target": doc["spec"]["target"],
        "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}]}},
        "skipAnalysis": True,
        **spec,
    }
    return doc


@contextmanager
def replicas(
    server: FakeApiServer, *identities: str, notify: bool = False
) -> Iterator[list[Replica]]:
    stop = threading.Event()
    threads, clients, watches, running = [], [], [], []
    try:
        for identity in identities:
            api_client = client.ApiClient(client.Configuration(host=server.url))
            clients.append(api_client)
            api = KubeApi(api_client)
            settings = KubeSettings(
                prometheus_url="http://127.0.0.1:9",
                istiod_url=None,
                identity=identity,
                lease_namespace="canarymesh-system",
            )
            watch = CanaryWatch(api, timeout_seconds=2).start()
            watches.append(watch)
            # As main() wires it: one notifier per replica, fed by the loop's decisions.
            metrics = ControllerMetrics()
            notifier = None
            if notify:
                retry = Retry(attempts=2, first=0.01, cap=0.05)
                notifier = Notifier(
                    KubeProviders(api), NotifyMetrics(metrics.registry), SystemClock(), retry=retry
                ).start()
            running.append(Replica(identity, api, notifier))
            wiring, _ = wiring_for(api, settings, watch, metrics, notifier)
            elector = LeaderElector(api, settings.lease_namespace, settings.lease_name, identity)
            thread = threading.Thread(target=run, args=(wiring, elector, stop, 0.05), daemon=True)
            thread.start()
            threads.append(thread)
        yield running
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for replica in running:
            if replica.notifier is not None:
                replica.notifier.idle.wait(5)
                replica.notifier.stop()
        for watch in watches:
            watch.stop()
        for api_client in clients:
            api_client.close()  # type: ignore[no-untyped-call]

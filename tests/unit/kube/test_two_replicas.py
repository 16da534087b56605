"""The in-cluster entry point's loop (``canarymesh.controller.kube.run``) as two replicas against
one API server: each watches, only the Lease holder acts, and the rollout completes. Every Event
names the replica that decided it, so "never both at once" is checked on what the cluster saw.
"""

from __future__ import annotations

import threading
import time

from kubernetes import client

from canarymesh.controller.kube import KubeSettings, run, wiring_for
from canarymesh.controller.metrics import ControllerMetrics
from canarymesh.runtime.kube.client import KubeApi
from canarymesh.runtime.kube.lease import LeaderElector
from canarymesh.runtime.kube.watch import CanaryWatch
from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.unit.kube.test_adapters import canary_doc, seed_bookinfo


def test_two_replicas_one_leader_and_the_rollout_completes(server: FakeApiServer) -> None:
    seed_bookinfo(server)
    doc = canary_doc()
    doc["spec"] = {
        "target": doc["spec"]["target"],
        "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}]}},
        "skipAnalysis": True,
    }
    server.put("canarymesh.io", "canaries", doc)
    stop = threading.Event()
    threads, clients, watches = [], [], []
    for identity in ("replica-a", "replica-b"):
        api_client = client.ApiClient(client.Configuration(host=server.url))
        api = KubeApi(api_client)
        settings = KubeSettings(prometheus_url="http://127.0.0.1:9", istiod_url=None,
                                identity=identity, lease_namespace="canarymesh-system")  # fmt: skip
        watch = CanaryWatch(api, timeout_seconds=2).start()
        wiring, _ = wiring_for(api, settings, watch, ControllerMetrics())
        elector = LeaderElector(api, settings.lease_namespace, settings.lease_name, identity)
        thread = threading.Thread(target=run, args=(wiring, elector, stop, 0.05), daemon=True)
        thread.start()
        threads.append(thread)
        clients.append(api_client)
        watches.append(watch)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = server.object("canarymesh.io", "canaries", "webapps", "reviews").get("status")
            if status and status["phase"] in ("Succeeded", "Failed"):
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for watch in watches:
            watch.stop()
        for api_client in clients:
            api_client.close()  # type: ignore[no-untyped-call]

    status = server.object("canarymesh.io", "canaries", "webapps", "reviews")["status"]
    assert status["phase"] == "Succeeded", status["message"]
    events = [o for (_, p, _, _), o in server.objects.items() if p == "events"]
    deciders = {e["reportingInstance"] for e in events}
    lease = server.object("coordination.k8s.io", "leases", "canarymesh-system",
                          "canarymesh-controller")  # fmt: skip
    assert deciders == {lease["spec"]["holderIdentity"]}
    assert len(events) >= 3
    routes = server.object("networking.istio.io", "virtualservices", "webapps", "reviews")
    assert routes["spec"]["http"][-1]["route"] == [
        {"destination": {"host": "reviews", "subset": "v3"}, "weight": 100}
    ]

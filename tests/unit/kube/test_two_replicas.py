"""The in-cluster entry point's loop (``canarymesh.controller.kube.run``) as two replicas against
one API server: each watches, only the Lease holder acts, and the rollout completes. Every Event
names the replica that decided it, so "never both at once" is checked on what the cluster saw.
"""

from __future__ import annotations

import time

from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.unit.kube.replicas import quick_canary, replicas
from tests.unit.kube.test_adapters import seed_bookinfo


def test_two_replicas_one_leader_and_the_rollout_completes(server: FakeApiServer) -> None:
    seed_bookinfo(server)
    server.put("canarymesh.io", "canaries", quick_canary())
    with replicas(server, "replica-a", "replica-b"):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = server.object("canarymesh.io", "canaries", "webapps", "reviews").get("status")
            if status and status["phase"] in ("Succeeded", "Failed"):
                break
            time.sleep(0.1)

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

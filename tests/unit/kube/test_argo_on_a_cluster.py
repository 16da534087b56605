"""An Argo Rollout's revisions run on the local mesh only; on a cluster Argo Rollouts itself
runs the Rollout. Both ways of getting one there are refused with a sentence that says so:
``rollout start --context`` before it touches the cluster, and a Canary with
``target.revisions`` applied by hand, whose status says why it does not move."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kubernetes import client

from canarymesh.api.canary import Canary
from canarymesh.cli.main import cli
from canarymesh.controller.kube import KubeSettings, run, wiring_for
from canarymesh.controller.metrics import ControllerMetrics
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.runtime.kube.client import KubeApi
from canarymesh.runtime.kube.lease import LeaderElector
from canarymesh.runtime.kube.router import KubeRouter
from canarymesh.runtime.kube.watch import CanaryWatch
from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.unit.kube.test_adapters import canary_doc, seed_bookinfo

REPO = Path(__file__).resolve().parents[3]
REFUSAL = (
    "Canary webapps/reviews: spec.target.revisions (an Argo Rollout's revisions) runs on the "
    "local mesh; on a cluster, run the Rollout with Argo Rollouts"
)


def with_revisions() -> dict[str, object]:
    doc = canary_doc()
    doc["spec"]["target"]["revisions"] = {
        "destinationRule": "reviews",
        "stableHash": "abc",
        "canaryHash": "def",
    }
    return doc


def test_rollout_start_of_an_argo_rollout_on_a_cluster_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--state-dir", str(tmp_path), "rollout", "start", "--context", "nowhere", "-f",
         str(REPO / "canary-manifests/argo/rollouts-demo.yaml")],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "an Argo Rollout runs on the local mesh; on a cluster, apply it for Argo Rollouts " in (
        result.output
    )


def test_the_cluster_router_refuses_revisions_by_name(server: FakeApiServer) -> None:
    seed_bookinfo(server)
    canary = Canary.model_validate(with_revisions()["spec"])
    with client.ApiClient(client.Configuration(host=server.url)) as api_client:
        router = KubeRouter(KubeApi(api_client), "webapps", "reviews")
        calls: list[Callable[[], None]] = [
            lambda: router.reconcile(canary, Weights(0, "v1")),
            lambda: router.set_weights(canary, Weights(10, "v1")),
            lambda: router.finalize(canary, "v3"),
        ]
        for call in calls:
            with pytest.raises(ConfigError) as err:
                call()
            assert str(err.value) == REFUSAL
    assert not server.applies  # nothing written


def test_the_operator_shows_the_refusal_in_the_canarys_status(server: FakeApiServer) -> None:
    seed_bookinfo(server)
    server.put("canarymesh.io", "canaries", with_revisions())
    stop = threading.Event()
    with client.ApiClient(client.Configuration(host=server.url)) as api_client:
        api = KubeApi(api_client)
        settings = KubeSettings(prometheus_url="http://127.0.0.1:9", istiod_url=None)
        watch = CanaryWatch(api, timeout_seconds=2).start()
        wiring, _ = wiring_for(api, settings, watch, ControllerMetrics())
        elector = LeaderElector(api, "canarymesh-system", "lease", "solo")
        thread = threading.Thread(target=run, args=(wiring, elector, stop, 0.05), daemon=True)
        thread.start()
        try:
            deadline, status = time.monotonic() + 15, dict[str, Any]()
            while time.monotonic() < deadline and REFUSAL not in str(status.get("message")):
                status = server.object("canarymesh.io", "canaries", "webapps",
                                       "reviews").get("status") or {}  # fmt: skip
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(10)
            watch.stop()
    assert status.get("message") == f"cannot proceed: {REFUSAL}", status
    vs = server.object("networking.istio.io", "virtualservices", "webapps", "reviews")
    assert vs == yaml.safe_load((REPO / "canary-manifests/virtual-service.yaml").read_text()) | {
        "metadata": vs["metadata"]
    }

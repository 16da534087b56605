"""Config canaries on a cluster: :class:`KubeConfigRouter` through the real ``kubernetes`` client
against the fake API server. Bookinfo's fault injection on details (``bookinfo/networking/
fault-injection-details-v1.yaml``) rolled out to the four productpage pods, and a changed
``productpage-viewer`` AuthorizationPolicy; widened, rolled back, promoted, and continued by a
new router after a controller restart.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.api.canary import Canary
from canarymesh.controller.loop import Controller
from canarymesh.controller.wiring import CanaryItem, Wiring
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.config_split import LABEL, SUFFIX
from canarymesh.runtime.kube.client import KubeApi
from canarymesh.runtime.kube.config_router import ORIGINAL, OWNER, KubeConfigRouter
from canarymesh.runtime.kube.rollout_store import KubeStateStore
from tests.fakes import FakeClock, FakeMetrics
from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.unit.kube.test_same_rollout import Script

REPO = Path(__file__).resolve().parents[3]
NS = "bookinfo"
NET, SEC = "networking.istio.io", "security.istio.io"
PRODUCTPAGE = [f"productpage-v1-{i}" for i in range(4)]
Obj = dict[str, Any]


def documents(path: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all((REPO / path).read_text()) if d]


def named(path: str, kind: str, name: str) -> Obj:
    return next(d for d in documents(path) if (d["kind"], d["metadata"]["name"]) == (kind, name))


def pod(name: str, labels: dict[str, str], *, proxy: str | None = "sidecar",
        phase: str = "Running") -> Obj:  # fmt: skip
    containers: list[Obj] = [{"name": "app", "image": "app"}]
    if proxy is not None:
        containers.append({"name": "istio-proxy", "image": "proxyv2", "args": ["proxy", proxy]})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"containers": containers}, "status": {"phase": phase}}  # fmt: skip


def seed_pods(server: FakeApiServer) -> None:
    """Four productpage pods (the clients of details), a details pod (the target, not a client),
    an ingress gateway (no mesh routes), a pod without a sidecar and a pending one."""
    for name in PRODUCTPAGE:
        server.put("", "pods", pod(name, {"app": "productpage", "version": "v1"}))
    server.put("", "pods", pod("details-v1-0", {"app": "details", "version": "v1"}))
    server.put("", "pods", pod("ingressgateway-0", {"istio": "ingressgateway"}, proxy="router"))
    server.put("", "pods", pod("loadgen-0", {"app": "loadgen"}, proxy=None))
    pending = pod("productpage-v1-9", {"app": "productpage", "version": "v1"}, phase="Pending")
    server.put("", "pods", pending)
    spec = {"selector": {"app": "details"}, "ports": [{"port": 9080}]}
    meta = {"name": "details", "namespace": NS}
    service: Obj = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}
    server.put("", "services", service)


def placed(doc: Obj) -> Obj:
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = NS
    return doc


def seed_details(server: FakeApiServer) -> Canary:
    """The user's current details routing (all v1, both subsets) and the fault-injection canary."""
    seed_pods(server)
    vs = named("bookinfo/networking/virtual-service-all-v1.yaml", "VirtualService", "details")
    vs["metadata"]["annotations"] = {"owner": "team-details"}
    server.put(NET, "virtualservices", placed(vs))
    dr = named("bookinfo/networking/destination-rule-all.yaml", "DestinationRule", "details")
    server.put(NET, "destinationrules", placed(dr))
    changed = documents("bookinfo/networking/fault-injection-details-v1.yaml")
    return Canary.model_validate(
        {"target": {"host": "details"}, "config": {"resources": changed},
         "strategy": {"canary": {"steps": [{"setWeight": 25}, {"setWeight": 50}]}},
         "skipAnalysis": True}
    )  # fmt: skip


def labels(server: FakeApiServer) -> dict[str, str]:
    found = {}
    for (group, plural, _, name), obj in server.objects.items():
        value = (obj["metadata"].get("labels") or {}).get(LABEL)
        if (group, plural) == ("", "pods") and value is not None:
            found[name] = value
    return found


def user_view(obj: Obj) -> Obj:
    """What the user wrote: the object less what the API server keeps on its own."""
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "uid")}
    return {**obj, "metadata": meta}


def get(server: FakeApiServer, group: str, plural: str, name: str) -> Obj | None:
    found = server.objects.get((group, plural, NS, name))
    return copy.deepcopy(found) if found is not None else None


def faulted(vs: Obj) -> list[Obj]:
    return [rule for rule in vs["spec"]["http"] if "fault" in rule]


def test_a_quarter_puts_one_productpage_pod_on_the_fault(
    server: FakeApiServer, api: KubeApi
) -> None:
    canary = seed_details(server)
    router = KubeConfigRouter(api, NS, "details-config")
    router.reconcile(canary, Weights(0, "stable"))
    assert labels(server) == {}
    router.set_weights(canary, Weights(25, "stable"))

    got = labels(server)
    assert sorted(got) == PRODUCTPAGE  # not details, the gateway, the unmeshed or pending pod
    assert sorted(got.values()) == ["canary", "stable", "stable", "stable"]
    vs = get(server, NET, "virtualservices", "details")
    assert vs is not None
    (fault,) = faulted(vs)
    assert fault["match"] == [{"sourceLabels": {LABEL: "canary"}}]
    assert vs["spec"]["http"][-1] == {"route": [{"destination": {"host": "details",
                                                                 "subset": "v1"}}]}  # fmt: skip
    dr = get(server, NET, "destinationrules", "details")
    assert dr is not None and [s["name"] for s in dr["spec"]["subsets"]] == ["v1", "v2"]
    split = get(server, NET, "destinationrules", "details" + SUFFIX)
    assert split is not None
    assert split["spec"]["workloadSelector"] == {"matchLabels": {LABEL: "canary"}}
    assert [s["name"] for s in split["spec"]["subsets"]] == ["v1"]
    assert router.get_weights(canary) == Weights(25, "stable")
    assert router.verify_weights(canary, Weights(25, "stable")) is True
    assert router.verify_weights(canary, Weights(50, "stable")) is False


def test_widening_keeps_the_pods_already_on_the_change(server: FakeApiServer, api: KubeApi) -> None:
    canary = seed_details(server)
    router = KubeConfigRouter(api, NS, "details-config")
    router.set_weights(canary, Weights(25, "stable"))
    first = {name for name, side in labels(server).items() if side == "canary"}
    router.set_weights(canary, Weights(50, "stable"))
    second = {name for name, side in labels(server).items() if side == "canary"}
    assert len(first) == 1 and len(second) == 2 and first < second
    vs = get(server, NET, "virtualservices", "details")
    assert vs is not None and len(faulted(vs)) == 1
    assert router.verify_weights(canary, Weights(50, "stable")) is True


def test_rollback_restores_the_users_objects_exactly(server: FakeApiServer, api: KubeApi) -> None:
    canary = seed_details(server)
    before = {p: user_view(server.object(NET, p, NS, "details"))
              for p in ("virtualservices", "destinationrules")}  # fmt: skip
    router = KubeConfigRouter(api, NS, "details-config")
    router.set_weights(canary, Weights(25, "stable"))
    router.set_weights(canary, Weights(50, "stable"))
    router.set_weights(canary, Weights(0, "stable"))

    after = {p: user_view(server.object(NET, p, NS, "details")) for p in before}
    assert after == before
    assert get(server, NET, "destinationrules", "details" + SUFFIX) is None
    assert labels(server) == {}
    assert router.get_weights(canary) == Weights(0, "stable")
    assert router.verify_weights(canary, Weights(0, "stable")) is True
    assert router.verify_weights(canary, Weights(0, "canary")) is False  # not promoted


def test_promotion_makes_the_changed_documents_the_objects(
    server: FakeApiServer, api: KubeApi
) -> None:
    canary = seed_details(server)
    router = KubeConfigRouter(api, NS, "details-config")
    router.set_weights(canary, Weights(25, "stable"))
    router.set_weights(canary, Weights(100, "stable"))
    assert set(labels(server).values()) == {"canary"}
    assert router.verify_weights(canary, Weights(0, "canary")) is False
    router.finalize(canary, canary.canary_subset())

    changed = {
        d["kind"]: d for d in documents("bookinfo/networking/fault-injection-details-v1.yaml")
    }
    vs = server.object(NET, "virtualservices", NS, "details")
    dr = server.object(NET, "destinationrules", NS, "details")
    assert vs["spec"] == changed["VirtualService"]["spec"]
    assert dr["spec"] == changed["DestinationRule"]["spec"]
    assert vs["metadata"]["annotations"] == {"owner": "team-details"}  # ours gone, the user's kept
    assert get(server, NET, "destinationrules", "details" + SUFFIX) is None
    assert labels(server) == {}
    assert router.verify_weights(canary, Weights(0, "canary")) is True
    assert router.get_weights(canary) == Weights(0, "canary")


def test_a_restarted_controller_continues_without_splitting_twice(
    server: FakeApiServer, api: KubeApi
) -> None:
    canary = seed_details(server)
    original = server.object(NET, "virtualservices", NS, "details")
    KubeConfigRouter(api, NS, "details-config").set_weights(canary, Weights(25, "stable"))
    split_once = server.object(NET, "virtualservices", NS, "details")["spec"]

    restarted = KubeConfigRouter(api, NS, "details-config")
    assert restarted.get_weights(canary) == Weights(25, "stable")
    restarted.set_weights(canary, Weights(50, "stable"))
    vs = server.object(NET, "virtualservices", NS, "details")
    assert vs["spec"] == split_once and len(faulted(vs)) == 1
    assert json.loads(vs["metadata"]["annotations"][ORIGINAL]) == original["spec"]

    KubeConfigRouter(api, NS, "details-config").set_weights(canary, Weights(0, "stable"))
    assert user_view(server.object(NET, "virtualservices", NS, "details")) == user_view(original)


def test_a_new_pod_is_labelled_when_the_weights_are_verified(
    server: FakeApiServer, api: KubeApi
) -> None:
    canary = seed_details(server)
    router = KubeConfigRouter(api, NS, "details-config")
    router.set_weights(canary, Weights(50, "stable"))
    server.put("", "pods", pod("productpage-v1-4", {"app": "productpage", "version": "v1"}))
    assert router.verify_weights(canary, Weights(50, "stable")) is False
    assert "productpage-v1-4" in labels(server)
    assert sum(side == "canary" for side in labels(server).values()) == 3  # ceil(50% of 5)
    assert router.verify_weights(canary, Weights(50, "stable")) is True


def seed_policy(server: FakeApiServer) -> tuple[Canary, Obj]:
    seed_pods(server)
    current = placed(documents("bookinfo/policy/productpage-viewer.yaml")[0])
    server.put(SEC, "authorizationpolicies", current)
    changed = copy.deepcopy(current)
    changed["spec"]["rules"] = [{"to": [{"operation": {"methods": ["GET", "HEAD"]}}]}]
    canary = Canary.model_validate(
        {"target": {"host": "productpage"}, "config": {"resources": [changed]},
         "strategy": {"canary": {"steps": [{"setWeight": 50}]}}}
    )  # fmt: skip
    return canary, current


def test_a_policy_canary_splits_the_pods_it_selects(server: FakeApiServer, api: KubeApi) -> None:
    canary, current = seed_policy(server)
    router = KubeConfigRouter(api, NS, "viewer-config")
    router.set_weights(canary, Weights(50, "stable"))

    got = labels(server)
    assert sorted(got) == PRODUCTPAGE and sorted(got.values()) == ["canary"] * 2 + ["stable"] * 2
    main = server.object(SEC, "authorizationpolicies", NS, "productpage-viewer")
    split = server.object(SEC, "authorizationpolicies", NS, "productpage-viewer" + SUFFIX)
    assert main["spec"]["selector"]["matchLabels"] == {"app": "productpage", LABEL: "stable"}
    assert main["spec"]["rules"] == current["spec"]["rules"]
    assert split["spec"]["selector"]["matchLabels"] == {"app": "productpage", LABEL: "canary"}
    assert split["spec"]["rules"] == [{"to": [{"operation": {"methods": ["GET", "HEAD"]}}]}]
    assert router.verify_weights(canary, Weights(50, "stable")) is True

    # Every selected pod was labelled before the current policy started to require "stable".
    changes = server.changes
    narrowed = next(v for v, _, g, p, o in changes if p == "authorizationpolicies"
                    and LABEL in o["spec"]["selector"]["matchLabels"])  # fmt: skip
    labelled = [v for v, _, g, p, o in changes if p == "pods" and LABEL in o["metadata"]["labels"]]
    assert len([v for v in labelled if v < narrowed]) >= len(PRODUCTPAGE)

    router.set_weights(canary, Weights(0, "stable"))
    restored = server.object(SEC, "authorizationpolicies", NS, "productpage-viewer")
    assert user_view(restored) == user_view(current)
    assert get(server, SEC, "authorizationpolicies", "productpage-viewer" + SUFFIX) is None
    assert labels(server) == {}


def test_a_virtual_service_the_canary_created_is_deleted_on_rollback(
    server: FakeApiServer, api: KubeApi
) -> None:
    seed_pods(server)
    changed = named("bookinfo/networking/virtual-service-all-v1.yaml", "VirtualService", "details")
    changed["spec"]["http"][0]["timeout"] = "1s"
    canary = Canary.model_validate({"target": {"host": "details"},
                                    "config": {"resources": [changed]}})  # fmt: skip
    router = KubeConfigRouter(api, NS, "details-config")
    router.set_weights(canary, Weights(25, "stable"))
    created = server.object(NET, "virtualservices", NS, "details")
    assert created["spec"]["http"][-1] == {"route": [{"destination": {"host": "details"}}]}
    assert router.verify_weights(canary, Weights(25, "stable")) is True
    router.set_weights(canary, Weights(0, "stable"))
    assert get(server, NET, "virtualservices", "details") is None
    assert router.verify_weights(canary, Weights(0, "stable")) is True


def test_another_config_canarys_object_is_refused(server: FakeApiServer, api: KubeApi) -> None:
    canary = seed_details(server)
    KubeConfigRouter(api, NS, "first").set_weights(canary, Weights(25, "stable"))
    with pytest.raises(ConfigError, match="belongs to the config canary bookinfo/first"):
        KubeConfigRouter(api, NS, "second").set_weights(canary, Weights(25, "stable"))


def test_an_object_that_only_looks_like_a_split_is_left_alone(
    server: FakeApiServer, api: KubeApi
) -> None:
    canary = seed_details(server)
    mine = placed(named("bookinfo/networking/destination-rule-all.yaml", "DestinationRule",
                        "details"))  # fmt: skip
    mine["metadata"]["name"] = "details" + SUFFIX
    server.put(NET, "destinationrules", mine)
    with pytest.raises(ConfigError, match="belongs to someone else"):
        KubeConfigRouter(api, NS, "details-config").set_weights(canary, Weights(0, "stable"))
    assert get(server, NET, "destinationrules", "details" + SUFFIX) is not None
    vs = server.object(NET, "virtualservices", NS, "details")
    vs["metadata"]["annotations"] = {OWNER: f"{NS}/details-config", ORIGINAL: "[1]"}
    server.put(NET, "virtualservices", vs)
    server.delete(NET, "destinationrules", NS, "details" + SUFFIX)
    with pytest.raises(ConfigError, match="is not a saved spec"):
        KubeConfigRouter(api, NS, "details-config").set_weights(canary, Weights(25, "stable"))


class Commands(Script):
    def __init__(self, item: CanaryItem, command: str | None) -> None:
        super().__init__()
        self.item, self.command = item, command

    def list(self) -> tuple[CanaryItem, ...]:
        return (self.item,)

    def take_command(self, name: str) -> str | None:
        # Abort once the rollout has moved some pods to the change.
        if self.command and any("step 1" in d[1] for d in self.decisions):
            command, self.command = self.command, None
            return command
        return None


@pytest.mark.parametrize(("command", "end"), [(None, "Succeeded"), ("abort", "Failed")])
def test_the_controller_loop_runs_a_config_canary_to_its_end(
    server: FakeApiServer, api: KubeApi, command: str | None, end: str
) -> None:
    canary = seed_details(server)
    before = user_view(server.object(NET, "virtualservices", NS, "details"))
    item = CanaryItem(NS, "details-config", "r1", canary)
    script = Commands(item, command)
    server.put("canarymesh.io", "canaries", {"apiVersion": "canarymesh.io/v1alpha1",
               "kind": "Canary", "metadata": {"name": "details-config", "namespace": NS},
               "spec": canary.model_dump(by_alias=True, exclude_none=True)})  # fmt: skip
    router = KubeConfigRouter(api, NS, "details-config")
    clock = FakeClock()
    wiring = Wiring(script, lambda _: router, FakeMetrics(), KubeStateStore(api, "test"),
                    clock, script, script, script, script)  # fmt: skip
    controller = Controller(wiring)
    for _ in range(200):
        controller.run_once()
        clock.advance(1.0)
        if script.decisions and script.decisions[-1][0] in ("Succeeded", "Failed"):
            break
    assert script.decisions[-1][0] == end, script.decisions[-3:]
    assert labels(server) == {}
    assert get(server, NET, "destinationrules", "details" + SUFFIX) is None
    vs = user_view(server.object(NET, "virtualservices", NS, "details"))
    if end == "Failed":
        assert vs == before
    else:
        assert faulted(vs) == [vs["spec"]["http"][0]] and "match" not in vs["spec"]["http"][0]


def test_pods_only_the_current_policy_selects_stay_under_it(
    server: FakeApiServer, api: KubeApi
) -> None:
    canary, current = seed_policy(server)
    server.put("", "pods", pod("productpage-v2-0", {"app": "productpage", "version": "v2"}))
    changed = copy.deepcopy(current)
    changed["spec"]["selector"]["matchLabels"]["version"] = "v2"  # narrowed to v2
    canary = canary.model_copy(update={"config": canary.config.model_copy(  # type: ignore[union-attr]
        update={"resources": (changed,)})})  # fmt: skip
    KubeConfigRouter(api, NS, "viewer-config").set_weights(canary, Weights(100, "stable"))
    # The v1 pods are not the change's, but the current policy now requires "stable" of them.
    assert labels(server) == {**dict.fromkeys(PRODUCTPAGE, "stable"), "productpage-v2-0": "canary"}


def exercise(server: FakeApiServer, api: KubeApi) -> None:
    """Every call the config router makes: a promotion of the details change, a policy canary
    rolled back, and a VirtualService the canary created, removed again (for the RBAC test)."""
    canary = seed_details(server)
    router = KubeConfigRouter(api, NS, "details-config")
    router.reconcile(canary, Weights(0, "stable"))
    router.set_weights(canary, Weights(25, "stable"))
    assert router.verify_weights(canary, Weights(25, "stable"))
    router.finalize(canary, canary.canary_subset())
    policy, _ = seed_policy(server)
    KubeConfigRouter(api, NS, "viewer").set_weights(policy, Weights(50, "stable"))
    KubeConfigRouter(api, NS, "viewer").set_weights(policy, Weights(0, "stable"))
    changed = named("bookinfo/networking/virtual-service-all-v1.yaml", "VirtualService", "ratings")
    created = Canary.model_validate({"target": {"host": "ratings"},
                                     "config": {"resources": [changed]}})  # fmt: skip
    KubeConfigRouter(api, NS, "ratings").set_weights(created, Weights(25, "stable"))
    KubeConfigRouter(api, NS, "ratings").set_weights(created, Weights(0, "stable"))
    assert get(server, NET, "virtualservices", "ratings") is None


def test_the_operator_gives_a_config_canary_the_config_router(
    server: FakeApiServer, api: KubeApi
) -> None:
    from canarymesh.controller.kube import KubeSettings, wiring_for
    from canarymesh.controller.metrics import ControllerMetrics
    from canarymesh.runtime.kube.router import KubeRouter
    from canarymesh.runtime.kube.watch import CanaryWatch
    from tests.unit.kube.test_adapters import seed_bookinfo

    seed_bookinfo(server)
    canary = seed_details(server)
    server.put("canarymesh.io", "canaries", {"apiVersion": "canarymesh.io/v1alpha1",
               "kind": "Canary", "metadata": {"name": "details-config", "namespace": NS},
               "spec": canary.model_dump(by_alias=True, exclude_none=True)})  # fmt: skip
    watch = CanaryWatch(api, timeout_seconds=1).start()
    try:
        assert watch.synced.wait(5)
        settings = KubeSettings(istiod_url=None)
        wiring, canaries = wiring_for(api, settings, watch, ControllerMetrics())
        items = {item.name: item for item in canaries.list()}
    finally:
        watch.stop()
    # details' DestinationRule has subsets v1 and v2, but a config canary has no versions.
    assert items["details-config"].versions == ()
    assert isinstance(wiring.router_for(items["details-config"]), KubeConfigRouter)
    assert items["reviews"].versions != ()
    assert isinstance(wiring.router_for(items["reviews"]), KubeRouter)


@pytest.mark.parametrize(
    ("rows", "verified"),
    [({}, True), ({"productpage-v1-2": {"listener_acked": "n1"}}, False),
     ({"productpage-v1-3": None}, False)],
)  # fmt: skip
def test_istiod_must_have_the_labelled_proxies_acknowledge(
    server: FakeApiServer, api: KubeApi, rows: dict[str, Obj | None], verified: bool
) -> None:
    from aiohttp import web

    from canarymesh.runtime.kube.verify import IstiodVerifier
    from tests.unit.kube.test_operator import Loopback

    def syncz(request: web.Request) -> web.Response:
        assert request.path == "/debug/syncz"
        found = []
        for name in PRODUCTPAGE:
            row: Obj = {"proxy": f"{name}.{NS}", "endpoint_sent": "e3", "endpoint_acked": "e2"}
            for xds in ("cluster", "listener", "route"):
                row |= {f"{xds}_sent": "n2", f"{xds}_acked": "n2"}
            if name in rows and rows[name] is None:
                continue  # not connected to istiod
            found.append({**row, **(rows.get(name) or {})})
        return web.json_response(found)

    canary = seed_details(server)
    with Loopback(syncz) as istiod:
        router = KubeConfigRouter(api, NS, "details-config", IstiodVerifier(istiod.url))
        router.set_weights(canary, Weights(25, "stable"))
        assert router.verify_weights(canary, Weights(25, "stable")) is verified

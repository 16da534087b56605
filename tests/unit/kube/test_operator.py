"""The in-cluster operator's pieces beyond router and store: the watch of Canaries, manual
commands taken once, the metrics source against a loopback Prometheus (with its auth header),
weight verification against a loopback istiod, and least privilege: the requests the adapters
make are exactly what deploy/rbac.yaml grants.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from canarymesh.api.canary import Canary
from canarymesh.controller.kube import KubeCanaries, KubeProviders, KubeSettings
from canarymesh.errors import TemporaryError
from canarymesh.ports import Sample
from canarymesh.ports.prometheus import PrometheusSource
from canarymesh.rollout.actions import Weights
from canarymesh.runtime.kube.client import COMMAND_ANNOTATION, KubeApi
from canarymesh.runtime.kube.lease import LeaderElector
from canarymesh.runtime.kube.router import KubeRouter
from canarymesh.runtime.kube.verify import IstiodVerifier, weights_in_routes
from canarymesh.runtime.kube.watch import CanaryWatch
from tests.fakes import FakeClock
from tests.support.processes import free_port
from tests.unit.kube.fake_apiserver import FakeApiServer
from tests.unit.kube.test_adapters import canary_doc, seed_bookinfo
from tests.unit.kube.test_config_router import exercise as exercise_config_router
from tests.unit.kube.test_same_rollout import SPEC, drive

REPO = Path(__file__).resolve().parents[3]
T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


class Loopback:
    """A tiny aiohttp server on 127.0.0.1 in a thread, answering GETs with a handler."""

    def __init__(self, handler: Callable[[web.Request], web.Response]) -> None:
        async def route(request: web.Request) -> web.Response:
            return handler(request)

        self.app = web.Application()
        self.app.router.add_route("GET", "/{tail:.*}", route)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Loopback:
        ready = threading.Event()
        self.loop = asyncio.new_event_loop()

        async def serve() -> None:
            self.runner = web.AppRunner(self.app, access_log=None)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
            ready.set()

        def run() -> None:
            self.loop.run_until_complete(serve())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_the_watch_follows_added_changed_and_deleted_canaries(
    server: FakeApiServer, api: KubeApi
) -> None:
    seed_bookinfo(server)
    watch = CanaryWatch(api, timeout_seconds=2).start()
    try:
        wait_for(watch.synced.is_set)
        assert [o["metadata"]["name"] for o in watch.objects()] == ["reviews"]
        other = canary_doc()
        other["metadata"]["name"] = "ratings"
        server.put("canarymesh.io", "canaries", other)
        wait_for(lambda: len(watch.objects()) == 2)
        server.delete("canarymesh.io", "canaries", "webapps", "reviews")
        wait_for(lambda: [o["metadata"]["name"] for o in watch.objects()] == ["ratings"])
    finally:
        watch.stop()
    assert ("watch", "canarymesh.io", "canaries") in server.verbs()


def test_a_command_is_taken_once_and_items_carry_versions(
    server: FakeApiServer, api: KubeApi
) -> None:
    doc = canary_doc()
    doc["metadata"]["annotations"] = {COMMAND_ANNOTATION: "promote"}
    seed_bookinfo(server)
    server.put("canarymesh.io", "canaries", doc)
    watch = CanaryWatch(api, timeout_seconds=2).start()
    try:
        wait_for(watch.synced.is_set)
        canaries = KubeCanaries(api, watch)
        (item,) = canaries.list()
        assert item.key == "webapps/reviews" and item.rollout_id == "uid-reviews"
        assert item.version_of("v3") == "v3"
        assert canaries.take_command("webapps/reviews") == "promote"
        assert canaries.take_command("webapps/reviews") is None
    finally:
        watch.stop()
    annotations = server.object("canarymesh.io", "canaries", "webapps", "reviews")["metadata"]
    assert COMMAND_ANNOTATION not in annotations.get("annotations", {})


def test_a_command_changed_meanwhile_is_not_taken(server: FakeApiServer, api: KubeApi) -> None:
    doc = canary_doc()
    doc["metadata"]["annotations"] = {COMMAND_ANNOTATION: "abort"}
    server.put("canarymesh.io", "canaries", doc)
    assert api.take_annotation("webapps", "reviews", COMMAND_ANNOTATION, "promote") is False
    assert api.take_annotation("webapps", "reviews", COMMAND_ANNOTATION, "abort") is True


VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"destination_version": "v3"}, "value": [1767268800, "42"]}]}}  # fmt: skip


def test_metrics_source_sends_the_auth_header_and_time() -> None:
    seen: list[tuple[str, str | None, str | None]] = []

    def prometheus(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Authorization"), request.query.get("time")))
        if request.path == "/-/ready":
            return web.Response(text="ready")
        return web.json_response(VECTOR)

    with Loopback(prometheus) as prom:
        source = PrometheusSource(prom.url, authorization="Bearer s3cret")
        assert source.is_online() is True
        got = source.query("sum(istio_requests_total)", T0)
    assert got == (Sample((("destination_version", "v3"),), 42.0),)
    assert seen[-1] == ("/api/v1/query", "Bearer s3cret", repr(T0.timestamp()))


def test_metrics_source_unreachable_is_temporary() -> None:
    source = PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    assert source.is_online() is False
    with pytest.raises(TemporaryError, match="unreachable"):
        source.query("up", T0)


def route_dump(clusters: list[tuple[str, int]]) -> dict[str, Any]:
    weighted = {"weighted_clusters": {"clusters": [
        {"name": f"outbound|9080|{subset}|reviews.webapps.svc.cluster.local", "weight": w}
        for subset, w in clusters]}}  # fmt: skip
    vhost = {"name": "reviews.webapps.svc.cluster.local:9080", "routes": [
        {"match": {"headers": [{"name": "end-user"}]},
         "route": {"cluster": "outbound|9080|v3|reviews.webapps.svc.cluster.local"}},
        {"match": {"prefix": "/"}, "route": weighted}]}  # fmt: skip
    other = {"name": "ratings.webapps.svc.cluster.local:9080", "routes": []}
    return {"configs": [{"dynamic_route_configs": [
        {"route_config": {"name": "9080", "virtual_hosts": [other, vhost]}}]}]}  # fmt: skip


def test_weights_are_read_from_the_last_route_of_the_host() -> None:
    dump = route_dump([("v1", 80), ("v3", 20)])
    assert weights_in_routes(dump, "reviews.webapps.svc.cluster.local") == {"v1": 80, "v3": 20}
    assert weights_in_routes(dump, "details.webapps.svc.cluster.local") is None


def istiod(acked: bool, clusters: list[tuple[str, int]]) -> Callable[[web.Request], web.Response]:
    def handler(request: web.Request) -> web.Response:
        if request.path == "/debug/syncz":
            return web.json_response([
                {"proxy": "productpage-v1-1.webapps", "route_sent": "n2",
                 "route_acked": "n2" if acked else "n1"},
                {"proxy": "details-v1-1.other", "route_sent": "n9", "route_acked": "n8"},
            ])  # fmt: skip
        assert request.query["proxyID"] == "productpage-v1-1.webapps"
        return web.json_response(route_dump(clusters))

    return handler


@pytest.mark.parametrize(
    ("acked", "clusters", "verified"),
    [(True, [("v1", 80), ("v3", 20)], True), (False, [("v1", 80), ("v3", 20)], False),
     (True, [("v1", 100)], False)],
)  # fmt: skip
def test_router_verifies_through_istiod(
    server: FakeApiServer, api: KubeApi, acked: bool, clusters: list[tuple[str, int]],
    verified: bool,
) -> None:  # fmt: skip
    canary = seed_bookinfo(server)
    with Loopback(istiod(acked, clusters)) as fake_istiod:
        router = KubeRouter(api, "webapps", "reviews", IstiodVerifier(fake_istiod.url))
        router.set_weights(canary, Weights(20, "v1"))
        assert router.verify_weights(canary, Weights(20, "v1")) is verified


def test_settings_come_from_the_environment_given() -> None:
    env = {"CANARYMESH_PROMETHEUS_URL": "http://p:9090", "CANARYMESH_ISTIOD_URL": "",
           "CANARYMESH_POD_NAME": "c-1"}  # fmt: skip
    settings = KubeSettings.from_env(env)
    assert (settings.prometheus_url, settings.istiod_url, settings.identity) == (
        "http://p:9090", None, "c-1")  # fmt: skip


def granted() -> set[tuple[str, str, str]]:
    rules = []
    for doc in yaml.safe_load_all((REPO / "deploy/rbac.yaml").read_text()):
        if doc["kind"] in ("ClusterRole", "Role"):
            rules += doc["rules"]
    return {(verb, group, resource) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}  # fmt: skip


def test_rbac_grants_exactly_what_the_controller_uses(server: FakeApiServer, api: KubeApi) -> None:
    seed_bookinfo(server)
    watch = CanaryWatch(api, timeout_seconds=1).start()
    try:
        wait_for(watch.synced.is_set)
        wait_for(lambda: ("watch", "canarymesh.io", "canaries") in server.verbs())
        canaries = KubeCanaries(api, watch)
        canaries.list()
        api.annotate("webapps", "reviews", {COMMAND_ANNOTATION: "pause"})  # the CLI's part
        canaries.annotations["webapps/reviews"][COMMAND_ANNOTATION] = "pause"
        assert canaries.take_command("webapps/reviews") == "pause"
        drive(KubeRouter(api, "webapps", "reviews"), KubeStore(api), FakeClock(), 0.0)
        route = yaml.safe_load((REPO / "tests/golden/routes/httproute-weights.in.yaml").read_text())
        route["object"]["metadata"]["name"] = route["canary"]["target"]["virtualService"] = "gw"
        server.put("gateway.networking.k8s.io", "httproutes", route["object"])
        gateway_canary = Canary.model_validate(route["canary"])
        KubeRouter(api, "webapps", "reviews").set_weights(gateway_canary, Weights(10, "v1"))
        LeaderElector(api, "canarymesh-system", "lease", "a").try_acquire(T0)
        LeaderElector(api, "canarymesh-system", "lease", "a").try_acquire(T0)
        api.get_lease("canarymesh-system", "lease")
        exercise_config_router(server, api)
        server.put("canarymesh.io", "alertproviders", {"metadata": {"name": "hooks"},
                                                       "spec": {"type": "slack"}})  # fmt: skip
        KubeProviders(api).providers()
        KubeProviders(api).secret("webapps", "hooks")
    finally:
        watch.stop()
    assert server.verbs() == granted()


def KubeStore(api: KubeApi) -> Any:
    from canarymesh.runtime.kube.rollout_store import KubeStateStore

    return KubeStateStore(api, "rbac-test")


del SPEC


def test_the_metrics_source_keeps_the_port_contract() -> None:
    from tests.unit.rollout.port_contracts import check_metrics_offline

    prom = Loopback(lambda request: web.Response(text="ready"))
    prom.__enter__()
    source = PrometheusSource(prom.url, timeout=1.0)
    check_metrics_offline(source, prom.__exit__)


def test_sync_rows_accept_both_shapes_and_refuse_others() -> None:
    from canarymesh.runtime.kube.verify import sync_rows

    row = {"proxy": "productpage-v1-1.webapps", "route_sent": "a", "route_acked": "a"}
    assert sync_rows([row]) == sync_rows({"Status": [row]}) == [row]
    with pytest.raises(TemporaryError, match="unknown shape"):
        sync_rows({"resources": []})


def test_probes_and_metrics_on_the_pods_port() -> None:
    import urllib.error
    import urllib.request

    from canarymesh.controller.metrics import ControllerMetrics
    from canarymesh.runtime.kube.health import serve_health

    ready = threading.Event()
    metrics = ControllerMetrics()
    port = free_port()
    server = serve_health("127.0.0.1", port, metrics.registry, ready.is_set)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(path: str) -> tuple[int, str]:
        try:
            with opener.open(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    try:
        assert get("/healthz") == (200, "ok\n")
        assert get("/readyz") == (503, "waiting for Canaries\n")
        ready.set()
        assert get("/readyz") == (200, "ok\n")
        status, text = get("/metrics")
        assert status == 200 and "# TYPE" in text
        assert get("/nothing")[0] == 404
    finally:
        server.shutdown()
        server.server_close()

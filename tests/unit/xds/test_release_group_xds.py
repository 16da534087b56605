"""A release group's routes as the proxies get them: the gateway sets the group header on the
slice's share (on the whole route once the slice has every session, since the split then
collapses to one cluster, as Istio moves that destination's header operations onto the route),
and a member's sidecar sends requests carrying it to the canary subset."""

from __future__ import annotations

from typing import Any

import yaml

from canarymesh.xds import names
from canarymesh.xds.simulate import Request, simulate
from tests.unit.routing.group_golden import GOLDEN
from tests.unit.xds.meshes import bookinfo, sample, snapshot

PRODUCTPAGE = "outbound|9080||productpage.default.svc.cluster.local"


def group_mesh(case: str) -> Any:
    written = (GOLDEN / f"{case}.out.yaml").read_text()
    # The sample's Gateway; its VirtualService is the one the writer wrote.
    gateway = next(yaml.safe_load_all(sample("networking/bookinfo-gateway.yaml")))
    assert gateway["kind"] == "Gateway"
    return bookinfo("networking/destination-rule-all.yaml",
                    extra=yaml.safe_dump(gateway) + "---\n" + written)  # fmt: skip


def gateway_routes(case: str) -> list[dict[str, Any]]:
    mesh = group_mesh(case)
    gateway = next(p.id for p in mesh.proxies if "ingressgateway" in p.id)
    snap = snapshot(mesh, gateway)
    return [
        route
        for config in snap.named(names.ROUTE).values()
        for host in config.get("virtual_hosts", [])  # type: ignore[union-attr]
        for route in host.get("routes", [])
    ]


def test_the_gateway_sets_the_header_on_the_slice_share_only() -> None:
    split = [r for r in gateway_routes("slice-20") if "weighted_clusters" in r.get("route", {})]
    clusters = split[0]["route"]["weighted_clusters"]["clusters"]
    assert [c["weight"] for c in clusters] == [80, 20]
    assert clusters[0]["request_headers_to_remove"] == ["x-canarymesh-group"]
    added = clusters[1]["request_headers_to_add"]
    assert {"key": "x-canarymesh-group", "value": "reviews-ratings"} in [a["header"] for a in added]


def test_at_every_session_the_collapsed_route_still_sets_the_header() -> None:
    routes = [r for r in gateway_routes("slice-100") if r.get("route", {}).get("cluster")]
    to_productpage = [r for r in routes if r["route"]["cluster"] == PRODUCTPAGE]
    assert to_productpage
    for route in to_productpage:
        added = [a["header"] for a in route.get("request_headers_to_add", [])]
        assert {"key": "x-canarymesh-group", "value": "reviews-ratings"} in added, route


def test_a_member_sidecar_sends_the_header_to_the_canary_subset() -> None:
    snap = snapshot(group_mesh("slice-20"), "reviews-v3-0")
    grouped = Request(
        "ratings:9080", "/ratings/0", headers={"x-canarymesh-group": "reviews-ratings"}
    )
    other = Request("ratings:9080", "/ratings/0", headers={"x-canarymesh-group": "another"})
    plain = Request("ratings:9080", "/ratings/0")
    assert simulate(snap, grouped).cluster == "outbound|9080|v2|ratings.default.svc.cluster.local"
    assert (
        simulate(snap, other).clusters[0][0] == "outbound|9080|v1|ratings.default.svc.cluster.local"
    )
    assert (
        simulate(snap, plain).clusters[0][0] == "outbound|9080|v1|ratings.default.svc.cluster.local"
    )


def test_the_golden_objects_load_as_istio_resources() -> None:
    docs = list(yaml.safe_load_all((GOLDEN / "slice-20.out.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["VirtualService"] * 3

"""Istio's ``exportTo``: configs exported to ``.`` are invisible to other namespaces."""

from __future__ import annotations

from canarymesh.mesh.index import MeshIndex, affected_proxies, exported_to
from canarymesh.xds.simulate import Request, simulate
from tests.unit.xds.meshes import bookinfo, snapshot

OTHER_CLIENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep, namespace: other}
spec:
  selector: {matchLabels: {app: sleep}}
  template:
    metadata: {labels: {app: sleep}}
    spec:
      containers: [{name: sleep, image: curl, ports: [{containerPort: 80}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  exportTo: ["."]
  http:
  - route:
    - destination: {host: reviews, subset: v3}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  exportTo: ["."]
  subsets:
  - {name: v3, labels: {version: v3}}
"""
REVIEWS = "reviews.default.svc.cluster.local"


def test_export_to_rules() -> None:
    assert exported_to((), "a", "b")
    assert exported_to(("*",), "a", "b")
    assert exported_to((".",), "a", "a")
    assert not exported_to((".",), "a", "b")
    assert exported_to(("b",), "a", "b")


def test_a_virtual_service_exported_to_its_namespace_only_routes_that_namespace() -> None:
    mesh = bookinfo(extra=OTHER_CLIENT)
    inside = simulate(snapshot(mesh, "productpage-v1-0"), Request("reviews:9080"))
    outside = simulate(snapshot(mesh, "sleep-0.other"), Request(f"{REVIEWS}:9080"))
    assert inside.cluster == f"outbound|9080|v3|{REVIEWS}"
    assert outside.cluster == f"outbound|9080||{REVIEWS}"


def test_a_destination_rule_exported_to_its_namespace_only_has_subsets_there() -> None:
    index = MeshIndex.of(bookinfo(extra=OTHER_CLIENT))
    assert [s.name for s in index.subsets(REVIEWS, "default")] == ["v3"]
    assert index.subsets(REVIEWS, "other") == ()


def test_a_change_to_a_namespace_private_virtual_service_touches_that_namespace_only() -> None:
    mesh = bookinfo(extra=OTHER_CLIENT)
    private = next(v for v in mesh.virtual_services if v.name == "reviews")
    touched = {p.id for p in affected_proxies(mesh, private)}  # type: ignore[arg-type]
    assert "sleep-0.other" not in touched
    assert "productpage-v1-0" in touched

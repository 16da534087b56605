"""Incremental pushes: which proxies a change touches, and ``update_virtual_services``
giving exactly what a full ``generate`` gives."""

from __future__ import annotations

import dataclasses

from canarymesh.api.loader import load_text
from canarymesh.mesh.index import MeshIndex, affected_proxies
from canarymesh.mesh.model import Config, MeshSnapshot
from canarymesh.xds.generate import generate, update_virtual_services
from tests.unit.xds.meshes import bookinfo, sample

REVIEWS = "reviews.default.svc.cluster.local"


def config_of(text: str) -> Config[object]:
    resource = load_text(text, "change.yaml").resources[0]
    return Config(resource.kind, resource.name, "default", resource.spec)


def with_virtual_service(mesh: MeshSnapshot, vs: Config[object]) -> MeshSnapshot:
    kept = tuple(v for v in mesh.virtual_services if v.name != vs.name)
    return dataclasses.replace(mesh, virtual_services=(*kept, vs))  # type: ignore[arg-type]


def test_incremental_update_equals_a_full_generate() -> None:
    mesh = bookinfo(
        "networking/destination-rule-all.yaml", "networking/virtual-service-all-v1.yaml"
    )
    index = MeshIndex.of(mesh)
    proxy = mesh.proxy("productpage-v1-0")
    before = generate(mesh, proxy, index)
    changed = config_of(sample("networking/virtual-service-reviews-jason-v2-v3.yaml"))
    new_mesh = with_virtual_service(mesh, changed)
    new_index = index.with_virtual_services(new_mesh)
    updated = update_virtual_services(before, new_mesh, proxy, new_index, {REVIEWS})
    full = generate(new_mesh, proxy, MeshIndex.of(new_mesh))
    assert updated.to_json() == full.to_json()
    assert updated.version == full.version != before.version


def test_mesh_virtual_service_touches_sidecars_only() -> None:
    mesh = bookinfo("networking/bookinfo-gateway.yaml")
    changed = config_of(sample("networking/virtual-service-reviews-v3.yaml"))
    touched = {p.id for p in affected_proxies(mesh, changed)}
    assert "istio-ingressgateway" not in touched
    assert "reviews-v1-0" in touched and "productpage-v1-0" in touched


def test_gateway_virtual_service_touches_gateways_only() -> None:
    mesh = bookinfo("networking/bookinfo-gateway.yaml")
    gateway_vs = next(v for v in mesh.virtual_services if v.name == "bookinfo")
    assert {p.id for p in affected_proxies(mesh, gateway_vs)} == {"istio-ingressgateway"}  # type: ignore[arg-type]


def test_authorization_policy_touches_the_workloads_it_selects() -> None:
    mesh = bookinfo()
    policy = config_of(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: p, namespace: default}\n"
        "spec:\n  selector: {matchLabels: {app: reviews}}\n"
    )
    assert {p.id for p in affected_proxies(mesh, policy)} == {
        "reviews-v1-0",
        "reviews-v2-0",
        "reviews-v3-0",
    }

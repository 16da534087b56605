"""``XdsSnapshot.check_consistent``: one test per kind of dangling reference, plus versioning."""

from __future__ import annotations

import pytest

from canarymesh.xds import names
from canarymesh.xds.snapshot import InconsistentSnapshot, build_snapshot
from canarymesh.xds.types import EnvoyJson

HCM = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)


def listener(route_name: str) -> EnvoyJson:
    hcm: EnvoyJson = {"@type": HCM, "rds": {"route_config_name": route_name}}
    return {"name": "l", "filter_chains": [{"filters": [{"name": "hcm", "typed_config": hcm}]}]}


def route(*clusters: str) -> EnvoyJson:
    action: EnvoyJson
    if len(clusters) == 1:
        action = {"cluster": clusters[0]}
    else:
        action = {"weighted_clusters": {"clusters": [{"name": c, "weight": 1} for c in clusters]}}
    return {
        "name": "r",
        "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"route": action}]}],
    }


def cluster(name: str, eds: bool = False) -> EnvoyJson:
    return {"name": name, "type": "EDS" if eds else "STATIC"}


def test_consistent_snapshot_passes() -> None:
    snap = build_snapshot(
        "p",
        {
            names.LISTENER: [listener("r")],
            names.ROUTE: [route("a", "b")],
            names.CLUSTER: [cluster("a", eds=True), cluster("b")],
            names.ENDPOINT: [{"cluster_name": "a", "endpoints": []}],
        },
    )
    snap.check_consistent()


def test_listener_naming_a_missing_route_config_is_inconsistent() -> None:
    snap = build_snapshot("p", {names.LISTENER: [listener("missing")]})
    with pytest.raises(InconsistentSnapshot, match="route config 'missing' is missing"):
        snap.check_consistent()


def test_route_naming_a_missing_cluster_is_inconsistent() -> None:
    snap = build_snapshot("p", {names.ROUTE: [route("a", "ghost")], names.CLUSTER: [cluster("a")]})
    assert snap.problems() == ["cluster 'ghost' is missing"]


def test_eds_cluster_without_load_assignment_is_inconsistent() -> None:
    snap = build_snapshot("p", {names.CLUSTER: [cluster("a", eds=True)]})
    assert snap.problems() == ["EDS cluster 'a' has no ClusterLoadAssignment"]


def test_missing_sds_secret_is_inconsistent_unless_the_runtime_supplies_secrets() -> None:
    socket: EnvoyJson = {
        "name": "c",
        "type": "STATIC",
        "transport_socket": {"sds": {"name": "default", "sds_config": {"ads": {}}}},
    }
    assert build_snapshot("p", {names.CLUSTER: [socket]}).problems() == [
        "secret 'default' is missing"
    ]
    assert build_snapshot("p", {names.CLUSTER: [socket]}, external_secrets=True).problems() == []


def test_version_hashes_content_not_input_order() -> None:
    first = build_snapshot("p", {names.CLUSTER: [cluster("a"), cluster("b")]})
    second = build_snapshot("p", {names.CLUSTER: [cluster("b"), cluster("a")]})
    changed = build_snapshot("p", {names.CLUSTER: [cluster("a"), cluster("c")]})
    assert first.version == second.version
    assert first.to_json() == second.to_json()
    assert first.version != changed.version

"""``XdsSnapshot.check_consistent``: one test per kind of dangling reference, plus versioning."""

from __future__ import annotations

import pytest

from canarymesh.xds import names, snapshot
from canarymesh.xds.snapshot import InconsistentSnapshot, XdsSnapshot, build_snapshot
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


def test_the_check_walks_each_type_once_per_digest_and_still_refuses_dangling_references() -> None:
    by_type = {
        names.LISTENER: [listener("r")],
        names.ROUTE: [route("a")],
        names.CLUSTER: [cluster("a")],
    }
    build_snapshot("p", by_type).check_consistent()
    hits, misses = snapshot.FACTS.hits, snapshot.FACTS.misses
    # Another proxy with the same content: every type's facts come from the memo.
    build_snapshot("q", by_type).check_consistent()
    assert (snapshot.FACTS.hits - hits, snapshot.FACTS.misses - misses) == (5, 0)

    # Only the route type is new and walked; the remembered listener and cluster facts still
    # meet the new route's reference and the snapshot is refused.
    dangling = {**by_type, names.ROUTE: [route("a", "ghost-1")]}
    with pytest.raises(InconsistentSnapshot, match="cluster 'ghost-1' is missing"):
        build_snapshot("q", dangling).check_consistent()
    assert snapshot.FACTS.misses - misses == 1

    # Remembered listener and route facts against a cluster type that lost their target.
    with pytest.raises(InconsistentSnapshot, match="cluster 'a' is missing"):
        build_snapshot("q", {**by_type, names.CLUSTER: [cluster("b")]}).check_consistent()


def test_an_incremental_route_update_walks_only_its_rebuilt_virtual_host() -> None:
    def config(target: str) -> EnvoyJson:
        hosts = [
            {"name": name, "domains": [name], "routes": [{"route": {"cluster": cluster_name}}]}
            for name, cluster_name in (("kept", "a"), ("rebuilt", target))
        ]
        return {"name": "r", "virtual_hosts": hosts}

    clusters = [cluster("a"), cluster("b")]
    first = build_snapshot(
        "p", {names.LISTENER: [listener("r")], names.ROUTE: [config("b")], names.CLUSTER: clusters}
    )
    first.check_consistent()
    known = {k: d for k, d in first.vhost_digests if k == "r/kept"}
    reuse = {url: d for url, d in first.digests if url != names.ROUTE}
    misses = snapshot.VHOST_REFS.misses
    update = build_snapshot(
        "p",
        {**{url: list(items) for url, items in first.resources}, names.ROUTE: [config("ghost-2")]},
        reuse=reuse,
        vhost_digests=known,
    )
    with pytest.raises(InconsistentSnapshot, match="cluster 'ghost-2' is missing"):
        update.check_consistent()
    assert snapshot.VHOST_REFS.misses - misses == 1


def test_a_snapshot_without_digests_is_walked_whole() -> None:
    built = build_snapshot("p", {names.ROUTE: [route("ghost-3")]})
    bare = XdsSnapshot("p", built.version, built.resources)
    misses = snapshot.FACTS.misses
    assert bare.problems() == ["cluster 'ghost-3' is missing"]
    assert snapshot.FACTS.misses == misses

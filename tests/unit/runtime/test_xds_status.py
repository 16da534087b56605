"""How per-type versions become the states ``proxy-status`` shows."""

from __future__ import annotations

import pytest

from canarymesh.runtime.local import codec
from canarymesh.runtime.local.xds_status import NodeStatus, SyncState, TypeStatus


@pytest.mark.parametrize(
    ("wanted", "sent", "acked", "nacked", "state"),
    [
        ("v2", None, None, None, SyncState.NOT_SENT),
        ("v2", "v2", None, None, SyncState.STALE),
        ("v2", "v2", "v1", None, SyncState.STALE),
        ("v2", "v2", "v2", None, SyncState.SYNCED),
        ("v2", "v2", "v1", "v2", SyncState.NACKED),
        ("v3", "v2", "v1", "v2", SyncState.STALE),  # a newer version is on its way
    ],
)
def test_type_state(
    wanted: str, sent: str | None, acked: str | None, nacked: str | None, state: SyncState
) -> None:
    error = "missing )" if nacked else None
    assert TypeStatus(codec.ROUTE, wanted, sent, acked, nacked, error).state is state


def test_named_types_not_asked_for_are_ignored_but_clusters_are_always_expected() -> None:
    rds = TypeStatus(codec.ROUTE, "b", None, None, None, None, subscribed=False)
    cds = TypeStatus(codec.CLUSTER, "a", None, None, None, None, subscribed=False)
    assert rds.state is SyncState.IGNORED
    assert cds.state is SyncState.NOT_SENT
    assert NodeStatus("n", "7", True, (rds,)).synced
    assert not NodeStatus("n", "7", True, (cds, rds)).settled


def test_node_is_synced_only_when_connected_and_every_type_acked() -> None:
    cds = TypeStatus(codec.CLUSTER, "a", "a", "a", None, None)
    rds_nack = TypeStatus(codec.ROUTE, "b", "b", "x", "b", "missing ): a(")
    assert NodeStatus("n", "7", True, (cds,)).synced
    assert not NodeStatus("n", "7", False, (cds,)).synced
    node = NodeStatus("n", "7", True, (cds, rds_nack))
    assert node.settled and not node.synced
    assert node.errors == {"RouteConfiguration": "missing ): a("}
    assert node.type(codec.ROUTE) is rds_nack
    with pytest.raises(KeyError):
        node.type(codec.SECRET)


def test_resource_names_and_versions() -> None:
    assert codec.resource_name(codec.ENDPOINT, {"clusterName": "c"}) == "c"
    assert codec.resource_name(codec.CLUSTER, {"name": "c"}) == "c"
    assert codec.canonical({"b": 1, "a": 2}) == codec.canonical({"a": 2, "b": 1})
    one, two = codec.canonical({"a": 1}), codec.canonical({"a": 2})
    assert codec.version_of([one, two]) == codec.version_of([two, one])
    assert codec.version_of([one]) != codec.version_of([two])
    assert codec.load_all_protos() > 600

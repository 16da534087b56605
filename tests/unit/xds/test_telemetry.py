"""Istio's standard labels from access-log entries, for both reporters."""

from __future__ import annotations

from canarymesh.mesh.model import MeshSettings
from canarymesh.xds import names
from canarymesh.xds.simulate import Request, simulate
from canarymesh.xds.telemetry import (
    PeerInfo,
    duration_ms,
    labels_from_log_entry,
    labels_from_tcp_entry,
    tcp_bytes,
)
from canarymesh.xds.types import JsonValue
from tests.unit.xds.meshes import bookinfo, snapshot

PRODUCTPAGE = PeerInfo(
    "productpage-v1",
    "default",
    "productpage",
    "v1",
    "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
)
REVIEWS_V3 = PeerInfo(
    "reviews-v3",
    "default",
    "reviews",
    "v3",
    "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
)


def entry(
    status: int, flags: dict[str, JsonValue] | None = None, mtls: bool = False
) -> dict[str, JsonValue]:
    common: dict[str, JsonValue] = {
        "upstream_cluster": "outbound|9080|v3|reviews.default.svc.cluster.local",
        "response_flags": flags or {},
        "time_to_last_downstream_tx_byte": "0.012500s",
    }
    if mtls:
        common["tls_properties"] = {
            "tls_version": "TLSv1_3",
            "peer_certificate_properties": {"subject_alt_name": [{"uri": PRODUCTPAGE.principal}]},
        }
    return {
        "common_properties": common,
        "request": {
            "request_method": "GET",
            "request_headers": {
                names.SOURCE_PEER_HEADER: PRODUCTPAGE.encode(),
                names.DESTINATION_SERVICE_HEADER: "reviews.default.svc.cluster.local",
            },
        },
        "response": {
            "response_code": status,
            "response_headers": {names.DESTINATION_PEER_HEADER: REVIEWS_V3.encode()},
        },
    }


def test_source_reporter_labels_come_from_itself_and_the_response_header() -> None:
    labels = labels_from_log_entry(entry(200), "source", PRODUCTPAGE)
    assert labels["reporter"] == "source"
    assert (labels["source_workload"], labels["source_app"], labels["source_version"]) == (
        "productpage-v1",
        "productpage",
        "v1",
    )
    assert (labels["destination_workload"], labels["destination_version"]) == ("reviews-v3", "v3")
    assert labels["destination_service"] == "reviews.default.svc.cluster.local"
    assert labels["destination_service_name"] == "reviews"
    assert labels["destination_service_namespace"] == "default"
    assert labels["response_code"] == "200"
    assert labels["response_flags"] == "-"
    assert labels["connection_security_policy"] == "unknown"
    assert labels["request_protocol"] == "http"


def test_destination_reporter_sees_mtls_and_the_source_header() -> None:
    labels = labels_from_log_entry(entry(200, mtls=True), "destination", REVIEWS_V3)
    assert labels["reporter"] == "destination"
    assert labels["source_workload"] == "productpage-v1"
    assert labels["source_principal"] == PRODUCTPAGE.principal
    assert labels["destination_principal"] == REVIEWS_V3.principal
    assert labels["connection_security_policy"] == "mutual_tls"


def test_injected_abort_is_flagged_fi_and_unknown_peer_is_unknown() -> None:
    aborted = entry(500, {"fault_injected": True})
    del aborted["response"]["response_headers"]  # type: ignore[union-attr]
    labels = labels_from_log_entry(aborted, "source", PRODUCTPAGE)
    assert labels["response_flags"] == "FI"
    assert labels["response_code"] == "500"
    assert labels["destination_workload"] == "unknown"
    assert labels["destination_canonical_revision"] == "latest"


def test_duration_is_in_milliseconds() -> None:
    assert duration_ms(entry(200)) == 12.5


def test_peer_info_round_trips_through_its_header() -> None:
    assert PeerInfo.decode(REVIEWS_V3.encode()) == REVIEWS_V3
    assert PeerInfo.decode(None) == PeerInfo()


def test_generated_config_carries_the_exchange_headers() -> None:
    mesh = bookinfo()
    outbound = snapshot(mesh, "productpage-v1-0")
    config = outbound.named(names.ROUTE)[names.OUTBOUND_HTTP_ROUTE]
    vhosts = {v["name"]: v for v in config["virtual_hosts"]}  # type: ignore[index,union-attr]
    reviews = vhosts["reviews.default.svc.cluster.local:9080"]
    added = reviews["request_headers_to_add"][0]["header"]  # type: ignore[index,call-overload]
    assert "request_headers_to_add" not in vhosts["allow_any"]
    assert PeerInfo.decode(added["value"]).workload == "productpage-v1"  # type: ignore[index]
    assert simulate(outbound, Request("reviews:9080")).cluster is not None


def test_tcp_connection_labels_name_the_peer_the_runtime_found() -> None:
    mysql = PeerInfo(
        "mysqldb-v1", "default", "mysqldb", "v1", "spiffe://cluster.local/ns/default/sa/default"
    )
    tcp_entry: dict[str, JsonValue] = {
        "common_properties": {
            "upstream_cluster": "outbound|3306||mysqldb.default.svc.cluster.local"
        },
        "connection_properties": {"received_bytes": "120", "sent_bytes": "4096"},
    }
    labels = labels_from_tcp_entry(tcp_entry, "source", REVIEWS_V3, mysql)
    assert labels["request_protocol"] == "tcp"
    assert labels["destination_service"] == "mysqldb.default.svc.cluster.local"
    assert (labels["source_workload"], labels["destination_workload"]) == (
        "reviews-v3",
        "mysqldb-v1",
    )
    assert "response_code" not in labels
    assert tcp_bytes(tcp_entry) == (120, 4096)


def test_tcp_proxies_log_to_the_telemetry_server() -> None:
    mesh = bookinfo(
        "platform/kube/bookinfo-mysql.yaml",
        "platform/kube/bookinfo-ratings-v2-mysql.yaml",
        settings=MeshSettings(telemetry_port=15999),
    )
    listeners = snapshot(mesh, "ratings-v2-mysql-0").named(names.LISTENER)
    outbound = listeners[names.outbound_tcp_listener("mysqldb.default.svc.cluster.local", 3306)]
    assert "envoy.access_loggers.tcp_grpc" in str(outbound)


def test_the_gateway_names_itself_and_the_called_service_to_the_callee() -> None:
    from canarymesh.xds import names
    from tests.unit.xds.meshes import bookinfo, snapshot

    mesh = bookinfo("networking/bookinfo-gateway.yaml")
    (route_config,) = snapshot(mesh, "istio-ingressgateway").of(names.ROUTE)
    (vhost,) = route_config["virtual_hosts"]  # type: ignore[misc]
    source = {h["header"]["key"]: h["header"]["value"] for h in vhost["request_headers_to_add"]}
    assert source[names.SOURCE_PEER_HEADER].startswith("workload=istio-ingressgateway;")
    for route in vhost["routes"]:
        added = {h["header"]["key"]: h["header"]["value"] for h in route["request_headers_to_add"]}
        assert added == {names.DESTINATION_SERVICE_HEADER: "productpage.default.svc.cluster.local"}

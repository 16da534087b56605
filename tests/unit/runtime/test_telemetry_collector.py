"""The telemetry collector's registry mapping, fed synthetic ALS messages: the series it counts are
exactly the pure mapping's labels, the label cache never merges two label sets, unknown proxies
count as ``unknown``, TCP connections find their peers; and the gRPC and ``/metrics`` servers
work end to end on 127.0.0.1."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeAlias

import aiohttp
import grpc
import pytest
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from google.protobuf import json_format
from prometheus_client import CollectorRegistry

from canarymesh.runtime.local.telemetry import TelemetryCollector, reporter_of
from canarymesh.runtime.local.telemetry_metrics import HTTP_LABELS, TCP_LABELS
from canarymesh.xds import names
from canarymesh.xds.telemetry import PeerInfo, Reporter, labels_from_log_entry

PRODUCTPAGE = PeerInfo(
    "productpage-v1",
    "default",
    "productpage",
    "v1",
    "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
)
REVIEWS_V2 = PeerInfo(
    "reviews-v2",
    "default",
    "reviews",
    "v2",
    "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
)
MYSQL = PeerInfo(
    "mysqldb-v1", "default", "mysqldb", "v1", "spiffe://cluster.local/ns/default/sa/mysqldb"
)
NODES = {"productpage-v1-0": PRODUCTPAGE, "reviews-v2-0": REVIEWS_V2, "mysqldb-v1-0": MYSQL}
REVIEWS = "reviews.default.svc.cluster.local"
MYSQL_HOST = "mysqldb.default.svc.cluster.local"
# xds-protos ships no types: entries are plain protobuf messages.
Entry: TypeAlias = Any


def http_entry(
    code: int | None = 200,
    *,
    flags: Iterable[str] = (),
    source: PeerInfo | None = PRODUCTPAGE,
    destination: PeerInfo | None = REVIEWS_V2,
    service: str | None = REVIEWS,
    cluster: str = f"outbound|9080|v2|{REVIEWS}",
    authority: str = "reviews:9080",
    mtls: bool = False,
    content_type: str | None = None,
    duration_ms: int = 12,
    sizes: tuple[int, int, int, int] = (100, 20, 80, 300),
) -> Entry:
    entry = accesslog_pb2.HTTPAccessLogEntry()
    common = entry.common_properties
    common.upstream_cluster = cluster
    common.time_to_last_downstream_tx_byte.FromMilliseconds(duration_ms)
    common.downstream_local_address.socket_address.address = "127.0.0.1"
    common.downstream_local_address.socket_address.port_value = 15006
    for flag in flags:
        setattr(common.response_flags, flag, True)
    if mtls:
        common.tls_properties.tls_version = accesslog_pb2.TLSProperties.TLSv1_3
        san = common.tls_properties.peer_certificate_properties.subject_alt_name.add()
        san.uri = PRODUCTPAGE.principal
    entry.request.authority = authority
    headers = entry.request.request_headers
    if source is not None:
        headers[names.SOURCE_PEER_HEADER] = source.encode()
    if service is not None:
        headers[names.DESTINATION_SERVICE_HEADER] = service
    if content_type is not None:
        headers["content-type"] = content_type
    if destination is not None:
        entry.response.response_headers[names.DESTINATION_PEER_HEADER] = destination.encode()
    if code is not None:
        entry.response.response_code.value = code
    (
        entry.request.request_headers_bytes,
        entry.request.request_body_bytes,
        entry.response.response_headers_bytes,
        entry.response.response_body_bytes,
    ) = sizes
    return entry


def http_message(
    entries: Iterable[Entry], node: str | None = None, direction: str = "outbound"
) -> als_pb2.StreamAccessLogsMessage:
    message = als_pb2.StreamAccessLogsMessage()
    if node is not None:
        message.identifier.node.id = node
        message.identifier.log_name = names.access_log_name(node, direction)
    message.http_logs.log_entry.extend(entries)
    return message


def tcp_entry(
    remote: int = 0,
    local: int = 0,
    principal: str | None = None,
    kind: int = accesslog_pb2.TcpConnectionEnd,
    received: int = 120,
    sent: int = 4096,
) -> Any:
    """An outbound connection to mysqldb, or (with ``principal``) its inbound side over mTLS."""
    entry = accesslog_pb2.TCPAccessLogEntry()
    common = entry.common_properties
    common.access_log_type = kind
    common.upstream_cluster = f"outbound|3306||{MYSQL_HOST}"
    for address, port in (
        (common.upstream_remote_address, remote),
        (common.downstream_local_address, local),
    ):
        address.socket_address.address = "127.0.0.1"
        address.socket_address.port_value = port
    if principal is not None:
        common.tls_properties.tls_version = accesslog_pb2.TLSProperties.TLSv1_3
        common.tls_properties.peer_certificate_properties.subject_alt_name.add().uri = principal
        common.tls_properties.tls_sni_hostname = names.sni(3306, "", MYSQL_HOST)
        common.upstream_cluster = "inbound|3306||"
    entry.connection_properties.received_bytes = received
    entry.connection_properties.sent_bytes = sent
    return entry


def tcp_message(
    entries: Iterable[Any], node: str, direction: str
) -> als_pb2.StreamAccessLogsMessage:
    message = als_pb2.StreamAccessLogsMessage()
    message.identifier.node.id = node
    message.identifier.log_name = names.access_log_name(node, direction)
    message.tcp_logs.log_entry.extend(entries)
    return message


def series(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every non-zero sample of ``name``, by its sorted labels."""
    found = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name and sample.value:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def pure_labels(entry: Entry, reporter: Reporter, local: PeerInfo) -> tuple[tuple[str, str], ...]:
    as_json = json_format.MessageToDict(entry, preserving_proto_field_name=True)
    return tuple(sorted(labels_from_log_entry(as_json, reporter, local).items()))


def collector(
    peers: Callable[[str], PeerInfo | None] = NODES.get, **kwargs: object
) -> TelemetryCollector:
    return TelemetryCollector(peers, CollectorRegistry(), **kwargs)  # type: ignore[arg-type]


def test_log_names_say_the_reporter() -> None:
    assert reporter_of("productpage-v1-0|outbound") == "source"
    assert reporter_of("istio-ingressgateway-0|gateway") == "source"
    assert reporter_of("reviews-v2-0|inbound") == "destination"


def test_counted_series_are_exactly_the_pure_mappings_labels() -> None:
    # One variant per input the labels depend on: the cache must keep each one apart.
    variants = [
        http_entry(),
        http_entry(),
        http_entry(503),
        http_entry(None),
        http_entry(500, flags=["fault_injected"], destination=None, service=None, cluster=""),
        http_entry(flags=["upstream_request_timeout", "upstream_retry_limit_exceeded"]),
        http_entry(source=None),
        http_entry(destination=PeerInfo("reviews-v1", "default", "reviews", "v1")),
        http_entry(service=None),
        http_entry(service=None, cluster="", authority="ratings:9080"),
        http_entry(service=None, cluster="", authority="www.googleapis.com"),
        http_entry(mtls=True),
        http_entry(content_type="application/grpc"),
    ]
    metrics = collector()
    stream = metrics.new_stream()
    metrics.ingest(stream, http_message(variants[:1], "productpage-v1-0"))
    metrics.ingest(stream, http_message(variants[1:]))  # later batches carry no identifier
    inbound = metrics.new_stream()
    metrics.ingest(inbound, http_message(variants, "reviews-v2-0", "inbound"))
    expected = collections.Counter(pure_labels(e, "source", PRODUCTPAGE) for e in variants)
    expected.update(pure_labels(e, "destination", REVIEWS_V2) for e in variants)
    assert series(metrics.registry, "istio_requests_total") == dict(expected)
    assert len(expected) > len(variants)  # the variants really differ
    assert (metrics.entries, metrics.errors) == (2 * len(variants), 0)
    for labels in expected:
        assert [name for name, _ in labels] == sorted(HTTP_LABELS)


def test_abort_source_names_the_requested_service_and_destination_sees_mtls() -> None:
    metrics = collector()
    aborted = http_entry(500, flags=["fault_injected"], destination=None, service=None, cluster="")
    metrics.ingest(metrics.new_stream(), http_message([aborted], "productpage-v1-0"))
    metrics.ingest(
        metrics.new_stream(), http_message([http_entry(mtls=True)], "reviews-v2-0", "inbound")
    )
    counted = [dict(k) for k in series(metrics.registry, "istio_requests_total")]
    source = next(c for c in counted if c["reporter"] == "source")
    destination = next(c for c in counted if c["reporter"] == "destination")
    assert (source["response_flags"], source["response_code"]) == ("FI", "500")
    assert source["destination_service"] == REVIEWS
    assert source["destination_workload"] == "unknown"
    assert source["connection_security_policy"] == "unknown"
    assert destination["connection_security_policy"] == "mutual_tls"
    assert destination["source_workload"] == "productpage-v1"


def test_histograms_observe_duration_and_sizes_in_istio_buckets() -> None:
    metrics = collector()
    entries = [http_entry(duration_ms=12), http_entry(duration_ms=700)]
    metrics.ingest(metrics.new_stream(), http_message(entries, "productpage-v1-0"))
    labels = dict(pure_labels(entries[0], "source", PRODUCTPAGE))
    value = metrics.registry.get_sample_value
    duration = "istio_request_duration_milliseconds"
    assert value(f"{duration}_bucket", labels | {"le": "10.0"}) == 0
    assert value(f"{duration}_bucket", labels | {"le": "25.0"}) == 1
    assert value(f"{duration}_bucket", labels | {"le": "1000.0"}) == 2
    assert value(f"{duration}_bucket", labels | {"le": "3.6e+06"}) == 2
    assert value(f"{duration}_sum", labels) == 712
    assert value("istio_request_bytes_sum", labels) == 2 * 120
    assert value("istio_response_bytes_sum", labels) == 2 * 380
    assert value("istio_response_bytes_bucket", labels | {"le": "250.0"}) == 0
    assert value("istio_response_bytes_bucket", labels | {"le": "500.0"}) == 2


def test_unknown_proxy_counts_as_unknown_until_it_is_registered() -> None:
    known: dict[str, PeerInfo] = {}
    metrics = collector(known.get)
    stream = metrics.new_stream()
    metrics.ingest(stream, http_message([http_entry()], "productpage-v1-0"))
    known["productpage-v1-0"] = PRODUCTPAGE
    metrics.ingest(stream, http_message([http_entry()]))
    workloads: collections.Counter[str] = collections.Counter()
    for labels, value in series(metrics.registry, "istio_requests_total").items():
        workloads[dict(labels)["source_workload"]] += int(value)
    assert workloads == {"unknown": 1, "productpage-v1": 1}


def test_a_failing_peer_lookup_or_a_stream_without_identifier_still_counts() -> None:
    def broken(node_id: str) -> PeerInfo | None:
        raise RuntimeError("registry unavailable")

    metrics = collector(broken)
    metrics.ingest(metrics.new_stream(), http_message([http_entry()], "productpage-v1-0"))
    metrics.ingest(metrics.new_stream(), http_message([http_entry()]))
    counted = series(metrics.registry, "istio_requests_total")
    assert sum(counted.values()) == 2
    assert {dict(k)["source_workload"] for k in counted} == {"unknown"}


def test_tcp_connections_name_their_peers_and_count_bytes_once_at_close() -> None:
    inbound = {"127.0.0.1:16001": MYSQL}
    metrics = collector(addresses=inbound.get)
    closed = tcp_entry(remote=16001)
    connected = tcp_entry(remote=16001, kind=accesslog_pb2.TcpUpstreamConnected)
    metrics.ingest(
        metrics.new_stream(), tcp_message([connected, closed], "reviews-v2-0", "outbound")
    )
    value = metrics.registry.get_sample_value
    labels = dict(next(iter(series(metrics.registry, "istio_tcp_connections_opened_total"))))
    assert list(labels) == sorted(TCP_LABELS)
    assert (labels["reporter"], labels["source_workload"]) == ("source", "reviews-v2")
    assert (labels["destination_workload"], labels["destination_version"]) == ("mysqldb-v1", "v1")
    assert labels["destination_service"] == MYSQL_HOST
    assert labels["request_protocol"] == "tcp"
    assert value("istio_tcp_connections_opened_total", labels) == 1
    assert value("istio_tcp_connections_closed_total", labels) == 1
    assert value("istio_tcp_received_bytes_total", labels) == 120
    assert value("istio_tcp_sent_bytes_total", labels) == 4096


def test_tcp_peers_are_learned_from_inbound_logs_and_principals() -> None:
    metrics = collector()
    # reviews-v2 logs once outbound (so its principal is known), mysqldb logs its inbound side.
    metrics.ingest(metrics.new_stream(), tcp_message([], "reviews-v2-0", "outbound"))
    metrics.ingest(
        metrics.new_stream(),
        tcp_message(
            [tcp_entry(local=16001, principal=REVIEWS_V2.principal)], "mysqldb-v1-0", "inbound"
        ),
    )
    metrics.ingest(
        metrics.new_stream(), tcp_message([tcp_entry(remote=16001)], "reviews-v2-0", "outbound")
    )
    counted = [dict(k) for k in series(metrics.registry, "istio_tcp_connections_closed_total")]
    by_reporter = {c["reporter"]: c for c in counted}
    assert by_reporter["source"]["destination_workload"] == "mysqldb-v1"
    assert by_reporter["destination"]["source_workload"] == "reviews-v2"
    assert by_reporter["destination"]["connection_security_policy"] == "mutual_tls"
    # The inbound cluster names no service: the caller's SNI does.
    assert {c["destination_service"] for c in counted} == {MYSQL_HOST}


def test_a_shared_service_account_names_only_principal_and_namespace() -> None:
    v3 = PeerInfo("reviews-v3", "default", "reviews", "v3", REVIEWS_V2.principal)
    nodes = NODES | {"reviews-v3-0": v3}
    metrics = collector(nodes.get)
    for node in ("reviews-v2-0", "reviews-v3-0"):
        metrics.ingest(metrics.new_stream(), tcp_message([], node, "outbound"))
    metrics.ingest(
        metrics.new_stream(),
        tcp_message([tcp_entry(local=16001, principal=v3.principal)], "mysqldb-v1-0", "inbound"),
    )
    (labels,) = [dict(k) for k in series(metrics.registry, "istio_tcp_connections_closed_total")]
    assert labels["source_workload"] == "unknown"
    assert (labels["source_principal"], labels["source_workload_namespace"]) == (
        v3.principal,
        "default",
    )


def test_build_gauge_names_the_proxy() -> None:
    metrics = collector()
    assert series(metrics.registry, "istio_build") == {
        (("component", "proxy"), ("tag", "1.32-dev")): 1.0
    }


@pytest.mark.integration
def test_envoy_like_grpc_stream_reaches_metrics_endpoint() -> None:
    async def scenario() -> tuple[str, str]:
        metrics = collector()
        als_port = await metrics.start()
        http_port = await metrics.serve_metrics()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{als_port}") as channel:
                stub = als_pb2_grpc.AccessLogServiceStub(channel)

                async def messages() -> AsyncIterator[als_pb2.StreamAccessLogsMessage]:
                    yield http_message([http_entry()], "productpage-v1-0")
                    yield http_message([http_entry(), http_entry(503)])

                await stub.StreamAccessLogs(messages())
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{http_port}/metrics") as response,
            ):
                return response.headers["content-type"], await response.text()
        finally:
            await metrics.stop()

    content_type, text = asyncio.run(scenario())
    assert content_type.startswith("text/plain; version=")
    lines = [line for line in text.splitlines() if line.startswith("istio_requests_total{")]
    assert len(lines) == 2
    assert any('response_code="200"' in line and line.endswith(" 2.0") for line in lines)
    assert any('response_code="503"' in line and line.endswith(" 1.0") for line in lines)
    assert 'istio_build{component="proxy",tag="1.32-dev"} 1.0' in text

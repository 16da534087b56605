"""Benchmark of the telemetry collector's per-request path: how many access-log entries per second
it absorbs and the CPU each one costs.

Entries are realistic: the sidecar headers and fields a live productpage -> reviews call logs,
mixed over 16 label sets (two reporters x four codes/flags x two versions), in batches of 50
(about what Envoy's 16 KiB ALS buffer holds).

* baseline: the straightforward path per entry, proto3 JSON (``MessageToDict``) -> the pure
  mapping -> ``labels(...)`` lookup of prometheus-client children -> inc/observe;
* children: the collector's raw-field key finds cached, pre-bound prometheus-client children
  (the mapping runs once per label set), then inc/observe under the children's locks;
* ours: ``TelemetryCollector.ingest``: the same key finds plain lock-free series (everything
  runs on one event loop), exported through a custom collector;
* grpc: the same entries streamed over real gRPC on 127.0.0.1 from a client in another process,
  with the collector's process CPU measured (server threads included).

    .venv/bin/python bench/telemetry.py                 # 200 000 entries
    .venv/bin/python bench/telemetry.py --entries 20000 # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from google.protobuf import json_format
from prometheus_client import CollectorRegistry, Counter, Histogram

from canarymesh.runtime.local.telemetry import TelemetryCollector, _http_key
from canarymesh.runtime.local.telemetry_metrics import DURATION_BUCKETS, HTTP_LABELS
from canarymesh.xds import names
from canarymesh.xds.telemetry import PeerInfo, Reporter, labels_from_log_entry

BATCH = 50
PRODUCTPAGE = PeerInfo(
    "productpage-v1", "default", "productpage", "v1", "spiffe://cluster.local/ns/default/sa/pp"
)
REVIEWS = {
    v: PeerInfo(f"reviews-{v}", "default", "reviews", v, "spiffe://cluster.local/ns/default/sa/r")
    for v in ("v1", "v2")
}
NODES = {"productpage-v1-0": PRODUCTPAGE} | {f"reviews-{v}-0": p for v, p in REVIEWS.items()}


def entry(version: str, code: int, flags: tuple[str, ...], i: int) -> Any:
    e = accesslog_pb2.HTTPAccessLogEntry()
    common = e.common_properties
    common.upstream_cluster = f"outbound|9080|{version}|reviews.default.svc.cluster.local"
    common.time_to_last_downstream_tx_byte.FromMicroseconds(800 + 37 * (i % 400))
    common.downstream_local_address.socket_address.address = "127.0.0.1"
    common.downstream_local_address.socket_address.port_value = 15006
    common.tls_properties.tls_version = accesslog_pb2.TLSProperties.TLSv1_3
    common.tls_properties.peer_certificate_properties.subject_alt_name.add().uri = (
        PRODUCTPAGE.principal
    )
    common.start_time.FromSeconds(1_790_000_000 + i)
    for flag in flags:
        setattr(common.response_flags, flag, True)
    e.request.authority = "reviews:9080"
    e.request.path = f"/reviews/{i % 7}"
    e.request.request_method = 0  # GET; left at its default, as protobuf does
    e.request.request_id = f"{i:08x}-0000-4000-8000-000000000000"
    e.request.request_headers_bytes = 420
    e.request.request_headers[names.SOURCE_PEER_HEADER] = PRODUCTPAGE.encode()
    e.request.request_headers[names.DESTINATION_SERVICE_HEADER] = (
        "reviews.default.svc.cluster.local"
    )
    e.response.response_code.value = code
    e.response.response_headers_bytes = 180
    e.response.response_body_bytes = 295
    e.response.response_headers[names.DESTINATION_PEER_HEADER] = REVIEWS[version].encode()
    return e


KINDS = ((200, ()), (503, ()), (500, ("fault_injected",)), (504, ("upstream_request_timeout",)))


def batches(n: int) -> Iterator[tuple[str, str, list[Any]]]:
    """(node, direction, entries): source batches from productpage, destination from reviews."""
    made = 0
    while made < n:
        for version in ("v1", "v2"):
            for node, direction in (
                ("productpage-v1-0", "outbound"),
                (f"reviews-{version}-0", "inbound"),
            ):
                code, flags = KINDS[(made // BATCH) % len(KINDS)]
                yield node, direction, [entry(version, code, flags, made + k) for k in range(BATCH)]
                made += BATCH


def message(node: str, direction: str, entries: list[Any]) -> Any:
    m = als_pb2.StreamAccessLogsMessage()
    m.identifier.node.id = node
    m.identifier.log_name = names.access_log_name(node, direction)
    m.http_logs.log_entry.extend(entries)
    return m


def baseline(work: list[tuple[str, str, list[Any]]], cached: bool = False) -> float:
    """The textbook path: proto3 JSON, the pure mapping, prometheus-client children by labels;
    ``cached``: the mapping and children found once per raw-field key."""
    registry = CollectorRegistry()
    requests = Counter("istio_requests", "", HTTP_LABELS, registry=registry)
    duration, request_bytes, response_bytes = (
        Histogram(name, "", HTTP_LABELS, registry=registry, buckets=DURATION_BUCKETS)
        for name in ("d", "rq", "rs")
    )
    metrics = (requests, duration, request_bytes, response_bytes)
    cache: dict[object, tuple[Any, ...]] = {}
    start = time.process_time()
    for node, direction, entries in work:
        reporter: Reporter = "destination" if direction == "inbound" else "source"
        local = NODES[node]
        for e in entries:
            key = (reporter, local, _http_key(e)) if cached else None
            children = cache.get(key) if cached else None
            if children is None:
                as_json = json_format.MessageToDict(e, preserving_proto_field_name=True)
                labels = labels_from_log_entry(as_json, reporter, local)
                children = tuple(m.labels(**labels) for m in metrics)
                if cached:
                    cache[key] = children
            counter, d, rq, rs = children
            counter.inc()
            d.observe(e.common_properties.time_to_last_downstream_tx_byte.ToNanoseconds() / 1e6)
            rq.observe(e.request.request_headers_bytes + e.request.request_body_bytes)
            rs.observe(e.response.response_headers_bytes + e.response.response_body_bytes)
    return time.process_time() - start


def ours(work: list[tuple[str, str, list[Any]]]) -> tuple[float, TelemetryCollector]:
    collector = TelemetryCollector(NODES.get)
    streams: dict[tuple[str, str], Any] = {}
    messages = []
    for node, direction, entries in work:
        # Envoy names itself on a stream's first message only; later batches are bare.
        stream = streams.get((node, direction))
        if stream is None:
            stream = streams[(node, direction)] = collector.new_stream()
            messages.append((stream, message(node, direction, entries)))
        else:
            bare = als_pb2.StreamAccessLogsMessage()
            bare.http_logs.log_entry.extend(entries)
            messages.append((stream, bare))
    start = time.process_time()
    for stream, m in messages:
        collector.ingest(stream, m)
    return time.process_time() - start, collector


def client(port: int, n: int) -> None:
    """Run in a child process: stream ``n`` entries to the collector, one stream per log name."""
    work = list(batches(n))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = als_pb2_grpc.AccessLogServiceStub(channel)
        by_stream: dict[tuple[str, str], list[Any]] = {}
        for node, direction, entries in work:
            first = (node, direction) not in by_stream
            m = message(node, direction, entries) if first else als_pb2.StreamAccessLogsMessage()
            if not first:
                m.http_logs.log_entry.extend(entries)
            by_stream.setdefault((node, direction), []).append(m)
        start = time.perf_counter()
        futures = [stub.StreamAccessLogs.future(iter(ms)) for ms in by_stream.values()]
        for future in futures:
            future.result()
        print(time.perf_counter() - start)


async def over_grpc(n: int) -> tuple[float, float, int]:
    collector = TelemetryCollector(NODES.get)
    port = await collector.start()
    cpu0 = time.process_time()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--client",
        str(port),
        "--entries",
        str(n),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    assert child.returncode == 0
    # Server CPU over the child's whole life (idle while it builds entries); wall time of the
    # streaming alone, as the client measured it.
    cpu, wall = time.process_time() - cpu0, float(out.decode().strip())
    await collector.stop()
    return cpu, wall, collector.entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client, args.entries)
        return
    work = list(batches(args.entries))
    n = sum(len(entries) for _, _, entries in work)
    base = baseline(work)
    children = baseline(work, cached=True)
    mine, collector = ours(work)
    assert collector.entries == n and collector.errors == 0
    print(f"{n} entries in batches of {BATCH}, 16 label sets")
    print(
        f"baseline (JSON + mapping + client children):   {base / n * 1e6:6.1f} us/entry "
        f"({n / base:9.0f} entries/s of one core)"
    )
    print(
        f"children (raw-field key -> cached children):  {children / n * 1e6:6.1f} us/entry "
        f"({n / children:9.0f} entries/s of one core)   {base / children:.1f}x faster"
    )
    print(
        f"ours     (raw-field key -> plain series):      {mine / n * 1e6:6.1f} us/entry "
        f"({n / mine:9.0f} entries/s of one core)   {base / mine:.1f}x faster"
    )
    cpu, wall, counted = asyncio.run(over_grpc(args.entries))
    assert counted == n, (counted, n)
    print(
        f"grpc     (client in another process):           {cpu / n * 1e6:6.1f} us CPU/entry, "
        f"{n / wall:9.0f} entries/s wall ({wall:.2f} s of streaming)"
    )
    print(
        f"         one request logs twice (source + destination): "
        f"~{n / cpu / 2:.0f} mesh requests/s per core"
    )


if __name__ == "__main__":
    main()

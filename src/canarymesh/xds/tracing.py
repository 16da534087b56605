"""Distributed tracing of every HTTP connection manager: Envoy's Zipkin tracer (JSON v2 over HTTP).

Called by :func:`canarymesh.xds.listeners.build_hcm` (every sidecar and gateway HCM) and by
``xds.generate`` (the collector's cluster). Each proxy reports one span per request and HCM, named
after its node cluster (the workload); the local runtime's collector
(:mod:`canarymesh.runtime.local.tracing`) stores them.

``shared_span_context: false`` gives the client and the server side of a hop their own span
ids, so a waterfall shows the gateway, each app's inbound span and each outbound call as parent
and child; the apps forward the ``x-b3-*`` headers in between (bookinfo-spec §8.8).
https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/trace/v3/zipkin.proto

Envoy's Zipkin reporter buffers spans per worker and sends them when
``tracing.zipkin.min_flush_spans`` are buffered or every ``tracing.zipkin.flush_interval_ms``
(runtime keys; 5 spans and 5 s by default), so a trace reaches the collector piece by piece
for up to 5 s. :func:`zipkin_runtime` (the bootstrap's runtime layer) makes that 200 ms while
keeping the batching under load; the trace view (:mod:`canarymesh.views.traces`) treats a
trace as still receiving for :data:`FLUSH_INTERVAL_MS` plus a margin after its newest span.
"""

from __future__ import annotations

from canarymesh.mesh.model import MeshSettings
from canarymesh.xds import names
from canarymesh.xds.endpoints import build_local_assignment
from canarymesh.xds.types import EnvoyJson, typed

__all__ = [
    "FLUSH_INTERVAL_MS",
    "MIN_FLUSH_SPANS",
    "ZIPKIN_ENDPOINT",
    "build_tracing_cluster",
    "hcm_tracing",
    "zipkin_runtime",
]

ZIPKIN_ENDPOINT = "/api/v2/spans"
# How long a finished span may wait in a proxy's buffer, and how many spans fill it.
FLUSH_INTERVAL_MS = 200
MIN_FLUSH_SPANS = 5


def zipkin_runtime() -> EnvoyJson:
    """The runtime keys of Envoy's Zipkin reporter, for the bootstrap's static runtime layer."""
    return {
        "tracing.zipkin.flush_interval_ms": FLUSH_INTERVAL_MS,
        "tracing.zipkin.min_flush_spans": MIN_FLUSH_SPANS,
    }


def hcm_tracing(settings: MeshSettings) -> EnvoyJson:
    """The ``tracing`` block of an HttpConnectionManager."""
    zipkin = typed(
        "envoy.config.trace.v3.ZipkinConfig",
        {
            "collector_cluster": names.TRACING_CLUSTER,
            "collector_endpoint": ZIPKIN_ENDPOINT,
            "collector_endpoint_version": "HTTP_JSON",
            "trace_id_128bit": True,
            "shared_span_context": False,
        },
    )
    return {
        "random_sampling": {"value": settings.tracing_sampling},
        "provider": {"name": "envoy.tracers.zipkin", "typed_config": zipkin},
    }


def build_tracing_cluster(settings: MeshSettings) -> EnvoyJson:
    """The runtime's span collector (plain HTTP/1.1) on the loopback or a Unix socket."""
    return {
        "name": names.TRACING_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": build_local_assignment(
            names.TRACING_CLUSTER, settings.tracing_port, settings.tracing_socket
        ),
    }

"""Distributed tracing of every HTTP connection manager: Envoy's Zipkin tracer (JSON v2 over HTTP).

Called by :func:`canarymesh.xds.listeners.build_hcm` (every sidecar and gateway HCM) and by
``xds.generate`` (the collector's cluster). Each proxy reports one span per request and HCM, named
after its node cluster (the workload); the local runtime's collector
(:mod:`canarymesh.runtime.local.tracing`) stores them.

``shared_span_context: false`` gives the client and the server side of a hop their own span
ids, so a waterfall shows the gateway, each app's inbound span and each outbound call as parent
and child; the apps forward the ``x-b3-*`` headers in between (bookinfo-spec §8.8).
https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/trace/v3/zipkin.proto
"""

from __future__ import annotations

from canarymesh.mesh.model import MeshSettings
from canarymesh.xds import names
from canarymesh.xds.endpoints import build_local_assignment
from canarymesh.xds.types import EnvoyJson, typed

__all__ = ["ZIPKIN_ENDPOINT", "build_tracing_cluster", "hcm_tracing"]

ZIPKIN_ENDPOINT = "/api/v2/spans"


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

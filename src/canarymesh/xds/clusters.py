"""Clusters (CDS): one outbound cluster per service port and DestinationRule subset, the
inbound clusters of a sidecar, and the fixed ones (passthrough, blackhole, telemetry).

Called by ``xds.generate``. The traffic policy of each cluster is resolved by
``mesh.merge.compose_traffic_policy`` first; this module only translates it field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from canarymesh.api.istio_networking import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    LoadBalancerSettings,
    OutlierDetection,
    Subset,
)
from canarymesh.mesh.capture import INBOUND_SOURCE
from canarymesh.mesh.index import Endpoint, MeshIndex, subset_endpoints
from canarymesh.mesh.merge import (
    ResolvedPolicy,
    compose_traffic_policy,
)
from canarymesh.mesh.model import MeshService, MeshSettings, ProxyNode, ServicePort
from canarymesh.xds import names, tls
from canarymesh.xds.endpoints import (
    build_load_assignment,
    build_local_assignment,
    build_static_assignment,
)
from canarymesh.xds.types import EnvoyJson, JsonValue, duration, typed

# Istio's defaults: 10 s connect timeout, effectively unlimited circuit breakers.
CONNECT_TIMEOUT = "10s"
UNLIMITED = 4294967295
LB_POLICIES = {
    "ROUND_ROBIN": "ROUND_ROBIN",
    "LEAST_CONN": "LEAST_REQUEST",
    "LEAST_REQUEST": "LEAST_REQUEST",
    "RANDOM": "RANDOM",
    "UNSPECIFIED": "ROUND_ROBIN",
}
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
DNS_CACHE: EnvoyJson = {"name": "passthrough_dns", "dns_lookup_family": "V4_ONLY"}


@dataclass(frozen=True, slots=True)
class ClusterSet:
    clusters: tuple[EnvoyJson, ...]
    load_assignments: tuple[EnvoyJson, ...]


def ads() -> EnvoyJson:
    return {"ads": {}, "resource_api_version": "V3"}


def translate_load_balancer(lb: LoadBalancerSettings | None) -> EnvoyJson:
    if lb is None:
        return {"lb_policy": "ROUND_ROBIN"}
    if lb.consistent_hash is not None:
        if lb.consistent_hash.maglev is not None:
            return {"lb_policy": "MAGLEV"}
        ring: EnvoyJson = {}
        if lb.consistent_hash.minimum_ring_size:
            ring["minimum_ring_size"] = str(lb.consistent_hash.minimum_ring_size)
        return {"lb_policy": "RING_HASH", "ring_hash_lb_config": ring}
    return {"lb_policy": LB_POLICIES.get(lb.simple or "UNSPECIFIED", "ROUND_ROBIN")}


def translate_connection_pool(pool: ConnectionPoolSettings | None) -> EnvoyJson:
    """Circuit breakers and per-connection limits; unset limits stay Istio's 2^32-1."""
    threshold: EnvoyJson = {
        "max_connections": UNLIMITED,
        "max_pending_requests": UNLIMITED,
        "max_requests": UNLIMITED,
        "max_retries": UNLIMITED,
        "track_remaining": True,
    }
    out: EnvoyJson = {"connect_timeout": CONNECT_TIMEOUT}
    http_options: EnvoyJson = {}
    if pool is not None and pool.tcp is not None:
        if pool.tcp.max_connections is not None:
            threshold["max_connections"] = pool.tcp.max_connections
        if pool.tcp.connect_timeout:
            out["connect_timeout"] = duration(pool.tcp.connect_timeout)
    if pool is not None and pool.http is not None:
        http = pool.http
        if http.http1_max_pending_requests is not None:
            threshold["max_pending_requests"] = http.http1_max_pending_requests
        if http.http2_max_requests is not None:
            threshold["max_requests"] = http.http2_max_requests
        if http.max_retries is not None:
            threshold["max_retries"] = http.max_retries
        if http.max_requests_per_connection:
            http_options["max_requests_per_connection"] = http.max_requests_per_connection
        if http.idle_timeout:
            http_options["idle_timeout"] = duration(http.idle_timeout)
    out["circuit_breakers"] = {"thresholds": [threshold]}
    if http_options:
        options = typed(
            HTTP_OPTIONS,
            {"common_http_protocol_options": http_options, "explicit_http_config": http1()},
        )
        out["typed_extension_protocol_options"] = {HTTP_OPTIONS: options}
    return out


def http1() -> EnvoyJson:
    return {"http_protocol_options": {}}


def translate_outlier_detection(outlier: OutlierDetection | None) -> EnvoyJson:
    if outlier is None:
        return {}
    detection: EnvoyJson = {"enforcing_success_rate": 0}
    five_xx = outlier.consecutive_5xx_errors or outlier.consecutive_errors
    if five_xx is not None:
        detection["consecutive_5xx"] = five_xx
        detection["enforcing_consecutive_5xx"] = 100 if five_xx > 0 else 0
    if outlier.split_external_local_origin_errors:
        detection["split_external_local_origin_errors"] = True
    if outlier.consecutive_local_origin_failures is not None:
        detection["consecutive_local_origin_failure"] = outlier.consecutive_local_origin_failures
        detection["enforcing_consecutive_local_origin_failure"] = 100
    if outlier.consecutive_gateway_errors is not None:
        detection["consecutive_gateway_failure"] = outlier.consecutive_gateway_errors
        detection["enforcing_consecutive_gateway_failure"] = 100
    if outlier.interval:
        detection["interval"] = duration(outlier.interval)
    if outlier.base_ejection_time:
        detection["base_ejection_time"] = duration(outlier.base_ejection_time)
    if outlier.max_ejection_percent is not None:
        detection["max_ejection_percent"] = outlier.max_ejection_percent
    out: EnvoyJson = {"outlier_detection": detection}
    if outlier.min_health_percent is not None:
        out["common_lb_config"] = {
            "healthy_panic_threshold": {"value": float(outlier.min_health_percent)}
        }
    return out


def cluster_metadata(service: MeshService, port: int, subset: str) -> EnvoyJson:
    """Istio's ``istio.services`` metadata, which the telemetry reads back."""
    return {
        "filter_metadata": {
            "istio": {
                "services": [
                    {"host": service.hostname, "name": service.name, "namespace": service.namespace}
                ],
                "default_original_port": port,
                "subset": subset,
            }
        }
    }


def build_outbound_clusters(index: MeshIndex, proxy: ProxyNode) -> ClusterSet:
    clusters: list[EnvoyJson] = []
    loads: list[EnvoyJson] = []
    for service in index.sorted_services():
        rule = index.destination_rule(service.hostname, proxy.namespace, proxy.labels)
        subsets: list[Subset | None] = [None]
        if rule is not None:
            subsets += [s for s in rule.subsets if s.name]
        for port in service.ports:
            endpoints = index.endpoints(service, port.port)
            for subset in subsets:
                subset_name = (subset.name or "") if subset else ""
                policy = compose_traffic_policy(rule, subset_name, port.port)
                chosen = subset_endpoints(endpoints, subset)
                cluster = build_outbound_cluster(index, service, port, subset_name, policy, chosen)
                clusters.append(cluster)
                if cluster["type"] == "EDS":
                    loads.append(build_load_assignment(str(cluster["name"]), chosen))
    return ClusterSet(tuple(clusters), tuple(loads))


def build_outbound_cluster(
    index: MeshIndex,
    service: MeshService,
    port: ServicePort,
    subset: str,
    policy: ResolvedPolicy,
    endpoints: Sequence[Endpoint],
) -> EnvoyJson:
    name = names.outbound_cluster(port.port, subset, service.hostname)
    cluster: EnvoyJson = {"name": name, "alt_stat_name": names.cluster_stat_name(name)}
    cluster.update(translate_connection_pool(policy.connection_pool))
    cluster.update(translate_load_balancer(policy.load_balancer))
    cluster.update(translate_outlier_detection(policy.outlier_detection))
    cluster.update(discovery(service, port, name))
    cluster["metadata"] = cluster_metadata(service, port.port, subset)
    if port.protocol in ("http2", "grpc", "grpc-web"):
        options = typed(HTTP_OPTIONS, {"explicit_http_config": {"http2_protocol_options": {}}})
        cluster["typed_extension_protocol_options"] = {HTTP_OPTIONS: options}
    socket = upstream_socket(index, service, port.port, subset, policy, endpoints)
    if socket is not None:
        cluster["transport_socket"] = socket
    return cluster


def discovery(service: MeshService, port: ServicePort, name: str) -> EnvoyJson:
    if service.resolution == "EDS":
        return {"type": "EDS", "eds_cluster_config": {"service_name": name, "eds_config": ads()}}
    if service.resolution == "NONE":
        return {"type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED"}
    kind = "STRICT_DNS" if service.resolution == "DNS" else "STATIC"
    targets = [
        (e.address, dict(e.ports).get(port.name, port.port)) for e in service.static_endpoints
    ]
    if not targets and service.resolution == "DNS":
        targets = [(service.hostname, port.port)]
    lb: list[JsonValue] = [
        {"endpoint": {"address": {"socket_address": {"address": a, "port_value": p}}}}
        for a, p in targets
    ]
    return {
        "type": kind,
        "dns_lookup_family": "V4_ONLY",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": lb}]},
    }


def upstream_socket(
    index: MeshIndex,
    service: MeshService,
    port: int,
    subset: str,
    policy: ResolvedPolicy,
    endpoints: Sequence[Endpoint],
) -> EnvoyJson | None:
    """DestinationRule tls, or Istio's auto-mTLS: ISTIO_MUTUAL toward sidecars that accept it."""
    sans = [names.spiffe_id(e.namespace, e.service_account) for e in endpoints if e.proxy_id]
    sni = names.sni(port, subset, service.hostname)
    if policy.tls is not None:
        return tls.translate_client_tls(policy.tls, sni, sans, service.hostname)
    service_port = service.port(port)
    target = service_port.target_port if service_port else port
    if service.resolution != "EDS" or not endpoints or not accepts_mtls(index, endpoints, target):
        return None
    return tls.translate_client_tls(ClientTLSSettings(mode="ISTIO_MUTUAL"), sni, sans)


def accepts_mtls(index: MeshIndex, endpoints: Sequence[Endpoint], port: int) -> bool:
    """Auto-mTLS applies only if every endpoint's sidecar accepts mTLS on the target port."""
    for endpoint in endpoints:
        target = index.proxies_by_id.get(endpoint.proxy_id)
        if target is None or index.mtls_of(target).for_port(port) == "DISABLE":
            return False
    return True


def build_inbound_cluster(
    container_port: int, app_port: int, http2: bool = False, pod_ip: str | None = None
) -> EnvoyJson:
    """The local app behind a sidecar port; gRPC/HTTP2 apps get HTTP/2 upstream.

    In a pod network the app is reached on the pod's IP from 127.0.0.6, as Istio does since
    1.10: the capture rules leave that source alone, and an app bound to 127.0.0.1 only is not
    exposed (it is not on a cluster either).
    """
    name = names.inbound_cluster(container_port)
    cluster: EnvoyJson = {
        "name": name,
        "alt_stat_name": names.cluster_stat_name(name),
        "type": "STATIC",
        "connect_timeout": CONNECT_TIMEOUT,
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": build_static_assignment(name, pod_ip or "127.0.0.1", app_port),
    }
    if pod_ip is not None:
        cluster["upstream_bind_config"] = {
            "source_address": {"address": INBOUND_SOURCE, "port_value": 0}
        }
    if http2:
        options = typed(HTTP_OPTIONS, {"explicit_http_config": {"http2_protocol_options": {}}})
        cluster["typed_extension_protocol_options"] = {HTTP_OPTIONS: options}
    return cluster


def build_passthrough_cluster() -> EnvoyJson:
    """Istio's ALLOW_ANY, for an HTTP proxy: a dynamic forward proxy resolving the Host."""
    config = typed(
        "envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
        {"dns_cache_config": dict(DNS_CACHE)},
    )
    return {
        "name": names.PASSTHROUGH_CLUSTER,
        "connect_timeout": CONNECT_TIMEOUT,
        "lb_policy": "CLUSTER_PROVIDED",
        "cluster_type": {"name": "envoy.clusters.dynamic_forward_proxy", "typed_config": config},
    }


def build_original_dst_cluster(name: str, bind: str | None = None) -> EnvoyJson:
    """Pod networks: ``PassthroughCluster`` (outbound, ALLOW_ANY) and
    ``InboundPassthroughCluster`` (inbound, from 127.0.0.6): to where the connection was going."""
    cluster: EnvoyJson = {
        "name": name,
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": CONNECT_TIMEOUT,
    }
    if bind is not None:
        cluster["upstream_bind_config"] = {"source_address": {"address": bind, "port_value": 0}}
    return cluster


def inbound_passthrough_cluster() -> EnvoyJson:
    return build_original_dst_cluster(names.INBOUND_PASSTHROUGH_CLUSTER, INBOUND_SOURCE)


def build_blackhole_cluster() -> EnvoyJson:
    """Where routes to an unknown host or subset go: no endpoints, so Envoy answers 503."""
    return {
        "name": names.BLACKHOLE_CLUSTER,
        "type": "STATIC",
        "connect_timeout": CONNECT_TIMEOUT,
        "load_assignment": {"cluster_name": names.BLACKHOLE_CLUSTER, "endpoints": []},
    }


def build_telemetry_cluster(settings: MeshSettings) -> EnvoyJson:
    """The runtime's gRPC access-log server (HTTP/2 is required by gRPC)."""
    options = typed(HTTP_OPTIONS, {"explicit_http_config": {"http2_protocol_options": {}}})
    return {
        "name": names.TELEMETRY_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": build_local_assignment(
            names.TELEMETRY_CLUSTER, settings.telemetry_port, settings.telemetry_socket
        ),
        "typed_extension_protocol_options": {HTTP_OPTIONS: options},
    }

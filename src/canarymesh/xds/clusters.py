"""Clusters (CDS): one outbound cluster per service port and DestinationRule subset, the
inbound clusters of a sidecar, and the fixed ones (passthrough, blackhole, telemetry).

Called by ``xds.generate``. The traffic policy of each cluster is resolved by
``mesh.merge.compose_traffic_policy`` first; this module only translates it field by field,
with istiod 1.31's defaults (pilot/pkg/networking/core/cluster_builder.go and
cluster_traffic_policy.go; docs/istio-fidelity.md lists them): 10 s connect timeout, circuit
breakers at their maximum on every outbound and inbound cluster, LEAST_REQUEST when no
loadBalancer is set, and ``healthy_panic_threshold: 0`` on outbound clusters, so Envoy never
sends traffic to ejected or unhealthy hosts when too few healthy ones remain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from canarymesh.api.istio_networking import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    ConsistentHashLB,
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
from canarymesh.mesh.model import MeshService, MeshSettings, ProxyNode, ServicePort, labels_match
from canarymesh.xds import names, tls
from canarymesh.xds.endpoints import (
    build_load_assignment,
    build_local_assignment,
    build_static_assignment,
)
from canarymesh.xds.types import EnvoyJson, JsonValue, duration, typed

# Istio's defaults: 10 s connect timeout (MeshConfig connectTimeout), circuit breakers at
# 2^32-1 where Envoy's own are 1,024 connections and 3 retries (getDefaultCircuitBreakerThresholds).
CONNECT_TIMEOUT = "10s"
UNLIMITED = 4294967295
# istiod's defaultLBAlgorithm() since 1.14; Envoy's own default is ROUND_ROBIN.
DEFAULT_LB_POLICY = "LEAST_REQUEST"
LB_POLICIES = {
    "ROUND_ROBIN": "ROUND_ROBIN",
    "LEAST_CONN": "LEAST_REQUEST",
    "LEAST_REQUEST": "LEAST_REQUEST",
    "RANDOM": "RANDOM",
}
# Istio 1.31 sends unhealthy endpoints by default (PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS) and so
# disables Envoy's panic mode (threshold 50 %) on every outbound cluster, unless
# outlierDetection.minHealthPercent says otherwise.
HEALTHY_PANIC_THRESHOLD = 0.0
# MeshConfig dnsRefreshRate: re-resolve after a failed lookup; a success follows the DNS TTL.
DNS_REFRESH_RATE = "60s"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
DNS_CACHE: EnvoyJson = {"name": "passthrough_dns", "dns_lookup_family": "V4_ONLY"}


@dataclass(frozen=True, slots=True)
class ClusterSet:
    clusters: tuple[EnvoyJson, ...]
    load_assignments: tuple[EnvoyJson, ...]


def ads() -> EnvoyJson:
    return {"ads": {}, "resource_api_version": "V3"}


def translate_load_balancer(lb: LoadBalancerSettings | None) -> EnvoyJson:
    """istiod's applyLoadBalancer: LEAST_REQUEST unless ``simple`` or ``consistentHash`` says
    otherwise, with the slow start of ``warmup``/``warmupDurationSecs``."""
    if lb is not None and lb.consistent_hash is not None:
        return translate_consistent_hash(lb.consistent_hash)
    policy = LB_POLICIES.get(lb.simple or "", DEFAULT_LB_POLICY) if lb else DEFAULT_LB_POLICY
    out: EnvoyJson = {"lb_policy": policy}
    slow_start = translate_warmup(lb) if lb is not None else None
    if slow_start is not None and policy in ("ROUND_ROBIN", "LEAST_REQUEST"):
        key = "round_robin_lb_config" if policy == "ROUND_ROBIN" else "least_request_lb_config"
        out[key] = {"slow_start_config": slow_start}
    return out


def translate_consistent_hash(chash: ConsistentHashLB) -> EnvoyJson:
    maglev, ring = chash.maglev, chash.ring_hash
    if maglev is not None:
        size = maglev.get("tableSize")
        return {"lb_policy": "MAGLEV", **({"maglev_lb_config": {"table_size": str(size)}}
                                          if size else {})}  # fmt: skip
    if ring is not None:
        size = ring.get("minimumRingSize")
        config: EnvoyJson = {"minimum_ring_size": str(size)} if size else {}
        return {"lb_policy": "RING_HASH", "ring_hash_lb_config": config}
    # The deprecated top-level minimumRingSize, 1024 (Envoy's default) when unset.
    size = chash.minimum_ring_size or 1024
    return {"lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": str(size)}}


def translate_warmup(lb: LoadBalancerSettings) -> EnvoyJson | None:
    if lb.warmup is not None and lb.warmup.get("duration"):
        aggression, minimum = lb.warmup.get("aggression"), lb.warmup.get("minimumPercent")
        return {
            "slow_start_window": duration(str(lb.warmup["duration"])),
            "aggression": {
                "default_value": float(aggression) if isinstance(aggression, int | float) else 1.0,
                "runtime_key": "(",
            },
            "min_weight_percent": {
                "value": float(minimum) if isinstance(minimum, int | float) else 10.0
            },
        }
    if lb.warmup_duration_secs:
        return {"slow_start_window": duration(lb.warmup_duration_secs)}
    return None


def default_thresholds() -> EnvoyJson:
    return {
        "max_connections": UNLIMITED,
        "max_pending_requests": UNLIMITED,
        "max_requests": UNLIMITED,
        "max_retries": UNLIMITED,
        "track_remaining": True,
    }


def translate_connection_pool(pool: ConnectionPoolSettings | None) -> EnvoyJson:
    """Circuit breakers, connect timeout and TCP keepalive (istiod's applyConnectionPool): a
    limit overrides the 2^32-1 default only when positive, as istiod cannot tell 0 from unset."""
    threshold = default_thresholds()
    out: EnvoyJson = {"connect_timeout": CONNECT_TIMEOUT}
    http = pool.http if pool is not None else None
    tcp = pool.tcp if pool is not None else None
    if http is not None:
        for field, value in (
            ("max_requests", http.http2_max_requests),
            ("max_pending_requests", http.http1_max_pending_requests),
            ("max_retries", http.max_retries),
        ):
            if value is not None and value > 0:
                threshold[field] = value
    if tcp is not None:
        if tcp.max_connections is not None and tcp.max_connections > 0:
            threshold["max_connections"] = tcp.max_connections
        if tcp.connect_timeout:
            out["connect_timeout"] = duration(tcp.connect_timeout)
        keepalive = translate_tcp_keepalive(tcp.tcp_keepalive)
        if keepalive:
            out["upstream_connection_options"] = {"tcp_keepalive": keepalive}
    out["circuit_breakers"] = {"thresholds": [threshold]}
    return out


def common_http_options(pool: ConnectionPoolSettings | None) -> EnvoyJson:
    """Per-connection limits; the HTTP idle timeout wins over the TCP one."""
    out: EnvoyJson = {}
    http = pool.http if pool is not None else None
    tcp = pool.tcp if pool is not None else None
    if http is not None and http.max_requests_per_connection:
        out["max_requests_per_connection"] = http.max_requests_per_connection
    idle = (http.idle_timeout if http is not None else None) or (tcp.idle_timeout if tcp else None)
    if idle:
        out["idle_timeout"] = duration(idle)
    if tcp is not None and tcp.max_connection_duration:
        out["max_connection_duration"] = duration(tcp.max_connection_duration)
    return out


def translate_tcp_keepalive(keepalive: Mapping[str, object] | None) -> EnvoyJson:
    if not keepalive:
        return {}
    out: EnvoyJson = {}
    probes = keepalive.get("probes")
    if isinstance(probes, int):
        out["keepalive_probes"] = probes
    for key, field in (("time", "keepalive_time"), ("interval", "keepalive_interval")):
        value = keepalive.get(key)
        if isinstance(value, str) and duration(value):
            out[field] = int(float(str(duration(value))[:-1]))
    return out


def protocol_options(
    cluster: EnvoyJson,
    port: ServicePort,
    pool: ConnectionPoolSettings | None,
    error_codes: Sequence[int] = (),
    upstream: EnvoyJson | None = None,
) -> None:
    """``typed_extension_protocol_options``: HTTP/2 for http2/grpc ports (or an ``UPGRADE``
    policy), the client's protocol for ``useClientProtocol``; the connection pool's common
    options, the statuses outlier detection counts (``outlierDetectionHttpErrorCodes``, not
    every 5xx) and ``upstream`` options (auto SNI). Envoy requires a protocol once any option
    is set: HTTP/1.1 then, as istiod's clusterWrapper.build chooses."""
    common = common_http_options(pool)
    http = pool.http if pool is not None else None
    upgrade = http is not None and http.h2_upgrade_policy == "UPGRADE" and port.is_http
    body: EnvoyJson = {"common_http_protocol_options": common} if common else {}
    if http is not None and http.use_client_protocol:
        body["use_downstream_protocol_config"] = {
            "http_protocol_options": {},
            "http2_protocol_options": {},
        }
    elif port.protocol in ("http2", "grpc", "grpc-web") or upgrade:
        body["explicit_http_config"] = {"http2_protocol_options": {}}
    if upstream:
        body["upstream_http_protocol_options"] = upstream
    if error_codes:
        body["outlier_detection"] = {"error_matcher": outlier_error_matcher(error_codes)}
    if body and not any(
        k in body for k in ("explicit_http_config", "use_downstream_protocol_config")
    ):
        body["explicit_http_config"] = http1()
    if body:
        cluster["typed_extension_protocol_options"] = {HTTP_OPTIONS: typed(HTTP_OPTIONS, body)}


def http1() -> EnvoyJson:
    return {"http_protocol_options": {}}


def translate_outlier_detection(outlier: OutlierDetection | None) -> EnvoyJson:
    """istiod's applyOutlierDetection. Envoy's defaults fill what is unset (5 consecutive 5xx,
    10 s interval, 30 s ejection, 10 %); the deprecated ``consecutiveErrors`` is not read by
    istiod either."""
    if outlier is None:
        return {}
    detection: EnvoyJson = {"enforcing_success_rate": 0}
    for count, field in (
        (outlier.consecutive_5xx_errors, "consecutive_5xx"),
        (outlier.consecutive_gateway_errors, "consecutive_gateway_failure"),
    ):
        if count is not None:
            detection[field] = count
            detection[f"enforcing_{field}"] = 100 if count > 0 else 0
    if outlier.interval:
        detection["interval"] = duration(outlier.interval)
    if outlier.base_ejection_time:
        detection["base_ejection_time"] = duration(outlier.base_ejection_time)
    if outlier.max_ejection_percent:
        detection["max_ejection_percent"] = outlier.max_ejection_percent
    if outlier.split_external_local_origin_errors:
        detection["split_external_local_origin_errors"] = True
        failures = outlier.consecutive_local_origin_failures
        if failures:
            detection["consecutive_local_origin_failure"] = failures
            detection["enforcing_consecutive_local_origin_failure"] = 100
        detection["enforcing_local_origin_success_rate"] = 0
    # istiod always writes minHealthPercent (0 when unset: "we can't distinguish between it
    # being unset or being explicitly set to 0"), so an ejected host stays ejected.
    threshold = float(outlier.min_health_percent or 0)
    return {
        "outlier_detection": detection,
        "common_lb_config": {"healthy_panic_threshold": {"value": threshold}},
    }


def outlier_error_matcher(codes: Sequence[int]) -> EnvoyJson:
    """``outlierDetectionHttpErrorCodes``: only these statuses count as errors (not all 5xx)."""
    rules: list[JsonValue] = [
        {
            "http_response_headers_match": {
                "headers": [{"name": ":status", "string_match": {"exact": str(code)}}]
            }
        }
        for code in codes
    ]
    if len(rules) == 1 and isinstance(rules[0], dict):
        return rules[0]
    return {"or_match": {"rules": rules}}


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
    cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": HEALTHY_PANIC_THRESHOLD}}
    cluster.update(translate_load_balancer(policy.load_balancer))
    cluster.update(translate_outlier_detection(policy.outlier_detection))
    cluster.update(discovery(service, port, name))
    cluster["metadata"] = cluster_metadata(service, port.port, subset)
    outlier = policy.outlier_detection
    codes = outlier.outlier_detection_http_error_codes if outlier is not None else ()
    upstream = tls.auto_sni_options(policy.tls)
    protocol_options(cluster, port, policy.connection_pool, codes, upstream)
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
    out: EnvoyJson = {
        "type": kind,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": lb}]},
    }
    if kind == "STRICT_DNS":
        # istiod's buildCluster: IPv4 proxies resolve A records, follow the TTL, and retry a
        # failed lookup after MeshConfig's dnsRefreshRate.
        out.update(
            dns_lookup_family="V4_ONLY", dns_refresh_rate=DNS_REFRESH_RATE, respect_dns_ttl=True
        )
    return out


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
        return tls.translate_client_tls(policy.tls, sni, sans)
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
    container_port: int,
    app_port: int,
    http2: bool = False,
    pod_ip: str | None = None,
    pool: ConnectionPoolSettings | None = None,
) -> EnvoyJson:
    """The local app behind a sidecar port; gRPC/HTTP2 apps get HTTP/2 upstream.

    Like istiod's buildInboundCluster: circuit breakers at their maximum (Envoy's 1,024
    connections would cap a busy server below what its clients are allowed), overridden by
    the connectionPool of the DestinationRule of the service the port serves, so that a
    server accepts the volume its clients were allowed.

    In a pod network the app is reached on the pod's IP from 127.0.0.6, as Istio does since
    1.10: the capture rules leave that source alone, and an app bound to 127.0.0.1 only is not
    exposed (it is not on a cluster either).
    """
    name = names.inbound_cluster(container_port)
    cluster: EnvoyJson = {
        "name": name,
        "alt_stat_name": names.cluster_stat_name(name),
        "type": "STATIC",
        **translate_connection_pool(pool),
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": build_static_assignment(name, pod_ip or "127.0.0.1", app_port),
    }
    if pod_ip is not None:
        cluster["upstream_bind_config"] = {
            "source_address": {"address": INBOUND_SOURCE, "port_value": 0}
        }
    port = ServicePort(name="", port=container_port, target_port=app_port,
                       protocol="http2" if http2 else "http")  # fmt: skip
    protocol_options(cluster, port, pool)
    return cluster


def inbound_connection_pool(
    index: MeshIndex, proxy: ProxyNode, container_port: int
) -> ConnectionPoolSettings | None:
    """The connectionPool a server applies to itself: that of the DestinationRule (top level
    and port level, never a subset) of the first service whose port targets this container
    port; istiod picks one service too when several do."""
    for service in index.sorted_services():
        if service.namespace != proxy.namespace or not service.selector:
            continue
        if not labels_match(service.selector_map, proxy.label_map):
            continue
        for port in service.ports:
            if port.target_port == container_port:
                rule = index.destination_rule(service.hostname, proxy.namespace)
                return compose_traffic_policy(rule, "", port.port).connection_pool
    return None


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
        # istiod caps its PassthroughCluster with the default connection pool as well.
        "circuit_breakers": {"thresholds": [default_thresholds()]},
    }


def build_original_dst_cluster(name: str, bind: str | None = None) -> EnvoyJson:
    """Pod networks: ``PassthroughCluster`` (outbound, ALLOW_ANY) and
    ``InboundPassthroughCluster`` (inbound, from 127.0.0.6): to where the connection was going."""
    cluster: EnvoyJson = {
        "name": name,
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": CONNECT_TIMEOUT,
        # istiod's buildDefaultPassthroughCluster caps both with the default connection pool.
        "circuit_breakers": {"thresholds": [default_thresholds()]},
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

"""Validation of DestinationRule, Gateway and ServiceEntry, following Istio's
``pkg/config/validation/validation.go``. Pure; called by :mod:`canarymesh.api.validate` for one
resource at a time (VirtualService has :mod:`canarymesh.api.validate_virtual_service`).
"""

from __future__ import annotations

from canarymesh.api import istio_networking as net
from canarymesh.api.checks import is_dns1123_label, problem_with_host
from canarymesh.api.limits import MAX_ENVOY_TOTAL_WEIGHT
from canarymesh.api.objects import FieldPath
from canarymesh.api.reporter import Reporter
from canarymesh.api.validate_common import (
    check_duration,
    check_host,
    check_labels,
    check_port,
)

__all__ = [
    "validate_destination_rule",
    "validate_gateway",
    "validate_service_entry",
]

SPEC: FieldPath = ("spec",)
ISTIO_PROTOCOLS = (
    "HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "REDIS", "MYSQL", "TCP", "TLS", "UDP",
)  # fmt: skip


# --- DestinationRule --------------------------------------------------------------------------


def validate_destination_rule(report: Reporter, dr: net.DestinationRule) -> None:
    if not dr.host:
        report("CM0104", (*SPEC, "host"))
    else:
        check_host(report, (*SPEC, "host"), dr.host, allow_star=True)
    _validate_traffic_policy(report, (*SPEC, "trafficPolicy"), dr.traffic_policy)
    first_index: dict[str, int] = {}
    for index, subset in enumerate(dr.subsets):
        path = (*SPEC, "subsets", index)
        if not subset.name:
            report("CM0104", (*path, "name"))
        elif subset.name in first_index:
            report("CM0301", (*path, "name"), subset.name, name=subset.name,
                   first=first_index[subset.name])  # fmt: skip
        else:
            first_index[subset.name] = index
            if not is_dns1123_label(subset.name):
                report("CM0106", (*path, "name"), subset.name, what="a subset name",
                       form="a DNS-1123 label")  # fmt: skip
        check_labels(report, (*path, "labels"), subset.labels)
        _validate_traffic_policy(report, (*path, "trafficPolicy"), subset.traffic_policy)


def _validate_traffic_policy(
    report: Reporter, path: FieldPath, policy: net.TrafficPolicy | net.PortTrafficPolicy | None
) -> None:
    if policy is None:
        return
    _validate_load_balancer(report, (*path, "loadBalancer"), policy.load_balancer)
    _validate_client_tls(report, (*path, "tls"), policy.tls)
    if policy.connection_pool is not None:
        pool = policy.connection_pool
        if pool.tcp is not None:
            check_duration(report, (*path, "connectionPool", "tcp", "connectTimeout"),
                           pool.tcp.connect_timeout)  # fmt: skip
            _non_negative(report, (*path, "connectionPool", "tcp", "maxConnections"),
                          pool.tcp.max_connections)  # fmt: skip
        if pool.http is not None:
            http_path = (*path, "connectionPool", "http")
            for name, value in (("http1MaxPendingRequests", pool.http.http1_max_pending_requests),
                                ("http2MaxRequests", pool.http.http2_max_requests),
                                ("maxRequestsPerConnection", pool.http.max_requests_per_connection),
                                ("maxRetries", pool.http.max_retries)):  # fmt: skip
                _non_negative(report, (*http_path, name), value)
    if policy.outlier_detection is not None:
        outlier = policy.outlier_detection
        check_duration(report, (*path, "outlierDetection", "interval"), outlier.interval)
        check_duration(report, (*path, "outlierDetection", "baseEjectionTime"),
                       outlier.base_ejection_time)  # fmt: skip
        percent = outlier.max_ejection_percent
        if percent is not None and not 0 <= percent <= 100:
            report("CM0103", (*path, "outlierDetection", "maxEjectionPercent"), percent,
                   expected="between 0 and 100")  # fmt: skip
    if isinstance(policy, net.TrafficPolicy):
        for index, port_policy in enumerate(policy.port_level_settings):
            port_path = (*path, "portLevelSettings", index)
            if port_policy.port is None:
                report("CM0104", (*port_path, "port"))
            else:
                check_port(report, (*port_path, "port", "number"), port_policy.port.number)
            _validate_traffic_policy(report, port_path, port_policy)


def _non_negative(report: Reporter, path: FieldPath, value: int | None) -> None:
    if value is not None and value < 0:
        report("CM0103", path, value, expected="0 or more")


def _validate_load_balancer(
    report: Reporter, path: FieldPath, lb: net.LoadBalancerSettings | None
) -> None:
    if lb is None:
        return
    if lb.simple is not None and lb.consistent_hash is not None:
        report("CM0302", path, problem="set only one of simple and consistentHash")
    hashing = lb.consistent_hash
    if hashing is not None:
        keys = [name for name, value in (
            ("httpHeaderName", hashing.http_header_name), ("httpCookie", hashing.http_cookie),
            ("useSourceIp", hashing.use_source_ip),
            ("httpQueryParameterName", hashing.http_query_parameter_name),
        ) if value]  # fmt: skip
        if len(keys) != 1:
            found = ", ".join(keys) if keys else "none"
            problem = f"consistentHash needs exactly one hash key (found {found})"
            report("CM0302", (*path, "consistentHash"), problem=problem)
        if hashing.http_cookie is not None:
            # ttl: 0s is Istio's documented way to ask for a session cookie.
            check_duration(report, (*path, "consistentHash", "httpCookie", "ttl"),
                           hashing.http_cookie.ttl, allow_zero=True)  # fmt: skip


def _validate_client_tls(
    report: Reporter, path: FieldPath, tls: net.ClientTLSSettings | None
) -> None:
    if tls is None or tls.mode != "MUTUAL" or tls.credential_name:
        return
    if not tls.client_certificate or not tls.private_key:
        problem = "MUTUAL needs clientCertificate and privateKey, or credentialName"
        report("CM0303", path, problem=problem)


# --- Gateway and ServiceEntry -----------------------------------------------------------------


def validate_gateway(report: Reporter, gateway: net.Gateway) -> None:
    name = report.resource.name
    if not is_dns1123_label(name):
        report("CM0106", ("metadata", "name"), name, what="a Gateway name",
               form="a DNS-1123 label (no dots)")  # fmt: skip
    if not gateway.servers:
        report("CM0401", (*SPEC, "servers"))
    check_labels(report, (*SPEC, "selector"), gateway.selector)
    port_names: set[str] = set()
    for index, server in enumerate(gateway.servers):
        path = (*SPEC, "servers", index)
        if not server.hosts:
            report("CM0104", (*path, "hosts"))
        for h_index, host in enumerate(server.hosts):
            namespace, slash, name_part = host.rpartition("/")
            # Istio's gateways take * (any namespace), . (this one) or a namespace; not ~.
            if slash and namespace not in ("*", ".") and not is_dns1123_label(namespace):
                report("CM0111", (*path, "hosts", h_index), host,
                       problem=f"namespace {namespace!r} of host {host!r} is invalid")  # fmt: skip
            check_host(report, (*path, "hosts", h_index), name_part, allow_star=True)
        if server.port is None:
            report("CM0104", (*path, "port"))
            continue
        _validate_server_port(report, (*path, "port"), server.port)
        protocol = (server.port.protocol or "").upper()
        if protocol in ("HTTPS", "TLS") and server.tls is None:
            report("CM0402", (*path, "tls"), protocol=protocol)
        if server.port.name is not None:
            if server.port.name in port_names:
                report("CM0403", (*path, "port", "name"), server.port.name,
                       name=server.port.name)  # fmt: skip
            port_names.add(server.port.name)


def _validate_server_port(report: Reporter, path: FieldPath, port: net.Port) -> None:
    if port.number is None:
        report("CM0104", (*path, "number"))
    if not port.name:
        report("CM0104", (*path, "name"))
    check_port(report, (*path, "number"), port.number)
    if port.protocol is None:
        report("CM0104", (*path, "protocol"))
    elif port.protocol.upper() not in ISTIO_PROTOCOLS:
        report("CM0404", (*path, "protocol"), port.protocol, choices=", ".join(ISTIO_PROTOCOLS))


def validate_service_entry(report: Reporter, entry: net.ServiceEntry) -> None:
    if not entry.hosts:
        report("CM0104", (*SPEC, "hosts"))
    for index, host in enumerate(entry.hosts):
        path = (*SPEC, "hosts", index)
        problem = problem_with_host(host, allow_star=False)
        if problem is not None:
            report("CM0111", path, host, problem=problem)
        elif entry.resolution in ("DNS", "DNS_ROUND_ROBIN") and not entry.endpoints and "*" in host:
            # Istio: without endpoints, DNS resolution looks the host itself up.
            report("CM0111", path, host, problem=f"host {host!r} must be a full name (no "
                   f"wildcard) for resolution {entry.resolution} without endpoints")  # fmt: skip
    for index, endpoint in enumerate(entry.endpoints):
        if endpoint.weight is not None and not 0 <= endpoint.weight <= MAX_ENVOY_TOTAL_WEIGHT:
            expected = f"between 0 and {MAX_ENVOY_TOTAL_WEIGHT} (a 32-bit unsigned integer)"
            report("CM0103", (*SPEC, "endpoints", index, "weight"), endpoint.weight,
                   expected=expected)  # fmt: skip
    for index, port in enumerate(entry.ports):
        path = (*SPEC, "ports", index)
        check_port(report, (*path, "number"), port.number)
        if port.number is None:
            report("CM0104", (*path, "number"))
        if not port.name:
            report("CM0104", (*path, "name"))
        if port.protocol is not None and port.protocol.upper() not in ISTIO_PROTOCOLS:
            report("CM0404", (*path, "protocol"), port.protocol,
                   choices=", ".join(ISTIO_PROTOCOLS))  # fmt: skip
    for index, endpoint in enumerate(entry.endpoints):
        check_labels(report, (*SPEC, "endpoints", index, "labels"), endpoint.labels)

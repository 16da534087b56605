"""Validation of Istio networking kinds (VirtualService, DestinationRule, Gateway, ServiceEntry),
following Istio's ``pkg/config/validation/validation.go``. Pure; called by
:mod:`canarymesh.api.validate` for one resource at a time.

Notable rule, checked against Istio's source: weights are *relative* (a destination gets
weight/sum), so Istio refuses only a negative weight and an all-zero split; a split that does
not add up to 100 is a warning here (CM0203), because canary steps read weights as percentages.
"""

from __future__ import annotations

import json

from canarymesh.api import istio_networking as net
from canarymesh.api.checks import is_dns1123_label
from canarymesh.api.objects import FieldPath
from canarymesh.api.reporter import Reporter
from canarymesh.api.validate_common import (
    check_duration,
    check_host,
    check_labels,
    check_percent,
    check_port,
    check_regex,
    check_string_match,
    check_string_matches,
)

__all__ = [
    "validate_destination_rule",
    "validate_gateway",
    "validate_service_entry",
    "validate_virtual_service",
]

SPEC: FieldPath = ("spec",)
ISTIO_PROTOCOLS = (
    "HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "REDIS", "MYSQL", "TCP", "TLS", "UDP",
)  # fmt: skip
_RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
    "refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
    "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal",
    "resource-exhausted", "unavailable",
})  # fmt: skip


# --- VirtualService ---------------------------------------------------------------------------


def validate_virtual_service(report: Reporter, vs: net.VirtualService) -> None:
    on_mesh = not vs.gateways or "mesh" in vs.gateways
    if not vs.hosts:
        report("CM0204", (*SPEC, "hosts"))
    for index, host in enumerate(vs.hosts):
        path = (*SPEC, "hosts", index)
        if host == "*" and on_mesh:
            report("CM0214", path, host)
        else:
            check_host(report, path, host, allow_star=True)
    if not (vs.http or vs.tcp or vs.tls):
        report("CM0205", SPEC)
    for index, rule in enumerate(vs.http):
        _validate_http_route(report, (*SPEC, "http", index), rule)
    _check_unreachable(report, vs)
    for index, tcp in enumerate(vs.tcp):
        path = (*SPEC, "tcp", index)
        if not tcp.route:
            report("CM0215", (*path, "route"), problem="a tcp rule needs a route")
        _validate_weights(report, path, [(r.weight, r.destination) for r in tcp.route])
        for m_index, match in enumerate(tcp.match):
            check_port(report, (*path, "match", m_index, "port"), match.port)
    for index, tls in enumerate(vs.tls):
        path = (*SPEC, "tls", index)
        if not tls.match or any(not m.sni_hosts for m in tls.match):
            report("CM0215", (*path, "match"), problem="a tls rule needs a match with sniHosts")
        if not tls.route:
            report("CM0215", (*path, "route"), problem="a tls rule needs a route")
        _validate_weights(report, path, [(r.weight, r.destination) for r in tls.route])


def _validate_http_route(report: Reporter, path: FieldPath, rule: net.HTTPRoute) -> None:
    actions = [name for name, value in (
        ("route", rule.route), ("redirect", rule.redirect),
        ("directResponse", rule.direct_response), ("delegate", rule.delegate),
    ) if value]  # fmt: skip
    if not actions:
        report("CM0206", path)
    elif rule.redirect is not None and rule.direct_response is not None:
        report("CM0207", path, problem="redirect and directResponse cannot both be set")
    elif rule.route and (rule.redirect is not None or rule.direct_response is not None):
        other = "redirect" if rule.redirect is not None else "directResponse"
        report("CM0207", path, problem=f"route and {other} cannot both be set")
    for index, match in enumerate(rule.match):
        _validate_match(report, (*path, "match", index), match)
    _validate_weights(report, path, [(d.weight, d.destination) for d in rule.route])
    check_duration(report, (*path, "timeout"), rule.timeout)
    _validate_retries(report, (*path, "retries"), rule.retries)
    _validate_fault(report, (*path, "fault"), rule.fault)
    _validate_redirect(report, (*path, "redirect"), rule.redirect)
    _validate_rewrite(report, (*path, "rewrite"), rule.rewrite)
    if rule.direct_response is not None:
        status = rule.direct_response.status
        if not 200 <= status <= 599:
            report("CM0103", (*path, "directResponse", "status"), status,
                   expected="an HTTP status between 200 and 599")  # fmt: skip
    if rule.mirror is not None:
        _validate_destination(report, (*path, "mirror"), rule.mirror)
    check_percent(report, (*path, "mirrorPercentage"), rule.mirror_percentage)
    for index, mirror in enumerate(rule.mirrors):
        _validate_destination(report, (*path, "mirrors", index, "destination"), mirror.destination)
        check_percent(report, (*path, "mirrors", index, "percentage"), mirror.percentage)
    if rule.cors_policy is not None:
        for index, origin in enumerate(rule.cors_policy.allow_origins):
            check_string_match(report, (*path, "corsPolicy", "allowOrigins", index), origin)
        check_duration(report, (*path, "corsPolicy", "maxAge"), rule.cors_policy.max_age)


def _validate_match(report: Reporter, path: FieldPath, match: net.HTTPMatchRequest) -> None:
    for name, value in (("uri", match.uri), ("scheme", match.scheme), ("method", match.method),
                        ("authority", match.authority)):  # fmt: skip
        check_string_match(report, (*path, name), value)
    check_string_matches(report, (*path, "headers"), match.headers)
    check_string_matches(report, (*path, "queryParams"), match.query_params)
    check_string_matches(report, (*path, "withoutHeaders"), match.without_headers)
    for name in match.headers:
        if not name:
            report("CM0112", (*path, "headers", name), name)
    check_port(report, (*path, "port"), match.port)
    check_labels(report, (*path, "sourceLabels"), match.source_labels)


def _validate_weights(
    report: Reporter, path: FieldPath, routes: list[tuple[int | None, net.Destination]]
) -> None:
    total = 0
    for index, (weight, destination) in enumerate(routes):
        _validate_destination(report, (*path, "route", index, "destination"), destination)
        if weight is not None and weight < 0:
            report("CM0201", (*path, "route", index, "weight"), weight)
        total += max(weight or 0, 0)
    if len(routes) > 1:
        if total == 0:
            report("CM0202", (*path, "route"), count=len(routes))
        elif total != 100:
            report("CM0203", (*path, "route"), total=total)


def _validate_destination(report: Reporter, path: FieldPath, destination: net.Destination) -> None:
    if not destination.host:
        report("CM0104", (*path, "host"))
    elif destination.host == "*":
        report("CM0111", (*path, "host"), "*", problem="a destination host cannot be *")
    else:
        check_host(report, (*path, "host"), destination.host, allow_star=False)
    if destination.subset is not None and not is_dns1123_label(destination.subset):
        report("CM0106", (*path, "subset"), destination.subset, what="a subset name",
               form="a DNS-1123 label")  # fmt: skip
    if destination.port is not None:
        check_port(report, (*path, "port", "number"), destination.port.number)


def _validate_retries(report: Reporter, path: FieldPath, retries: net.HTTPRetry | None) -> None:
    if retries is None:
        return
    attempts = retries.attempts or 0
    if attempts < 0:
        report("CM0103", (*path, "attempts"), attempts, expected="0 or more")
    elif attempts == 0 and (retries.per_try_timeout is not None or retries.retry_on):
        problem = "perTryTimeout or retryOn is set but attempts is 0 (retries disabled)"
        report("CM0211", path, problem=problem)
    check_duration(report, (*path, "perTryTimeout"), retries.per_try_timeout)
    check_duration(report, (*path, "backoff"), retries.backoff)
    for policy in (retries.retry_on or "").split(",") if retries.retry_on else []:
        if policy not in _RETRY_ON and not (policy.isdigit() and 100 <= int(policy) <= 599):
            report("CM0211", (*path, "retryOn"), retries.retry_on,
                   problem=f"{policy!r} is not a valid retryOn policy")  # fmt: skip


def _validate_fault(
    report: Reporter, path: FieldPath, fault: net.HTTPFaultInjection | None
) -> None:
    if fault is None:
        return
    if fault.delay is None and fault.abort is None:
        report("CM0208", path)
    if fault.delay is not None:
        delay = fault.delay
        check_percent(report, (*path, "delay", "percentage"), delay.percentage)
        if delay.percent is not None and not 0 <= delay.percent <= 100:
            report("CM0103", (*path, "delay", "percent"), delay.percent,
                   expected="between 0 and 100")  # fmt: skip
        if delay.fixed_delay is None and delay.exponential_delay is None:
            report("CM0104", (*path, "delay", "fixedDelay"))
        check_duration(report, (*path, "delay", "fixedDelay"), delay.fixed_delay)
    if fault.abort is not None:
        abort = fault.abort
        check_percent(report, (*path, "abort", "percentage"), abort.percentage)
        status = abort.http_status
        if status is not None and not 200 <= status <= 599:
            report("CM0103", (*path, "abort", "httpStatus"), status,
                   expected="an HTTP status between 200 and 599")  # fmt: skip
        if status is None and abort.grpc_status is None and abort.http2_error is None:
            report("CM0209", (*path, "abort"))


def _validate_redirect(
    report: Reporter, path: FieldPath, redirect: net.HTTPRedirect | None
) -> None:
    if redirect is None:
        return
    if not (redirect.uri or redirect.prefix_rewrite or redirect.authority or redirect.scheme
            or redirect.port or redirect.derive_port):  # fmt: skip
        report("CM0210", path, problem="redirect must specify uri, authority, scheme or port")
    code = redirect.redirect_code
    if code is not None and code != 0 and not 300 <= code <= 399:
        report("CM0103", (*path, "redirectCode"), code, expected="a 3xx redirect code")
    if redirect.scheme is not None and redirect.scheme not in ("http", "https"):
        report("CM0105", (*path, "scheme"), redirect.scheme, choices="http, https")
    check_port(report, (*path, "port"), redirect.port)


def _validate_rewrite(report: Reporter, path: FieldPath, rewrite: net.HTTPRewrite | None) -> None:
    if rewrite is None:
        return
    if rewrite.uri and rewrite.uri_regex_rewrite is not None:
        report("CM0212", path, problem="rewrite may contain only one of uri or uriRegexRewrite")
    if not rewrite.uri and rewrite.uri_regex_rewrite is None and not rewrite.authority:
        report("CM0212", path, problem="rewrite must set uri, uriRegexRewrite or authority")
    regex = rewrite.uri_regex_rewrite
    if regex is not None and regex.match is not None:
        check_regex(report, (*path, "uriRegexRewrite", "match"), regex.match)


def _check_unreachable(report: Reporter, vs: net.VirtualService) -> None:
    """Istio's analyzeUnreachableHTTPRules, without the prefix-overlap part."""
    catch_all: int | None = None
    seen: dict[str, int] = {}
    for index, rule in enumerate(vs.http):
        path = (*SPEC, "http", index)
        rule_name = repr(rule.name) if rule.name else f"#{index}"
        if catch_all is not None:
            reason = f"rule #{catch_all} before it has no match and takes every request"
            report("CM0213", path, rule=rule_name, reason=reason)
            continue
        if not rule.match:
            catch_all = index
            continue
        keys = [_match_key(m) for m in rule.match]
        if all(key in seen for key in keys):
            reason = "all its matches are used by earlier rules"
            report("CM0213", path, rule=rule_name, reason=reason)
        for key in keys:
            seen.setdefault(key, index)


def _match_key(match: net.HTTPMatchRequest) -> str:
    data = match.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude={"name"})
    return json.dumps(data, sort_keys=True)


# --- DestinationRule --------------------------------------------------------------------------


def validate_destination_rule(report: Reporter, dr: net.DestinationRule) -> None:
    if not dr.host:
        report("CM0104", (*SPEC, "host"))
    else:
        check_host(report, (*SPEC, "host"), dr.host, allow_star=False)
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
            check_duration(report, (*path, "consistentHash", "httpCookie", "ttl"),
                           hashing.http_cookie.ttl)  # fmt: skip


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
            if slash and namespace not in ("*", ".", "~") and not is_dns1123_label(namespace):
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
    check_port(report, (*path, "number"), port.number)
    if port.protocol is None:
        report("CM0104", (*path, "protocol"))
    elif port.protocol.upper() not in ISTIO_PROTOCOLS:
        report("CM0404", (*path, "protocol"), port.protocol, choices=", ".join(ISTIO_PROTOCOLS))


def validate_service_entry(report: Reporter, entry: net.ServiceEntry) -> None:
    if not entry.hosts:
        report("CM0104", (*SPEC, "hosts"))
    for index, host in enumerate(entry.hosts):
        check_host(report, (*SPEC, "hosts", index), host, allow_star=False)
    for index, port in enumerate(entry.ports):
        path = (*SPEC, "ports", index)
        check_port(report, (*path, "number"), port.number)
        if port.number is None:
            report("CM0104", (*path, "number"))
        if port.protocol is not None and port.protocol.upper() not in ISTIO_PROTOCOLS:
            report("CM0404", (*path, "protocol"), port.protocol,
                   choices=", ".join(ISTIO_PROTOCOLS))  # fmt: skip
    for index, endpoint in enumerate(entry.endpoints):
        check_labels(report, (*SPEC, "endpoints", index, "labels"), endpoint.labels)

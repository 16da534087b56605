"""Route actions: what an HTTP rule does once matched (destinations and weights, redirect,
direct response, rewrite, timeout, retries, fault, mirror, CORS, header operations).

Called by ``xds.routes`` and ``xds.gateway``. Istio defaults reproduced here: no route timeout,
2 retries on ``connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes``
(pilot/pkg/networking/core/route/retry/retry.go), 100 % when a fault or mirror gives no
percentage, redirect code 301.
"""

from __future__ import annotations

from collections.abc import Sequence

from canarymesh.api.istio_networking import (
    CorsPolicy,
    Destination,
    HeaderOperations,
    Headers,
    HTTPFaultInjection,
    HTTPRedirect,
    HTTPRetry,
    HTTPRoute,
    HTTPRouteDestination,
    Percent,
    VirtualService,
)
from canarymesh.mesh.index import MeshIndex
from canarymesh.mesh.merge import compose_traffic_policy
from canarymesh.mesh.model import Config, ProxyNode
from canarymesh.xds import names
from canarymesh.xds.types import EnvoyJson, JsonValue, duration, typed

DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
FAULT_FILTER = "envoy.filters.http.fault"
CORS_FILTER = "envoy.filters.http.cors"
REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}


def header_value(key: str, value: str, action: str = "OVERWRITE_IF_EXISTS_OR_ADD") -> EnvoyJson:
    return {"header": {"key": key, "value": value}, "append_action": action}


def fraction(percent: Percent | None, legacy: int | None = None) -> EnvoyJson:
    """Istio percentages as Envoy FractionalPercent; unset means 100 %."""
    if percent is not None and percent.value is not None:
        return {"numerator": round(percent.value * 10000), "denominator": "MILLION"}
    if legacy is not None:
        return {"numerator": legacy, "denominator": "HUNDRED"}
    return {"numerator": 100, "denominator": "HUNDRED"}


def default_retry_policy() -> EnvoyJson:
    return {
        "retry_on": DEFAULT_RETRY_ON,
        "num_retries": 2,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": typed(
                    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate", {}
                ),
            }
        ],
        "host_selection_retry_max_attempts": "5",
    }


def translate_retries(retries: HTTPRetry | None) -> EnvoyJson | None:
    if retries is None:
        return default_retry_policy()
    if not retries.attempts:
        return None
    policy = default_retry_policy()
    policy["num_retries"] = retries.attempts
    if retries.retry_on:
        tokens = [t.strip() for t in retries.retry_on.split(",") if t.strip()]
        codes = [int(t) for t in tokens if t.isdigit()]
        conditions = [t for t in tokens if not t.isdigit()]
        if codes:
            policy["retriable_status_codes"] = list(codes)
            if "retriable-status-codes" not in conditions:
                conditions.append("retriable-status-codes")
        policy["retry_on"] = ",".join(conditions)
    if retries.per_try_timeout:
        policy["per_try_timeout"] = duration(retries.per_try_timeout)
    if retries.retry_ignore_previous_hosts is False:
        del policy["retry_host_predicate"]
    return policy


def translate_fault(fault: HTTPFaultInjection | None) -> EnvoyJson | None:
    if fault is None or (fault.delay is None and fault.abort is None):
        return None
    body: EnvoyJson = {}
    if fault.delay is not None and fault.delay.fixed_delay:
        body["delay"] = {
            "fixed_delay": duration(fault.delay.fixed_delay),
            "percentage": fraction(fault.delay.percentage, fault.delay.percent),
        }
    if fault.abort is not None and fault.abort.http_status is not None:
        body["abort"] = {
            "http_status": fault.abort.http_status,
            "percentage": fraction(fault.abort.percentage),
        }
    return typed("envoy.extensions.filters.http.fault.v3.HTTPFault", body) if body else None


def translate_cors(cors: CorsPolicy | None) -> EnvoyJson | None:
    if cors is None:
        return None
    origins: list[JsonValue] = [{"exact": o} for o in cors.allow_origin]
    for match in cors.allow_origins:
        if match.exact is not None:
            origins.append({"exact": match.exact})
        elif match.prefix is not None:
            origins.append({"prefix": match.prefix})
        elif match.regex is not None:
            origins.append({"safe_regex": {"regex": match.regex}})
    body: EnvoyJson = {"allow_origin_string_match": origins}
    for key, values in (
        ("allow_methods", cors.allow_methods),
        ("allow_headers", cors.allow_headers),
        ("expose_headers", cors.expose_headers),
    ):
        if values:
            body[key] = ",".join(values)
    if cors.max_age:
        seconds = duration(cors.max_age) or "0s"
        body["max_age"] = str(int(float(seconds[:-1])))
    if cors.allow_credentials is not None:
        body["allow_credentials"] = cors.allow_credentials
    return typed("envoy.extensions.filters.http.cors.v3.CorsPolicy", body)


def translate_header_operations(ops: HeaderOperations | None, direction: str) -> EnvoyJson:
    if ops is None:
        return {}
    adds: list[JsonValue] = [header_value(k, ops.set[k]) for k in sorted(ops.set)]
    adds += [header_value(k, ops.add[k], "APPEND_IF_EXISTS_OR_ADD") for k in sorted(ops.add)]
    out: EnvoyJson = {}
    if adds:
        out[f"{direction}_headers_to_add"] = adds
    if ops.remove:
        out[f"{direction}_headers_to_remove"] = list(ops.remove)
    return out


def translate_headers(headers: Headers | None) -> EnvoyJson:
    if headers is None:
        return {}
    return {
        **translate_header_operations(headers.request, "request"),
        **translate_header_operations(headers.response, "response"),
    }


def destination_cluster(
    index: MeshIndex, vs: Config[VirtualService], destination: Destination, port: int
) -> str:
    """The cluster of a destination, or the blackhole when its host or subset is unknown."""
    host = names.config_host(destination.host, vs.namespace, index.mesh.settings.domain_suffix)
    service = index.service(host)
    if service is None:
        return names.BLACKHOLE_CLUSTER
    number = destination.port.number if destination.port and destination.port.number else None
    if number is None:
        number = service.ports[0].port if len(service.ports) == 1 else port
    if service.port(number) is None:
        return names.BLACKHOLE_CLUSTER
    subset = destination.subset or ""
    if subset and subset not in {s.name for s in index.subsets(host, vs.namespace)}:
        return names.BLACKHOLE_CLUSTER
    return names.outbound_cluster(number, subset, host)


def split_weights(destinations: Sequence[HTTPRouteDestination]) -> list[int]:
    """Istio's weights: a lone destination gets 100; zero weights are dropped by the caller;
    when no destination has a weight the traffic is split evenly."""
    if len(destinations) == 1:
        return [100]
    weights = [d.weight or 0 for d in destinations]
    return weights if sum(weights) > 0 else [1] * len(destinations)


def translate_destinations(
    index: MeshIndex, proxy: ProxyNode, vs: Config[VirtualService], rule: HTTPRoute, port: int
) -> EnvoyJson:
    weights = split_weights(rule.route)
    entries: list[tuple[str, int, HTTPRouteDestination]] = [
        (destination_cluster(index, vs, d.destination, port), w, d)
        for d, w in zip(rule.route, weights, strict=True)
        if w > 0
    ]
    if not entries:
        return {"cluster": names.BLACKHOLE_CLUSTER}
    if len(entries) == 1:
        return {"cluster": entries[0][0]}
    clusters: list[JsonValue] = []
    for cluster, weight, dest in entries:
        clusters.append({"name": cluster, "weight": weight, **translate_headers(dest.headers)})
    return {"weighted_clusters": {"clusters": clusters}}


def translate_redirect(redirect: HTTPRedirect) -> EnvoyJson:
    out: EnvoyJson = {"response_code": REDIRECT_CODES.get(redirect.redirect_code or 301, "FOUND")}
    if redirect.uri:
        out["path_redirect"] = redirect.uri
    if redirect.authority:
        out["host_redirect"] = redirect.authority
    if redirect.port:
        out["port_redirect"] = redirect.port
    if redirect.scheme:
        out["scheme_redirect"] = redirect.scheme
    return out


def translate_mirrors(
    index: MeshIndex, vs: Config[VirtualService], rule: HTTPRoute, port: int
) -> list[JsonValue]:
    mirrors: list[JsonValue] = []
    if rule.mirror is not None:
        mirrors.append(
            {
                "cluster": destination_cluster(index, vs, rule.mirror, port),
                "runtime_fraction": {
                    "default_value": fraction(rule.mirror_percentage, rule.mirror_percent)
                },
            }
        )
    for policy in rule.mirrors:
        mirrors.append(
            {
                "cluster": destination_cluster(index, vs, policy.destination, port),
                "runtime_fraction": {"default_value": fraction(policy.percentage)},
            }
        )
    return mirrors


def hash_policy(
    index: MeshIndex, proxy: ProxyNode, host: str, subset: str, port: int
) -> list[JsonValue]:
    """Route hash policy for a consistent-hash DestinationRule of the destination."""
    rule = index.destination_rule(host, proxy.namespace, proxy.labels)
    policy = compose_traffic_policy(rule, subset, port)
    lb = policy.load_balancer
    if lb is None or lb.consistent_hash is None:
        return []
    chash = lb.consistent_hash
    if chash.http_header_name:
        return [{"header": {"header_name": chash.http_header_name}}]
    if chash.http_cookie is not None:
        cookie: EnvoyJson = {"name": chash.http_cookie.name}
        if chash.http_cookie.ttl:
            cookie["ttl"] = duration(chash.http_cookie.ttl)
        if chash.http_cookie.path:
            cookie["path"] = chash.http_cookie.path
        return [{"cookie": cookie}]
    if chash.use_source_ip:
        return [{"connection_properties": {"source_ip": True}}]
    if chash.http_query_parameter_name:
        return [{"query_parameter": {"name": chash.http_query_parameter_name}}]
    return []


def translate_route_action(
    index: MeshIndex, proxy: ProxyNode, vs: Config[VirtualService], rule: HTTPRoute, port: int
) -> EnvoyJson:
    """The action half of an Envoy route (everything but ``name`` and ``match``)."""
    out: EnvoyJson = translate_headers(rule.headers)
    weights = split_weights(rule.route) if rule.route else []
    live = [d for d, w in zip(rule.route, weights, strict=True) if w > 0]
    if len(live) == 1:
        # A lone destination's header operations apply to the whole route; so do those of the
        # only destination with weight, since the split collapses to its cluster (as Istio
        # moves that cluster's headers onto the route).
        for key, value in translate_headers(live[0].headers).items():
            existing = out.get(key)
            if isinstance(existing, list) and isinstance(value, list):
                out[key] = existing + value
            else:
                out[key] = value
    per_filter: EnvoyJson = {}
    fault = translate_fault(rule.fault)
    if fault is not None:
        per_filter[FAULT_FILTER] = fault
    cors = translate_cors(rule.cors_policy)
    if cors is not None:
        per_filter[CORS_FILTER] = cors
    if per_filter:
        out["typed_per_filter_config"] = per_filter
    if rule.redirect is not None:
        out["redirect"] = translate_redirect(rule.redirect)
        return out
    if rule.direct_response is not None:
        response: EnvoyJson = {"status": rule.direct_response.status}
        body = rule.direct_response.body or {}
        if "string" in body:
            response["body"] = {"inline_string": body["string"]}
        out["direct_response"] = response
        return out
    out["route"] = build_forward_action(index, proxy, vs, rule, port)
    return out


def build_forward_action(
    index: MeshIndex, proxy: ProxyNode, vs: Config[VirtualService], rule: HTTPRoute, port: int
) -> EnvoyJson:
    action = translate_destinations(index, proxy, vs, rule, port)
    action["timeout"] = duration(rule.timeout) or "0s"
    retry = translate_retries(rule.retries)
    if retry is not None:
        action["retry_policy"] = retry
    mirrors = translate_mirrors(index, vs, rule, port)
    if mirrors:
        action["request_mirror_policies"] = mirrors
    if rule.rewrite is not None:
        if rule.rewrite.uri is not None:
            action["prefix_rewrite"] = rule.rewrite.uri
        if rule.rewrite.authority:
            action["host_rewrite_literal"] = rule.rewrite.authority
        regex = rule.rewrite.uri_regex_rewrite
        if regex is not None and regex.match is not None:
            action["regex_rewrite"] = {
                "pattern": {"regex": regex.match},
                "substitution": regex.rewrite or "",
            }
    if rule.route:
        first = rule.route[0].destination
        host = names.config_host(first.host, vs.namespace, index.mesh.settings.domain_suffix)
        hashing = hash_policy(index, proxy, host, first.subset or "", port)
        if hashing:
            action["hash_policy"] = hashing
    return action

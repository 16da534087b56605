"""Route actions: what an HTTP rule does once matched (destinations and weights, redirect,
direct response, rewrite, timeout, retries, fault, mirror, CORS, header operations).

Called by ``xds.routes`` and ``xds.gateway``. Istio's defaults reproduced here (istiod 1.31,
pilot/pkg/networking/core/route/route.go and route/retry/retry.go; docs/istio-fidelity.md lists
them all): no route timeout and ``max_grpc_timeout`` equal to the route timeout, 2 retries on
``connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`` (no status code
since 1.24) avoiding previous hosts unless the destination hashes consistently, 0 % when a
fault gives no percentage (istio/api#2522), 100 % when a mirror gives none, redirect code 301.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

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
# Istio writes no timeout as 0s, and caps a gRPC client's grpc-timeout header with the route
# timeout (0s: no cap, the header is honoured); without max_grpc_timeout Envoy ignores it.
NO_TIMEOUT: EnvoyJson = {"timeout": "0s", "max_grpc_timeout": "0s"}
HTTP_STATUSES = frozenset(status.value for status in HTTPStatus)
# gRPC status names Istio accepts in fault.abort.grpcStatus, as their numeric codes.
GRPC_STATUS_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)  # fmt: skip
GRPC_STATUS = {name: code for code, name in enumerate(GRPC_STATUS_NAMES)}
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
    """An Istio percentage as Envoy FractionalPercent (``percentage`` wins over ``percent``)."""
    if percent is not None and percent.value is not None:
        return {"numerator": round(percent.value * 10000), "denominator": "MILLION"}
    return {"numerator": legacy if legacy is not None else 100, "denominator": "HUNDRED"}


def timeouts(timeout: str | None) -> EnvoyJson:
    """The route timeout and the same cap on gRPC's grpc-timeout header (istiod's setTimeout)."""
    value = duration(timeout) or "0s"
    return {"timeout": value, "max_grpc_timeout": value}


def inbound_route_action(cluster: str, grpc: bool = False) -> EnvoyJson:
    """istiod's BuildDefaultHTTPInboundRoute: no timeout, grpc-timeout headers honoured without
    a cap, and (except for gRPC, whose streams it would break) two retries of a request whose
    connection to the app was reset before the request was sent."""
    action: EnvoyJson = {
        "cluster": cluster,
        "timeout": "0s",
        "max_stream_duration": {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"},
    }
    if not grpc:
        action["retry_policy"] = {"retry_on": "reset-before-request", "num_retries": 2}
    return action


def default_retry_policy(consistent_hash: bool = False) -> EnvoyJson:
    """Istio's retry policy when a rule sets none. A consistent-hash destination keeps its
    host on retries, so only then is the previous-hosts predicate left out."""
    policy: EnvoyJson = {
        "retry_on": DEFAULT_RETRY_ON,
        "num_retries": 2,
        "host_selection_retry_max_attempts": "5",
    }
    if not consistent_hash:
        policy["retry_host_predicate"] = previous_hosts()
    return policy


def previous_hosts() -> list[JsonValue]:
    return [
        {
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": typed(
                "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate", {}
            ),
        }
    ]


def translate_retries(retries: HTTPRetry | None, consistent_hash: bool = False) -> EnvoyJson | None:
    if retries is None:
        return default_retry_policy(consistent_hash)
    if not retries.attempts or retries.attempts < 0:
        return None
    policy = default_retry_policy(consistent_hash)
    policy["num_retries"] = retries.attempts
    if retries.retry_on:
        tokens = [t.strip() for t in retries.retry_on.split(",") if t.strip()]
        # Only a real HTTP status is a code (Go's http.StatusText); "999" stays a condition.
        codes = [int(t) for t in tokens if t.isdigit() and int(t) in HTTP_STATUSES]
        conditions = [t for t in tokens if not (t.isdigit() and int(t) in HTTP_STATUSES)]
        retry_on = ",".join(conditions)
        if codes:
            policy["retriable_status_codes"] = list(codes)
            if "retriable-status-codes" not in retry_on:
                retry_on += ",retriable-status-codes"
        policy["retry_on"] = retry_on
    if retries.per_try_timeout:
        policy["per_try_timeout"] = duration(retries.per_try_timeout)
    if retries.retry_ignore_previous_hosts is not None:
        policy.pop("retry_host_predicate", None)
        if retries.retry_ignore_previous_hosts:
            policy["retry_host_predicate"] = previous_hosts()
    if retries.backoff:
        policy["retry_back_off"] = {"base_interval": duration(retries.backoff)}
    return policy


def translate_fault(fault: HTTPFaultInjection | None) -> EnvoyJson | None:
    """Istio's TranslateFault. A delay without ``percentage`` uses the legacy ``percent`` (0 when
    unset) and an abort without it carries no percentage, which Envoy reads as 0 %: on Istio a
    fault that names no percentage injects nothing (istio/istio#39969, istio/api#2522)."""
    if fault is None:
        return None
    body: EnvoyJson = {}
    if fault.delay is not None and fault.delay.fixed_delay:
        body["delay"] = {
            "fixed_delay": duration(fault.delay.fixed_delay),
            "percentage": fraction(fault.delay.percentage, fault.delay.percent or 0),
        }
    abort = fault.abort
    if abort is not None and (abort.http_status is not None or abort.grpc_status in GRPC_STATUS):
        aborting: EnvoyJson = {}
        if abort.http_status is not None:
            aborting["http_status"] = abort.http_status
        else:
            aborting["grpc_status"] = GRPC_STATUS[str(abort.grpc_status)]
        if abort.percentage is not None and abort.percentage.value is not None:
            aborting["percentage"] = fraction(abort.percentage)
        body["abort"] = aborting
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
    """Mirror policies; an explicit 0 % mirrors nothing (and is left out, as istiod does)."""
    wanted: list[tuple[Destination, EnvoyJson]] = []
    if rule.mirror is not None:
        wanted.append((rule.mirror, fraction(rule.mirror_percentage, rule.mirror_percent)))
    for policy in rule.mirrors:
        wanted.append((policy.destination, fraction(policy.percentage)))
    return [
        {
            "cluster": destination_cluster(index, vs, destination, port),
            "runtime_fraction": {"default_value": share},
            # Istio does not let the mirror's copy force a trace of its own.
            "trace_sampled": False,
        }
        for destination, share in wanted
        if share["numerator"] != 0
    ]


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
    action.update(timeouts(rule.timeout))
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
    # Each destination that gets traffic adds its DestinationRule's hash key; only a lone
    # destination's hashing also keeps retries on the same host (istiod's
    # applyHTTPRouteDestination).
    weights = split_weights(rule.route) if rule.route else []
    hashing: list[JsonValue] = []
    for destination, weight in zip(rule.route, weights, strict=True):
        if weight > 0 or len(rule.route) == 1:
            target = destination.destination
            host = names.config_host(target.host, vs.namespace, index.mesh.settings.domain_suffix)
            hashing += hash_policy(index, proxy, host, target.subset or "", port)
    if hashing:
        action["hash_policy"] = hashing
    retry = translate_retries(rule.retries, len(rule.route) == 1 and bool(hashing))
    if retry is not None:
        action["retry_policy"] = retry
    return action

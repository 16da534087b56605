"""Routes (RDS): VirtualService HTTP rules as Envoy routes, and the sidecar's outbound
route configuration (one virtual host per service port, plus Istio's ALLOW_ANY passthrough).

Called by ``xds.generate`` (sidecars) and ``xds.gateway`` (gateways reuse
``build_routes_for_virtual_service``). Field-level translations are ``translate_<istio field>``;
``xds.actions`` holds the route-action half (weights, retries, faults, mirrors, CORS, headers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from canarymesh.api.istio_networking import (
    HTTPMatchRequest,
    HTTPRoute,
    StringMatch,
    VirtualService,
)
from canarymesh.mesh.index import MeshIndex, qualify_gateway
from canarymesh.mesh.model import Config, MeshService, ProxyNode, ServicePort, labels_match
from canarymesh.xds import actions, gateway_api, names, telemetry
from canarymesh.xds.types import EnvoyJson, JsonValue

COOKIE_PREFIX = "(.*?;)"
# Browsers separate cookies with "; ": Istio's documented regex misses them (envoy-notes
# pitfall 9), so the local mesh tolerates whitespace after each ";".
COOKIE_PREFIX_TOLERANT = r"(.*?;\s*)"


@dataclass(frozen=True, slots=True)
class RouteContext:
    """Who the routes are built for: the proxy, its gateway binding, and the port they serve."""

    index: MeshIndex
    proxy: ProxyNode
    gateway: str  # "mesh" for sidecars, "namespace/name" for an Istio Gateway
    port: int


def translate_string_match(match: StringMatch, ignore_case: bool = False) -> EnvoyJson:
    out: EnvoyJson
    if match.exact is not None:
        out = {"exact": match.exact}
    elif match.prefix is not None:
        out = {"prefix": match.prefix}
    elif match.regex is not None:
        out = {"safe_regex": {"regex": match.regex}}
    else:
        return {}
    if ignore_case and "safe_regex" not in out:
        out["ignore_case"] = True
    return out


def is_present_match(match: StringMatch) -> bool:
    """Istio's canBeConvertedToPresentMatch: an empty match, or the regex ``*`` (not RE2, a
    wildcard: https://github.com/istio/istio/pull/20629), tests only that the header is there."""
    return match.regex == "*" or (match.exact is None and match.prefix is None and not match.regex)


def translate_header(name: str, match: StringMatch, invert: bool = False) -> EnvoyJson:
    header: EnvoyJson = {"name": name}
    if match.regex is not None and name.lower() == "cookie":
        regex = match.regex.replace(COOKIE_PREFIX, COOKIE_PREFIX_TOLERANT)
        match = match.model_copy(update={"regex": regex})
    string_match = {} if is_present_match(match) else translate_string_match(match)
    if string_match:
        header["string_match"] = string_match
    else:
        header["present_match"] = True
    if invert:
        header["invert_match"] = True
        # withoutHeaders on a header the request lacks: Istio compares the value "" (so the
        # inverted match holds); Envoy alone would never match a missing header
        # (pilot/pkg/networking/core/route/route.go, TranslateRouteMatch). Envoy refuses the
        # flag next to present_match, and an inverted presence test already holds when absent.
        if string_match:
            header["treat_missing_header_as_empty"] = True
    return header


def translate_uri(match: StringMatch | None, ignore_case: bool) -> EnvoyJson:
    if match is None:
        return {"prefix": "/"}
    out: EnvoyJson
    if match.exact is not None:
        out = {"path": match.exact}
    elif match.prefix is not None:
        out = {"prefix": match.prefix}
    elif match.regex is not None:
        out = {"safe_regex": {"regex": match.regex}}
    else:
        out = {"prefix": "/"}
    # Istio sets case_sensitive from ignoreUriCase whatever the match kind, and Envoy ignores
    # it on a regex (a regex stays case-sensitive on Istio too); true is Envoy's default.
    if ignore_case:
        out["case_sensitive"] = False
    return out


def translate_match(match: HTTPMatchRequest | None) -> EnvoyJson:
    """One HTTPMatchRequest as an Envoy RouteMatch (its conditions are ANDed)."""
    if match is None:
        return {"prefix": "/"}
    out = translate_uri(match.uri, bool(match.ignore_uri_case))
    # Istio's order: headers and withoutHeaders sorted by name together (so output never
    # depends on YAML key order), then :method, :authority and :scheme.
    named = [(n, translate_header(n, m)) for n, m in match.headers.items()]
    named += [(n, translate_header(n, m, invert=True)) for n, m in match.without_headers.items()]
    headers: list[JsonValue] = [h for _, h in sorted(named, key=lambda item: item[0])]
    pseudo = ((":method", match.method), (":authority", match.authority), (":scheme", match.scheme))
    for name, value in pseudo:
        if value is not None:
            headers.append(translate_header(name, value))
    if headers:
        out["headers"] = headers
    if match.query_params:
        out["query_parameters"] = [
            {"name": name, "string_match": translate_string_match(match.query_params[name])}
            for name in sorted(match.query_params)
        ]
    return out


def match_applies(ctx: RouteContext, match: HTTPMatchRequest, vs_namespace: str) -> bool:
    """Whether a match entry can hold on this proxy at all (Istio drops it otherwise)."""
    if match.port is not None and match.port != ctx.port:
        return False
    if match.source_labels and (
        ctx.gateway != "mesh" or not labels_match(match.source_labels, ctx.proxy.label_map)
    ):
        return False
    if match.source_namespace and match.source_namespace != ctx.proxy.namespace:
        return False
    if match.gateways:
        bound = {qualify_gateway(g, vs_namespace) for g in match.gateways}
        return ctx.gateway in bound
    return True


def route_name(vs: Config[VirtualService], rule_index: int, rule: HTTPRoute) -> str:
    return rule.name or f"{vs.namespace}/{vs.name}/http[{rule_index}]"


def build_routes_for_virtual_service(
    ctx: RouteContext, vs: Config[VirtualService]
) -> list[EnvoyJson]:
    """Envoy routes for every HTTP rule of ``vs``, in order: the first that matches wins."""
    routes: list[EnvoyJson] = []
    for rule_index, rule in enumerate(vs.spec.http):
        name = route_name(vs, rule_index, rule)
        routes += build_routes_for_rule(ctx, vs, rule, name, ())
    return routes


def build_routes_for_rule(
    ctx: RouteContext,
    vs: Config[VirtualService],
    rule: HTTPRoute,
    name: str,
    parent_matches: Sequence[HTTPMatchRequest],
) -> list[EnvoyJson]:
    matches = merge_matches(parent_matches, rule.match)
    if rule.delegate is not None:
        return build_delegate_routes(ctx, vs, rule, name, matches)
    applicable = [m for m in matches if match_applies(ctx, m, vs.namespace)]
    if matches and not applicable:
        return []
    action = actions.translate_route_action(ctx.index, ctx.proxy, vs, rule, ctx.port)
    metadata: EnvoyJson = {
        "filter_metadata": {
            "istio": {
                "config": names.config_path(
                    "virtual-service", "networking.istio.io", vs.namespace, vs.name
                )
            }
        }
    }
    routes: list[EnvoyJson] = []
    chosen: list[HTTPMatchRequest | None] = list(applicable) or [None]
    for match in chosen:
        route: EnvoyJson = {"name": name, "match": translate_match(match), **action}
        route["metadata"] = metadata
        routes.append(route)
    return routes


def merge_matches(
    parents: Sequence[HTTPMatchRequest], children: Sequence[HTTPMatchRequest]
) -> list[HTTPMatchRequest]:
    """Istio's delegate merge: every parent match ANDed with every child match."""
    if not parents:
        return list(children)
    if not children:
        return list(parents)
    merged: list[HTTPMatchRequest] = []
    for parent in parents:
        for child in children:
            fields = parent.model_dump(exclude_defaults=True)
            for key, value in child.model_dump(exclude_defaults=True).items():
                if isinstance(value, dict) and isinstance(fields.get(key), dict):
                    fields[key] = {**fields[key], **value}
                else:
                    fields[key] = value
            merged.append(HTTPMatchRequest.model_validate(fields))
    return merged


def build_delegate_routes(
    ctx: RouteContext,
    vs: Config[VirtualService],
    rule: HTTPRoute,
    name: str,
    matches: Sequence[HTTPMatchRequest],
) -> list[EnvoyJson]:
    assert rule.delegate is not None
    namespace = rule.delegate.namespace or vs.namespace
    child = next(
        (
            c
            for c in ctx.index.mesh.virtual_services
            if c.name == rule.delegate.name and c.namespace == namespace and not c.spec.hosts
        ),
        None,
    )
    if child is None:
        return []
    routes: list[EnvoyJson] = []
    for index, child_rule in enumerate(child.spec.http):
        child_name = f"{name}/{route_name(child, index, child_rule)}"
        routes += build_routes_for_rule(ctx, child, child_rule, child_name, matches)
    return routes


def build_default_route(
    index: MeshIndex, proxy: ProxyNode, service: MeshService, port: int
) -> EnvoyJson:
    """No VirtualService: every request to the service port, over all its endpoints.

    istiod's buildSidecarVirtualHostForService keeps the previous-hosts retry predicate here
    even when the DestinationRule hashes consistently (unlike a VirtualService route)."""
    cluster = names.outbound_cluster(port, "", service.hostname)
    hashing = actions.hash_policy(index, proxy, service.hostname, "", port)
    action: EnvoyJson = {
        "cluster": cluster,
        **actions.NO_TIMEOUT,
        "retry_policy": actions.default_retry_policy(),
    }
    if hashing:
        action["hash_policy"] = hashing
    return {"name": "default", "match": {"prefix": "/"}, "route": action}


def service_domains(
    service: MeshService, port: ServicePort, proxy: ProxyNode, bare: bool
) -> list[str]:
    """The Host values that reach ``service:port`` through the HTTP proxy listener.

    Like Istio's outbound route config: the FQDN, ``name.namespace``, ``name.namespace.svc`` and
    (from the same namespace) the short name, each with ``:port``; the forms without a port are
    added only for the service's default port (``bare``), because an absolute URI without a port
    means port 80 and one listener serves every port here.
    """
    if service.resolution != "EDS":
        hosts = [service.hostname]
    else:
        hosts = [service.hostname, f"{service.name}.{service.namespace}"]
        hosts.append(f"{service.name}.{service.namespace}.svc")
        if service.namespace == proxy.namespace:
            hosts.append(service.name)
    if service.cluster_ip is not None:
        hosts.append(service.cluster_ip)
    domains = [f"{h}:{port.port}" for h in hosts]
    if bare:
        domains += hosts
    return sorted(domains)


def default_http_port(service: MeshService) -> int | None:
    http_ports = sorted(p.port for p in service.ports if p.is_http)
    if not http_ports:
        return None
    return 80 if 80 in http_ports else http_ports[0]


def build_service_vhost(
    index: MeshIndex, proxy: ProxyNode, service: MeshService, port: ServicePort
) -> EnvoyJson:
    bound = index.virtual_services(service.hostname, "mesh", proxy.namespace)
    # Routes depend on the client only through its namespace, unless a match names source
    # labels; sidecars of one namespace share them (built once per mesh index).
    per_proxy = bool(bound) and uses_source_labels(bound[0])
    key = (
        "vhost-routes",
        service.hostname,
        port.port,
        proxy.namespace,
        proxy.labels if per_proxy else (),
    )
    routes = index.memo.get(key)
    if not isinstance(routes, list):
        routes = build_vhost_routes(index, proxy, service, port, bound[0] if bound else None)
        index.memo[key] = routes
    # One route config per port in a pod network: a Host without a port means that port there.
    bare = proxy.ip is not None or default_http_port(service) == port.port
    return {
        "name": names.vhost(service.hostname, port.port),
        "domains": list(service_domains(service, port, proxy, bare)),
        "routes": list(routes),
        # Istio's proxyHeaders default: upstreams see x-envoy-attempt-count.
        "include_request_attempt_count": True,
        # Metadata exchange for telemetry, only toward mesh services (never to outside hosts).
        "request_headers_to_add": [
            actions.header_value(names.SOURCE_PEER_HEADER, source_peer(index, proxy)),
            actions.header_value(names.DESTINATION_SERVICE_HEADER, service.hostname),
        ],
    }


def uses_source_labels(vs: Config[VirtualService]) -> bool:
    return any(
        rule.delegate is not None or any(m.source_labels for m in rule.match)
        for rule in vs.spec.http
    )


def build_vhost_routes(
    index: MeshIndex,
    proxy: ProxyNode,
    service: MeshService,
    port: ServicePort,
    vs: Config[VirtualService] | None,
) -> list[JsonValue]:
    # Istio uses one VirtualService per host for sidecars: the first (here by namespace/name).
    if vs is not None:
        return list(
            build_routes_for_virtual_service(RouteContext(index, proxy, "mesh", port.port), vs)
        )
    gamma = gateway_api.gamma_routes(index, service, port.port)
    return gamma if gamma is not None else [build_default_route(index, proxy, service, port.port)]


def build_passthrough_vhost() -> EnvoyJson:
    """ALLOW_ANY: a host the mesh does not know goes out as it came, with no timeout."""
    return {
        "name": names.PASSTHROUGH_VHOST,
        "domains": ["*"],
        "routes": [
            {
                "name": names.PASSTHROUGH_VHOST,
                "match": {"prefix": "/"},
                "route": {"cluster": names.PASSTHROUGH_CLUSTER, **actions.NO_TIMEOUT},
            }
        ],
        "include_request_attempt_count": True,
    }


def build_block_all_vhost() -> EnvoyJson:
    """REGISTRY_ONLY: a host the mesh does not know gets 502, as istiod's ``block_all``
    (httproute.go, buildCatchAllVirtualHost), instead of Envoy's 404 for an unknown host."""
    return {
        "name": names.BLOCK_ALL_VHOST,
        "domains": ["*"],
        "routes": [
            {
                "name": names.BLOCK_ALL_VHOST,
                "match": {"prefix": "/"},
                "direct_response": {"status": 502},
            }
        ],
        "include_request_attempt_count": True,
    }


def source_peer(index: MeshIndex, proxy: ProxyNode) -> str:
    return telemetry.peer_info(proxy, index.mesh.settings).encode()


def build_outbound_route_config(
    index: MeshIndex, proxy: ProxyNode, only_port: int | None = None
) -> EnvoyJson:
    """The shared network's one route config (every service port), or with ``only_port`` the
    route config of one port in a pod network (Istio's ``"9080"``)."""
    vhosts: list[JsonValue] = []
    used: set[str] = set()
    for service in index.sorted_services():
        for port in service.ports:
            if not port.is_http or (only_port is not None and port.port != only_port):
                continue
            vhost = build_service_vhost(index, proxy, service, port)
            # Envoy refuses a domain twice in one route config; the first service keeps it.
            written = vhost["domains"]
            domains = [d for d in written if d not in used] if isinstance(written, list) else []
            used.update(str(d) for d in domains)
            if domains:
                vhosts.append({**vhost, "domains": domains})
    if index.mesh.settings.allow_any:
        vhosts.append(build_passthrough_vhost())
    else:
        vhosts.append(build_block_all_vhost())
    name = names.OUTBOUND_HTTP_ROUTE if only_port is None else names.port_route(only_port)
    return {"name": name, "virtual_hosts": vhosts, "validate_clusters": False}


def build_port_route_configs(index: MeshIndex, proxy: ProxyNode) -> list[EnvoyJson]:
    ports = sorted({p.port for s in index.sorted_services() for p in s.ports if p.is_http})
    return [build_outbound_route_config(index, proxy, port) for port in ports]

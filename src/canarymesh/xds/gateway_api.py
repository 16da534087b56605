"""Kubernetes Gateway API: a Gateway's listeners and its HTTPRoutes, plus mesh (GAMMA) routes
whose parent is a Service.

Called by ``xds.generate`` (gateway proxies named ``<gateway>-istio``, labelled
``gateway.networking.k8s.io/gateway-name``, as Istio deploys them) and by ``xds.routes`` (a
Service's virtual host uses its GAMMA HTTPRoutes when no VirtualService claims the host). Matches
are ordered by the Gateway API precedence: exact path, longest prefix, method, number of header
matches, number of query matches; ties keep route (namespace/name) then rule order.
"""

from __future__ import annotations

from collections.abc import Sequence

from canarymesh.api.gateway_api import HTTPBackendRef, HTTPRoute, HTTPRouteMatch, HTTPRouteRule
from canarymesh.mesh.index import MeshIndex
from canarymesh.mesh.model import Config, MeshService, ProxyNode
from canarymesh.xds import actions, names, telemetry
from canarymesh.xds.endpoints import gateway_address
from canarymesh.xds.listeners import build_hcm, client_http_filters, rds
from canarymesh.xds.types import EnvoyJson, JsonValue

GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"


def translate_path(match: HTTPRouteMatch) -> EnvoyJson:
    path = match.path
    if path is None or path.value is None:
        return {"prefix": "/"}
    kind = path.type or "PathPrefix"
    if kind == "Exact":
        return {"path": path.value}
    if kind == "RegularExpression":
        return {"safe_regex": {"regex": path.value}}
    trimmed = path.value.rstrip("/")
    # PathPrefix matches whole segments: /static matches /static/x but not /staticx.
    return {"path_separated_prefix": trimmed} if trimmed else {"prefix": "/"}


def translate_route_match(match: HTTPRouteMatch | None) -> EnvoyJson:
    if match is None:
        return {"prefix": "/"}
    out = translate_path(match)
    headers: list[JsonValue] = []
    if match.method:
        headers.append({"name": ":method", "string_match": {"exact": match.method}})
    for header in sorted(match.headers, key=lambda h: h.name.lower()):
        regex = header.type == "RegularExpression"
        string_match: EnvoyJson = (
            {"safe_regex": {"regex": header.value}} if regex else {"exact": header.value}
        )
        headers.append({"name": header.name.lower(), "string_match": string_match})
    if headers:
        out["headers"] = headers
    if match.query_params:
        out["query_parameters"] = [
            {
                "name": q.name,
                "string_match": (
                    {"safe_regex": {"regex": q.value}}
                    if q.type == "RegularExpression"
                    else {"exact": q.value}
                ),
            }
            for q in sorted(match.query_params, key=lambda q: q.name)
        ]
    return out


def precedence(match: HTTPRouteMatch | None) -> tuple[int, int, int, int, int]:
    if match is None:
        return (1, -1, 1, 0, 0)
    path = match.path
    exact = 0 if path is not None and path.type == "Exact" else 1
    length = len(path.value or "") if path is not None else 1
    return (exact, -length, 0 if match.method else 1, -len(match.headers), -len(match.query_params))


def backend_cluster(ref: HTTPBackendRef, namespace: str, index: MeshIndex) -> str:
    if ref.kind not in (None, "Service") or ref.port is None:
        return names.BLACKHOLE_CLUSTER
    host = names.service_host(
        ref.name, ref.namespace or namespace, index.mesh.settings.domain_suffix
    )
    service = index.service(host)
    if service is None or service.port(ref.port) is None:
        return names.BLACKHOLE_CLUSTER
    return names.outbound_cluster(ref.port, "", host)


def header_modifier(body: dict[str, object] | None, direction: str) -> EnvoyJson:
    if not body:
        return {}
    adds: list[JsonValue] = []
    for key, action in (("set", "OVERWRITE_IF_EXISTS_OR_ADD"), ("add", "APPEND_IF_EXISTS_OR_ADD")):
        items = body.get(key)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                name, value = str(item.get("name")).lower(), str(item.get("value"))
                adds.append(actions.header_value(name, value, action))
    out: EnvoyJson = {}
    if adds:
        out[f"{direction}_headers_to_add"] = adds
    removes = body.get("remove")
    if isinstance(removes, list) and removes:
        out[f"{direction}_headers_to_remove"] = [str(r) for r in removes]
    return out


def translate_rule_action(rule: HTTPRouteRule, namespace: str, index: MeshIndex) -> EnvoyJson:
    out: EnvoyJson = {}
    for flt in rule.filters:
        out.update(header_modifier(flt.request_header_modifier, "request"))
        out.update(header_modifier(flt.response_header_modifier, "response"))
        if flt.type == "RequestRedirect" and flt.request_redirect is not None:
            out["redirect"] = translate_redirect(flt.request_redirect)
            return out
    refs = [r for r in rule.backend_refs if (r.weight is None or r.weight > 0)]
    if not refs:
        # The Gateway API answers 500 when a rule has no usable backend.
        out["direct_response"] = {"status": 500}
        return out
    route: EnvoyJson
    if len(refs) == 1:
        route = {"cluster": backend_cluster(refs[0], namespace, index)}
    else:
        route = {
            "weighted_clusters": {
                "clusters": [
                    {"name": backend_cluster(r, namespace, index), "weight": r.weight or 1}
                    for r in refs
                ]
            }
        }
    timeout = rule.timeouts.request if rule.timeouts else None
    # Istio converts an HTTPRoute into a VirtualService and translates it the same way.
    route.update(actions.timeouts(timeout))
    route["retry_policy"] = actions.default_retry_policy()
    mirrors: list[JsonValue] = []
    for flt in rule.filters:
        if flt.type == "URLRewrite" and flt.url_rewrite is not None:
            route.update(translate_rewrite(flt.url_rewrite))
        if flt.type == "RequestMirror" and flt.request_mirror is not None:
            mirrors.append(translate_mirror(flt.request_mirror, namespace, index))
    if mirrors:
        route["request_mirror_policies"] = mirrors
    out["route"] = route
    return out


def translate_mirror(body: dict[str, object], namespace: str, index: MeshIndex) -> EnvoyJson:
    """``RequestMirror``: a copy of each request (``percent`` of them) to ``backendRef``."""
    ref = body.get("backendRef")
    cluster: str = names.BLACKHOLE_CLUSTER
    if isinstance(ref, dict):
        port = ref.get("port")
        backend = HTTPBackendRef(
            name=str(ref.get("name", "")),
            namespace=ref.get("namespace") if isinstance(ref.get("namespace"), str) else None,
            port=port if isinstance(port, int) else None,
        )
        cluster = backend_cluster(backend, namespace, index)
    percent = body.get("percent")
    numerator = percent if isinstance(percent, int) else 100
    fraction: EnvoyJson = {"numerator": numerator, "denominator": "HUNDRED"}
    return {
        "cluster": cluster,
        "runtime_fraction": {"default_value": fraction},
        "trace_sampled": False,
    }


def translate_redirect(body: dict[str, object]) -> EnvoyJson:
    out: EnvoyJson = {}
    code = body.get("statusCode", 302)
    out["response_code"] = actions.REDIRECT_CODES.get(
        code if isinstance(code, int) else 302, "FOUND"
    )
    if isinstance(body.get("scheme"), str):
        out["scheme_redirect"] = str(body["scheme"])
    if isinstance(body.get("hostname"), str):
        out["host_redirect"] = str(body["hostname"])
    port = body.get("port")
    if isinstance(port, int):
        out["port_redirect"] = port
    path = body.get("path")
    if isinstance(path, dict) and isinstance(path.get("replaceFullPath"), str):
        out["path_redirect"] = str(path["replaceFullPath"])
    return out


def translate_rewrite(body: dict[str, object]) -> EnvoyJson:
    out: EnvoyJson = {}
    if isinstance(body.get("hostname"), str):
        out["host_rewrite_literal"] = str(body["hostname"])
    path = body.get("path")
    if isinstance(path, dict):
        if isinstance(path.get("replacePrefixMatch"), str):
            out["prefix_rewrite"] = str(path["replacePrefixMatch"])
        elif isinstance(path.get("replaceFullPath"), str):
            out["regex_rewrite"] = {
                "pattern": {"regex": "^/.*$"},
                "substitution": str(path["replaceFullPath"]),
            }
    return out


def build_http_route_routes(
    routes: Sequence[Config[HTTPRoute]], index: MeshIndex
) -> list[JsonValue]:
    entries: list[tuple[tuple[int, int, int, int, int], int, EnvoyJson]] = []
    order = 0
    for route in sorted(routes, key=lambda r: (r.namespace, r.name)):
        for rule_index, rule in enumerate(route.spec.rules):
            action = translate_rule_action(rule, route.namespace, index)
            name = rule.name or f"{route.namespace}/{route.name}/rules[{rule_index}]"
            for match in rule.matches or (None,):
                envoy_route: EnvoyJson = {
                    "name": name,
                    "match": translate_route_match(match),
                    **action,
                }
                entries.append((precedence(match), order, envoy_route))
                order += 1
    return [route for _, _, route in sorted(entries, key=lambda e: (e[0], e[1]))]


def is_service_parent(kind: str | None, group: str | None) -> bool:
    return kind == "Service" and group in (None, "", "core")


def gamma_routes(index: MeshIndex, service: MeshService, port: int) -> list[JsonValue] | None:
    """Mesh routes of ``service:port`` from HTTPRoutes whose parent is the Service."""
    attached = [
        route
        for route in index.mesh.http_routes
        if any(
            is_service_parent(p.kind, p.group)
            and p.name == service.name
            and (p.namespace or route.namespace) == service.namespace
            and p.port in (None, port)
            for p in route.spec.parent_refs
        )
    ]
    return build_http_route_routes(attached, index) if attached else None


def build_gateway_api_resources(
    index: MeshIndex, proxy: ProxyNode
) -> tuple[list[EnvoyJson], list[EnvoyJson]]:
    """Listeners and route configs of a Gateway API gateway proxy (none for other proxies)."""
    gateway_name = proxy.label_map.get(GATEWAY_NAME_LABEL)
    gateway = next(
        (
            g
            for g in index.mesh.kube_gateways
            if g.name == gateway_name and g.namespace == proxy.namespace
        ),
        None,
    )
    if gateway is None:
        return [], []
    listeners: list[EnvoyJson] = []
    configs: list[EnvoyJson] = []
    for port in sorted(
        {listener.port for listener in gateway.spec.listeners if listener.protocol == "HTTP"}
    ):
        local = proxy.ports.gateway_port(port)
        if local is None:
            continue
        section_names = {lst.name for lst in gateway.spec.listeners if lst.port == port}
        attached = [
            r
            for r in index.mesh.http_routes
            if any(
                not is_service_parent(p.kind, p.group)
                and p.name == gateway.name
                and (p.namespace or r.namespace) == gateway.namespace
                and (p.section_name is None or p.section_name in section_names)
                for p in r.spec.parent_refs
            )
        ]
        name = names.gateway_http_route(port)
        configs.append(build_route_config(name, attached, index, port))
        hcm = build_hcm(
            name,
            rds(name),
            client_http_filters(False),
            telemetry.build_access_logs(proxy, "gateway", index.mesh.settings),
            {"use_remote_address": True},
            settings=index.mesh.settings,
        )
        listeners.append(
            {
                "name": names.gateway_listener(port),
                "address": gateway_address(index.mesh.settings, proxy, local),
                "filter_chains": [{"filters": [hcm]}],
            }
        )
    return listeners, configs


def build_route_config(
    name: str, routes: Sequence[Config[HTTPRoute]], index: MeshIndex, port: int
) -> EnvoyJson:
    by_host: dict[str, list[Config[HTTPRoute]]] = {}
    for route in routes:
        for host in route.spec.hostnames or ("*",):
            by_host.setdefault(host, []).append(route)
    vhosts: list[JsonValue] = [
        {
            "name": names.vhost(host, port),
            "domains": ["*"] if host == "*" else [host, f"{host}:*"],
            "routes": build_http_route_routes(by_host[host], index),
            "include_request_attempt_count": True,
        }
        for host in sorted(by_host)
    ]
    return {"name": name, "virtual_hosts": vhosts, "validate_clusters": False}

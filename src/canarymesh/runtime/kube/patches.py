"""The server-side-apply bodies the Kubernetes router sends, computed from the live object and the
desired weights. Pure: no client, no clock; :class:`canarymesh.runtime.kube.router.KubeRouter`
fetches the object, calls these functions and sends the result, and the golden tests in
``tests/golden/kube/`` pin each body.

What the controller owns (Argo Rollouts touches as little): the destinations, ``mirror`` and
``mirrorPercentage`` of the *managed* routes (those named in ``spec.target.routes``, or else every
HTTP route whose destinations are all the target host), and the routes it adds in front of them
(the A/B match route and the session-affinity route, named ``canarymesh-<canary>-…``). Every
other route, and every other field of a managed route (retries, timeouts, headers), is copied
unchanged from the live object.

Why the body holds the whole ``spec.http`` list: Istio's CRDs declare no list keys, so for
server-side apply ``http`` is an atomic list and a partial list would drop the user's routes.
The field manager ``canarymesh-controller`` therefore owns ``spec.http`` of the VirtualService
it manages (and ``spec.rules`` of an HTTPRoute); a GitOps tool must ignore those fields (see
docs/cluster.md), while ``hosts``, ``gateways``, ``tcp``, ``tls``, labels and annotations stay
its own.

On Gateway API there are no subsets: a subset ``v3`` of host ``reviews`` is the Service
``reviews-v3``, as in Istio's Bookinfo (``bookinfo-versions.yaml``).
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from canarymesh.api.canary import Canary
from canarymesh.api.durations import parse_duration
from canarymesh.api.istio_networking import HTTPMatchRequest
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights

__all__ = [
    "FIELD_MANAGER",
    "affinity_route_name",
    "apply_http_route",
    "apply_virtual_service",
    "finalize_http_route",
    "finalize_virtual_service",
    "managed_indexes",
    "match_route_name",
    "read_http_route_weights",
    "read_virtual_service_weights",
    "subset_service",
]

FIELD_MANAGER = "canarymesh-controller"

Obj = dict[str, Any]
HostsOf = Callable[[Mapping[str, Any]], list[str]]


def match_route_name(canary_name: str) -> str:
    return f"canarymesh-{canary_name}-match"


def affinity_route_name(canary_name: str) -> str:
    return f"canarymesh-{canary_name}-affinity"


def subset_service(host: str, subset: str) -> str:
    """The Service that plays a subset on Gateway API (``reviews`` + ``v3`` -> ``reviews-v3``)."""
    return f"{_short(host)}-{subset}"


# --- VirtualService ---------------------------------------------------------------------------


def apply_virtual_service(vs: Mapping[str, Any], canary: Canary, name: str, w: Weights) -> Obj:
    """The apply body that gives the managed routes of ``vs`` the weights ``w``.

    ``name`` is the Canary's name (it names the routes the controller adds)."""
    routes = _http(vs)
    managed = managed_indexes(routes, canary, _vs_hosts)
    added = _added_routes(canary, name, w)
    out: list[Obj] = []
    for index, route in enumerate(routes):
        if route.get("name") in {match_route_name(name), affinity_route_name(name)}:
            continue
        if index == managed[0]:
            out += added
        out.append(_weighted_route(route, canary, w) if index in managed else route)
    return _vs_body(vs, out)


def finalize_virtual_service(vs: Mapping[str, Any], canary: Canary, name: str, stable: str) -> Obj:
    """Every managed route to ``stable`` alone; the added routes removed."""
    routes = _http(vs)
    managed = managed_indexes(routes, canary, _vs_hosts)
    out: list[Obj] = []
    for index, route in enumerate(routes):
        if route.get("name") in {match_route_name(name), affinity_route_name(name)}:
            continue
        if index in managed:
            route = _without_mirror(route, canary)
            route["route"] = [_destination(route, canary, stable, 100)]
        out.append(route)
    return _vs_body(vs, out)


def read_virtual_service_weights(vs: Mapping[str, Any], canary: Canary, name: str) -> Weights:
    """The weights the first managed route holds now (what ``get_weights`` reports)."""
    routes = _http(vs)
    first = routes[managed_indexes(routes, canary, _vs_hosts)[0]]
    by_subset: dict[str, int] = {}
    for dest in first.get("route", []):
        subset = str(dest.get("destination", {}).get("subset", ""))
        by_subset[subset] = by_subset.get(subset, 0) + int(dest.get("weight", 100))
    canary_weight = by_subset.pop(canary.canary_subset(), 0)
    if not by_subset:  # finalized: the canary's subset is the stable one now
        return Weights(0, canary.canary_subset())
    stable = max(by_subset, key=lambda s: (by_subset[s], s))
    mirror = first.get("mirror") or {}
    mirrored = mirror.get("subset") == canary.canary_subset()
    percent = float(first.get("mirrorPercentage", {}).get("value", 100.0)) if mirrored else 0.0
    matched = any(r.get("name") == match_route_name(name) for r in routes)
    return Weights(canary_weight, stable, mirror=percent, match=matched)


def _vs_body(vs: Mapping[str, Any], http: list[Obj]) -> Obj:
    return {
        "apiVersion": vs["apiVersion"],
        "kind": "VirtualService",
        "metadata": _identity(vs),
        "spec": {"http": http},
    }


def _http(vs: Mapping[str, Any]) -> list[Obj]:
    routes = vs.get("spec", {}).get("http")
    if not isinstance(routes, list) or not routes:
        raise ConfigError(f"VirtualService {_qualified(vs)} has no HTTP routes to manage")
    return copy.deepcopy(routes)


def _vs_hosts(route: Mapping[str, Any]) -> list[str]:
    return [str(d.get("destination", {}).get("host", "")) for d in route.get("route", [])]


def _weighted_route(route: Obj, canary: Canary, w: Weights) -> Obj:
    route = _without_mirror(route, canary)
    stable = _destination(route, canary, w.stable_subset, 100 - w.canary)
    canary_dest = _destination(route, canary, canary.canary_subset(), w.canary)
    affinity = canary.strategy.session_affinity
    if affinity is not None and 0 < w.canary < 100:
        # The canary's answer sets the cookie; the affinity route keeps the user on the canary.
        value = f"{affinity.cookie_name}={_cookie_value(canary)}"
        cookie = f"{value}; Max-Age={_seconds(affinity.max_age)}"
        canary_dest["headers"] = {"response": {"add": {"Set-Cookie": cookie}}}
    route["route"] = [stable, canary_dest]
    if w.mirror > 0:
        mirror: Obj = {"host": canary.target.host, "subset": canary.canary_subset()}
        port = _port_of(route, canary)
        if port is not None:
            mirror["port"] = port
        route["mirror"] = mirror
        route["mirrorPercentage"] = {"value": w.mirror}
    return route


def _cookie_value(canary: Canary) -> str:
    return canary.canary_subset()


def _without_mirror(route: Obj, canary: Canary) -> Obj:
    mirror = route.get("mirror") or {}
    if mirror.get("subset") == canary.canary_subset():
        route.pop("mirror", None)
        route.pop("mirrorPercentage", None)
    return route


def _destination(route: Mapping[str, Any], canary: Canary, subset: str, weight: int) -> Obj:
    destination: Obj = {"host": _host_of(route, canary), "subset": subset}
    port = _port_of(route, canary)
    if port is not None:
        destination["port"] = port
    return {"destination": destination, "weight": weight}


def _host_of(route: Mapping[str, Any], canary: Canary) -> str:
    # Keep the host as the user wrote it (short or fully qualified).
    for written in _vs_hosts(route):
        if _short(written) == _short(canary.target.host):
            return written
    return canary.target.host


def _port_of(route: Mapping[str, Any], canary: Canary) -> Any:
    if canary.target.port is not None:
        return {"number": canary.target.port}
    for dest in route.get("route", []):
        port = dest.get("destination", {}).get("port")
        if port is not None:
            return copy.deepcopy(port)
    return None


def _added_routes(canary: Canary, name: str, w: Weights) -> list[Obj]:
    added: list[Obj] = []
    to_canary = [{"destination": {"host": canary.target.host, "subset": canary.canary_subset()}}]
    affinity = canary.strategy.session_affinity
    if affinity is not None and 0 < w.canary < 100:
        regex = f".*{affinity.cookie_name}={_cookie_value(canary)}.*"
        added.append(
            {
                "name": affinity_route_name(name),
                "match": [{"headers": {"cookie": {"regex": regex}}}],
                "route": copy.deepcopy(to_canary),
            }
        )
    if w.match and canary.match():
        added.append(
            {
                "name": match_route_name(name),
                "match": [_match_json(m) for m in canary.match()],
                "route": copy.deepcopy(to_canary),
            }
        )
    return added


def _match_json(match: HTTPMatchRequest) -> Obj:
    return match.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json")


# --- HTTPRoute (Gateway API) ------------------------------------------------------------------


def apply_http_route(route: Mapping[str, Any], canary: Canary, name: str, w: Weights) -> Obj:
    """The apply body giving the managed rules of an HTTPRoute the weights ``w``."""
    if canary.strategy.session_affinity is not None:
        raise ConfigError(
            f"Canary {name}: sessionAffinity needs an Istio VirtualService; "
            f"HTTPRoute {_qualified(route)} cannot set a cookie per backend"
        )
    rules = _rules(route)
    managed = managed_indexes(rules, canary, _backend_names)
    out: list[Obj] = []
    for index, rule in enumerate(rules):
        if rule.get("name") == match_route_name(name):
            continue
        if index == managed[0] and w.match and canary.match():
            out.append(_match_rule(rule, canary, name))
        if index in managed:
            rule = _without_rule_mirror(rule, canary)
            rule["backendRefs"] = [
                _backend(rule, canary, w.stable_subset, 100 - w.canary),
                _backend(rule, canary, canary.canary_subset(), w.canary),
            ]
            if w.mirror > 0:
                mirror_ref = _backend(rule, canary, canary.canary_subset(), 0)
                mirror_ref.pop("weight")
                mirror = {"backendRef": mirror_ref, "percent": round(w.mirror)}
                rule["filters"] = [*rule.get("filters", []), _mirror_filter(mirror)]
        out.append(rule)
    return _route_body(route, out)


def finalize_http_route(route: Mapping[str, Any], canary: Canary, name: str, stable: str) -> Obj:
    rules = _rules(route)
    managed = managed_indexes(rules, canary, _backend_names)
    out: list[Obj] = []
    for index, rule in enumerate(rules):
        if rule.get("name") == match_route_name(name):
            continue
        if index in managed:
            rule = _without_rule_mirror(rule, canary)
            rule["backendRefs"] = [_backend(rule, canary, stable, 100)]
        out.append(rule)
    return _route_body(route, out)


def read_http_route_weights(route: Mapping[str, Any], canary: Canary, name: str) -> Weights:
    rules = _rules(route)
    first = rules[managed_indexes(rules, canary, _backend_names)[0]]
    host = canary.target.host
    canary_service = subset_service(host, canary.canary_subset())
    by_service: dict[str, int] = {}
    for ref in first.get("backendRefs", []):
        service = str(ref.get("name", ""))
        by_service[service] = by_service.get(service, 0) + int(ref.get("weight", 1))
    canary_weight = by_service.pop(canary_service, 0)
    if not by_service:  # finalized: the canary's Service is the stable one now
        return Weights(0, canary.canary_subset())
    stable_service = max(by_service, key=lambda s: (by_service[s], s))
    stable = stable_service.removeprefix(f"{_short(host)}-")
    percent = 0.0
    for f in first.get("filters", []):
        mirror = f.get("requestMirror") or {}
        if mirror.get("backendRef", {}).get("name") == canary_service:
            percent = float(mirror.get("percent", 100))
    matched = any(r.get("name") == match_route_name(name) for r in rules)
    return Weights(canary_weight, stable, mirror=percent, match=matched)


def _route_body(route: Mapping[str, Any], rules: list[Obj]) -> Obj:
    return {
        "apiVersion": route["apiVersion"],
        "kind": "HTTPRoute",
        "metadata": _identity(route),
        "spec": {"rules": rules},
    }


def _rules(route: Mapping[str, Any]) -> list[Obj]:
    rules = route.get("spec", {}).get("rules")
    if not isinstance(rules, list) or not rules:
        raise ConfigError(f"HTTPRoute {_qualified(route)} has no rules to manage")
    return copy.deepcopy(rules)


def _backend_names(rule: Mapping[str, Any]) -> list[str]:
    # The subset Services reviews-v1, reviews-v3 stand for the host reviews.
    names = [str(ref.get("name", "")) for ref in rule.get("backendRefs", [])]
    return [name.split("-", 1)[0] for name in names]


def _backend(rule: Mapping[str, Any], canary: Canary, subset: str, weight: int) -> Obj:
    ref: Obj = {"name": subset_service(canary.target.host, subset)}
    port = canary.target.port
    if port is None:
        port = next((r["port"] for r in rule.get("backendRefs", []) if "port" in r), None)
    if port is not None:
        ref["port"] = port
    ref["weight"] = weight
    return ref


def _mirror_filter(mirror: Obj) -> Obj:
    return {"type": "RequestMirror", "requestMirror": mirror}


def _without_rule_mirror(rule: Obj, canary: Canary) -> Obj:
    target = subset_service(canary.target.host, canary.canary_subset())
    filters = [
        f
        for f in rule.get("filters", [])
        if (f.get("requestMirror") or {}).get("backendRef", {}).get("name") != target
    ]
    if filters:
        rule["filters"] = filters
    else:
        rule.pop("filters", None)
    return rule


def _match_rule(rule: Mapping[str, Any], canary: Canary, name: str) -> Obj:
    matches = [_gateway_match(m, name) for m in canary.match()]
    backend = _backend(rule, canary, canary.canary_subset(), 100)
    backend.pop("weight")
    return {"name": match_route_name(name), "matches": matches, "backendRefs": [backend]}


def _gateway_match(match: HTTPMatchRequest, name: str) -> Obj:
    # Only header matches translate one to one (exact and regex); anything else would
    # silently change who sees the canary, so it is refused.
    data = _match_json(match)
    headers: list[Obj] = []
    for header, condition in sorted(data.pop("headers", {}).items()):
        if "exact" in condition:
            headers.append({"name": header, "type": "Exact", "value": condition["exact"]})
        elif "regex" in condition:
            headers.append(
                {"name": header, "type": "RegularExpression", "value": condition["regex"]}
            )
        else:
            raise ConfigError(f"Canary {name}: header {header!r} {condition} has no HTTPRoute form")
    if data:
        raise ConfigError(
            f"Canary {name}: match fields {sorted(data)} have no HTTPRoute form; use headers"
        )
    return {"headers": headers}


# --- shared -------------------------------------------------------------------------------------


def managed_indexes(
    routes: Sequence[Mapping[str, Any]], canary: Canary, hosts_of: HostsOf
) -> tuple[int, ...]:
    """Indexes of the routes the controller may rewrite; ConfigError when there are none."""
    names = canary.target.routes
    if names:
        found = {str(r.get("name")): i for i, r in enumerate(routes) if r.get("name") is not None}
        missing = [n for n in names if n not in found]
        if missing:
            raise ConfigError(f"spec.target.routes names routes that do not exist: {missing}")
        return tuple(sorted(found[n] for n in names))
    host = canary.target.host
    indexes = tuple(
        i
        for i, route in enumerate(routes)
        # reviews, reviews.webapps, reviews.webapps.svc.cluster.local: one Service.
        if not str(route.get("name", "")).startswith("canarymesh-")
        and (hosts := hosts_of(route))
        and all(_short(h) == _short(host) for h in hosts)
    )
    if not indexes:
        raise ConfigError(
            f"no route sends traffic only to {host!r}; name one in spec.target.routes"
        )
    return indexes


def _short(host: str) -> str:
    return host.split(".", 1)[0]


def _identity(obj: Mapping[str, Any]) -> Obj:
    metadata = obj.get("metadata", {})
    return {"name": metadata["name"], "namespace": metadata.get("namespace", "default")}


def _qualified(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata", {})
    return f"{metadata.get('namespace', 'default')}/{metadata.get('name', '?')}"


def _seconds(duration: str) -> int:
    parsed = parse_duration(duration)
    return int((parsed or datetime.timedelta(days=1)).total_seconds())

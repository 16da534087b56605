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

The HTTPRoute (Gateway API) bodies are in :mod:`.gateway_patches`, built on the shared helpers
at the end of this module.
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
    "apply_virtual_service",
    "finalize_virtual_service",
    "identity",
    "managed_indexes",
    "match_json",
    "match_route_name",
    "qualified",
    "read_virtual_service_weights",
    "short_host",
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
    return f"{short_host(host)}-{subset}"


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
        "metadata": identity(vs),
        "spec": {"http": http},
    }


def _http(vs: Mapping[str, Any]) -> list[Obj]:
    routes = vs.get("spec", {}).get("http")
    if not isinstance(routes, list) or not routes:
        raise ConfigError(f"VirtualService {qualified(vs)} has no HTTP routes to manage")
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
        if short_host(written) == short_host(canary.target.host):
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
                "match": [match_json(m) for m in canary.match()],
                "route": copy.deepcopy(to_canary),
            }
        )
    return added


def match_json(match: HTTPMatchRequest) -> Obj:
    return match.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json")


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
        and all(short_host(h) == short_host(host) for h in hosts)
    )
    if not indexes:
        raise ConfigError(
            f"no route sends traffic only to {host!r}; name one in spec.target.routes"
        )
    return indexes


def short_host(host: str) -> str:
    return host.split(".", 1)[0]


def identity(obj: Mapping[str, Any]) -> Obj:
    metadata = obj.get("metadata", {})
    return {"name": metadata["name"], "namespace": metadata.get("namespace", "default")}


def qualified(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata", {})
    return f"{metadata.get('namespace', 'default')}/{metadata.get('name', '?')}"


def _seconds(duration: str) -> int:
    parsed = parse_duration(duration)
    return int((parsed or datetime.timedelta(days=1)).total_seconds())

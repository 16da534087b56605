"""A rollout's weights in an Istio VirtualService: the managed ``http`` routes split between the
stable and the canary subset, the controller's mirror, and the routes it adds in front (session
affinity, A/B match), under the rules of :mod:`.managed`. Pure: dicts in, a new dict out.

Session affinity (Flagger's): while the canary gets some but not all of the traffic, its answers
set ``<cookieName>=<canary subset>`` and the affinity route sends requests that carry it to the
canary (refreshing the cookie), so a user who reached the canary stays there. The cookie's value
is the subset, so a cookie from an earlier rollout of another canary version holds nobody.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from canarymesh.api.canary import Canary
from canarymesh.api.durations import parse_duration
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.managed import (
    Obj,
    affinity_route_name,
    and_matches,
    managed_indexes,
    match_json,
    match_route_name,
    qualified,
    short_host,
    with_list,
)

__all__ = ["finalized_virtual_service", "managed_virtual_service", "virtual_service_weights"]


def managed_virtual_service(vs: Mapping[str, Any], canary: Canary, name: str, w: Weights) -> Obj:
    """``vs`` with its managed routes carrying the weights ``w``, and the added routes in front.

    ``name`` is the Canary's name (it names the routes the controller adds). Weights whose
    stable subset is the canary's (a promoted canary) give the finalized routes."""
    if w.stable_subset == canary.canary_subset():
        return finalized_virtual_service(vs, canary, name, w.stable_subset)
    routes = _http(vs)
    managed = _managed(routes, canary, vs)
    out: list[Obj] = []
    for index, route in enumerate(routes):
        if _is_added(route, name):
            continue
        if index == managed[0]:
            out += _added_routes(route, canary, name, w)
        out.append(_weighted_route(route, canary, w) if index in managed else route)
    return with_list(vs, "http", out)


def finalized_virtual_service(vs: Mapping[str, Any], canary: Canary, name: str, stable: str) -> Obj:
    """Every managed route to ``stable`` alone; the added routes removed."""
    routes = _http(vs)
    managed = _managed(routes, canary, vs)
    out: list[Obj] = []
    for index, route in enumerate(routes):
        if _is_added(route, name):
            continue
        if index in managed:
            route = _without_mirror(route, canary)
            route["route"] = [_destination(route, canary, stable, 100)]
        out.append(route)
    return with_list(vs, "http", out)


def virtual_service_weights(vs: Mapping[str, Any], canary: Canary, name: str) -> Weights:
    """The weights the first managed route holds now (what ``get_weights`` reports)."""
    routes = _http(vs)
    first = routes[_managed(routes, canary, vs)[0]]
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


def _http(vs: Mapping[str, Any]) -> list[Obj]:
    routes = vs.get("spec", {}).get("http")
    if not isinstance(routes, list) or not routes:
        raise ConfigError(f"VirtualService {qualified(vs)} has no HTTP routes to manage")
    return copy.deepcopy(routes)


def _managed(routes: Sequence[Obj], canary: Canary, vs: Mapping[str, Any]) -> tuple[int, ...]:
    target = canary.target
    where = f"VirtualService {qualified(vs)}"
    return managed_indexes(routes, target.host, target.routes, _hosts, where)


def _is_added(route: Mapping[str, Any], name: str) -> bool:
    return route.get("name") in {match_route_name(name), affinity_route_name(name)}


def _hosts(route: Mapping[str, Any]) -> list[str]:
    return [str(d.get("destination", {}).get("host", "")) for d in route.get("route", [])]


def _weighted_route(route: Obj, canary: Canary, w: Weights) -> Obj:
    route = _without_mirror(route, canary)
    stable = _destination(route, canary, w.stable_subset, 100 - w.canary)
    canary_dest = _destination(route, canary, canary.canary_subset(), w.canary)
    affinity = canary.strategy.session_affinity
    if affinity is not None and 0 < w.canary < 100:
        # The canary's answer sets the cookie; the affinity route keeps the user on the canary.
        canary_dest["headers"] = _set_cookie(canary)
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


def _set_cookie(canary: Canary) -> Obj:
    """The header operation that gives the user the affinity cookie (fresh ``Max-Age``)."""
    affinity = canary.strategy.session_affinity
    assert affinity is not None
    value = f"{affinity.cookie_name}={_cookie_value(canary)}"
    cookie = f"{value}; Max-Age={_seconds(affinity.max_age)}"
    return {"response": {"add": {"Set-Cookie": cookie}}}


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
    for written in _hosts(route):
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


def _added_routes(managed: Mapping[str, Any], canary: Canary, name: str, w: Weights) -> list[Obj]:
    """The affinity and A/B routes, each also requiring the managed route's own match."""
    theirs: list[Obj] = list(managed.get("match") or [{}])
    added: list[Obj] = []
    to_canary = [{"destination": {"host": canary.target.host, "subset": canary.canary_subset()}}]
    affinity = canary.strategy.session_affinity
    if affinity is not None and 0 < w.canary < 100:
        regex = f".*{affinity.cookie_name}={_cookie_value(canary)}.*"
        cookie: list[Obj] = [{"headers": {"cookie": {"regex": regex}}}]
        # Each answer refreshes the cookie: a user on the canary stays while they keep coming.
        held = [{**copy.deepcopy(to_canary[0]), "headers": _set_cookie(canary)}]
        added.append(
            {"name": affinity_route_name(name), "match": and_matches(theirs, cookie), "route": held}
        )
    if w.match and canary.match():
        ours = [match_json(m) for m in canary.match()]
        added.append(
            {
                "name": match_route_name(name),
                "match": and_matches(theirs, ours),
                "route": copy.deepcopy(to_canary),
            }
        )
    return added


def _seconds(duration: str) -> int:
    parsed = parse_duration(duration)
    return int((parsed or datetime.timedelta(days=1)).total_seconds())

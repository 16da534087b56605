"""A release group's routes: the ingress VirtualService that puts a slice of user sessions in
the canary, and each member's VirtualService that sends those sessions to its canary subset.
Pure: dicts in, new dicts out; the local and the cluster router apply what this returns.

How a session is in the slice (the mesh can do this with Istio's API alone, no app change
beyond propagating one header):

* The ingress's managed routes (``spec.target``: routes of the gateway VirtualService to
  ``target.host``) split between two copies of their destination. The canary copy, weighted
  ``setWeight``, sets the request header ``x-canarymesh-group: <Canary name>`` and answers with
  the cookie ``<cookieName>=<release>`` (``release`` names every member's canary subset, so a
  cookie of an earlier release holds nobody); the stable copy removes the header, so a client
  cannot put itself in the slice through the ingress.
* The session route ``canarymesh-<name>-session``, in front of the managed routes and ANDed
  with their match, sends a request carrying the cookie to the canary copy (refreshing it): a
  session that entered the slice stays in it while the ramp goes on.
* Each member's route ``canarymesh-<name>-group``, in front of its managed routes, sends a
  request carrying the header to the member's canary subset; its managed routes send the rest
  to the stable subset. The services copy the header onto their calls
  (:data:`bookinfo.common.propagation.FORWARDED_HEADERS`), so every service of one request
  sees the same slice: the users who see the new reviews see the new ratings.

Weights are :class:`~canarymesh.rollout.actions.Weights` of the group: ``canary`` is the slice's
percent, ``stable_subset`` is ``stable`` while the release runs and ``canary`` once promoted
(the machine's finalize), when the members' managed routes name their canary subsets alone and
the ingress is back as the user wrote it. At 0% (start, rollback) every added route is gone.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from canarymesh.api.canary import GROUP_HEADER, Canary, GroupMember, ReleaseGroup
from canarymesh.api.durations import parse_duration
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.managed import (
    ROUTE_PREFIX,
    Obj,
    and_matches,
    managed_indexes,
    qualified,
    short_host,
    with_list,
)
from canarymesh.routing.virtual_service import managed_virtual_service

__all__ = [
    "GROUP_HEADER",
    "cookie_name",
    "group_objects",
    "group_route_name",
    "group_stages",
    "group_weights",
    "ingress_virtual_service",
    "member_virtual_service",
    "release_value",
    "session_route_name",
]


def group_route_name(canary_name: str) -> str:
    return f"{ROUTE_PREFIX}{canary_name}-group"


def session_route_name(canary_name: str) -> str:
    return f"{ROUTE_PREFIX}{canary_name}-session"


def cookie_name(canary: Canary, canary_name: str) -> str:
    group = _group(canary)
    return group.cookie_name or f"canarymesh-group-{canary_name}"


def release_value(canary: Canary) -> str:
    """The cookie's value: every member's canary subset (``reviews.v3_ratings.v2``)."""
    return "_".join(f"{short_host(m.host)}.{m.canary_subset}" for m in _group(canary).members)


def promoted(canary: Canary, w: Weights) -> bool:
    return w.stable_subset == canary.canary_subset()


# --- the ingress -----------------------------------------------------------------------------


def ingress_virtual_service(vs: Mapping[str, Any], canary: Canary, name: str, w: Weights) -> Obj:
    """The gateway VirtualService with ``w.canary`` percent of sessions in the canary slice."""
    routes = _http(vs)
    managed = _managed(routes, canary.target.host, canary.target.routes, vs)
    percent = 0 if promoted(canary, w) else w.canary
    out: list[Obj] = []
    try:
        for index, route in enumerate(routes):
            if route.get("name") == session_route_name(name):
                continue
            if index == managed[0] and 0 < percent < 100:
                out.append(_session_route([routes[i] for i in managed], canary, name))
            out.append(_split_route(route, canary, name, percent) if index in managed else route)
    except ConfigError as err:
        raise ConfigError(f"VirtualService {qualified(vs)} (spec.target): {err}") from None
    return with_list(vs, "http", out)


def ingress_percent(vs: Mapping[str, Any], canary: Canary, name: str) -> int:
    """The slice's percent the first managed ingress route holds now."""
    routes = _http(vs)
    first = routes[_managed(routes, canary.target.host, canary.target.routes, vs)[0]]
    return sum(int(d.get("weight", 100)) for d in first.get("route", []) if _sets_header(d, name))


def _split_route(route: Obj, canary: Canary, name: str, percent: int) -> Obj:
    base = _base_destination(route)
    if percent == 0:
        route["route"] = [base]
        return route
    stable = _with_headers(base, {"request": {"remove": [GROUP_HEADER]}})
    stable["weight"] = 100 - percent
    in_slice = _with_headers(base, _slice_headers(canary, name))
    in_slice["weight"] = percent
    route["route"] = [stable, in_slice]
    return route


def _session_route(managed: Sequence[Obj], canary: Canary, name: str) -> Obj:
    """In front of the first managed route: a request with the slice's cookie that any managed
    route would take (their matches ORed, each ANDed with the cookie) stays in the slice."""
    cookie = f"{cookie_name(canary, name)}={release_value(canary)}"
    regex = f"^(.*?;\\s*)?{_regex_literal(cookie)}(;.*)?$"
    ours: list[Obj] = [{"headers": {"cookie": {"regex": regex}}}]
    held = _with_headers(_base_destination(managed[0]), _slice_headers(canary, name))
    return {
        "name": session_route_name(name),
        "match": and_matches(_matches_of(managed), ours),
        "route": [held],
    }


def _slice_headers(canary: Canary, name: str) -> Obj:
    group = _group(canary)
    cookie = (
        f"{cookie_name(canary, name)}={release_value(canary)}; "
        f"Max-Age={_seconds(group.max_age)}; Path=/"
    )
    return {"request": {"set": {GROUP_HEADER: name}}, "response": {"add": {"Set-Cookie": cookie}}}


def _base_destination(route: Mapping[str, Any]) -> Obj:
    """The managed route's destination as the user wrote it: ours stripped of weight and of
    the header operations this module adds. A route that splits between destinations of its
    own cannot be the way in (the slice would undo the user's split): a ConfigError."""
    written = list(route.get("route") or [])
    if not written:
        raise ConfigError(f"route {route.get('name', '?')!r} has no destination")
    bases = [_stripped(d) for d in written]
    if any(b != bases[0] for b in bases[1:]):
        raise ConfigError(
            f"the ingress route {route.get('name') or '(unnamed)'} splits between "
            f"{len(written)} destinations; a release group's way in must send to one"
        )
    return bases[0]


def _stripped(destination: Mapping[str, Any]) -> Obj:
    base = copy.deepcopy(dict(destination))
    base.pop("weight", None)
    headers = base.pop("headers", None) or {}
    request = dict(headers.get("request") or {})
    request["set"] = {k: v for k, v in (request.get("set") or {}).items() if k != GROUP_HEADER}
    request["remove"] = [h for h in request.get("remove") or [] if h != GROUP_HEADER]
    response = dict(headers.get("response") or {})
    added = {k: v for k, v in (response.get("add") or {}).items() if k != "Set-Cookie"}
    response["add"] = added
    kept = {
        side: {op: value for op, value in ops.items() if value}
        for side, ops in (("request", request), ("response", response))
    }
    kept = {side: ops for side, ops in kept.items() if ops}
    if kept:
        base["headers"] = kept
    return base


def _with_headers(destination: Obj, ours: Obj) -> Obj:
    out = copy.deepcopy(destination)
    headers = out.setdefault("headers", {})
    for side, ops in ours.items():
        theirs = headers.setdefault(side, {})
        for op, value in ops.items():
            if isinstance(value, list):
                theirs[op] = [*theirs.get(op, []), *value]
            else:
                theirs[op] = {**theirs.get(op, {}), **value}
    return out


def _sets_header(destination: Mapping[str, Any], name: str) -> bool:
    sets = (destination.get("headers") or {}).get("request", {}).get("set") or {}
    return sets.get(GROUP_HEADER) == name


# --- the members ------------------------------------------------------------------------------


def member_virtual_service(
    vs: Mapping[str, Any], canary: Canary, member: GroupMember, name: str, w: Weights
) -> Obj:
    """A member's VirtualService: its managed routes to the stable subset (to the canary subset
    once promoted) and, while the slice is open, the group route in front of them."""
    alone = member.as_canary()
    routes = [r for r in _http(vs) if r.get("name") != group_route_name(name)]
    cleaned = with_list(vs, "http", routes)
    if promoted(canary, w):
        return managed_virtual_service(cleaned, alone, name, Weights(0, member.canary_subset))
    out = managed_virtual_service(cleaned, alone, name, Weights(0, member.stable_subset))
    if w.canary == 0:
        return out
    written = _http(out)
    managed = _managed(written, member.host, member.routes, vs)
    group_route = _group_route([written[i] for i in managed], member, name)
    written.insert(managed[0], group_route)
    return with_list(out, "http", written)


def _group_route(managed: Sequence[Obj], member: GroupMember, name: str) -> Obj:
    """In front of the first managed route: the header to the canary subset, for a request any
    managed route would take (their matches ORed, each ANDed with the header)."""
    ours: list[Obj] = [{"headers": {GROUP_HEADER: {"exact": name}}}]
    theirs = _matches_of(managed)
    destination: Obj = {"host": _host_of(managed[0], member.host), "subset": member.canary_subset}
    port = _port_of(managed[0], member)
    if port is not None:
        destination["port"] = port
    return {
        "name": group_route_name(name),
        "match": and_matches(theirs, ours),
        "route": [{"destination": destination}],
    }


def member_state(vs: Mapping[str, Any], member: GroupMember, name: str) -> tuple[str, bool]:
    """Which subset a member's first managed route sends to (the heavier one), and whether its
    group route is there."""
    routes = _http(vs)
    first = routes[_managed(routes, member.host, member.routes, vs)[0]]
    by_subset: dict[str, int] = {}
    for dest in first.get("route", []):
        subset = str(dest.get("destination", {}).get("subset", ""))
        by_subset[subset] = by_subset.get(subset, 0) + int(dest.get("weight", 100))
    heaviest = max(by_subset, key=lambda s: (by_subset[s], s)) if by_subset else ""
    return heaviest, any(r.get("name") == group_route_name(name) for r in routes)


def group_weights(
    ingress: Mapping[str, Any],
    members: Sequence[tuple[GroupMember, Mapping[str, Any]]],
    canary: Canary,
    name: str,
) -> Weights:
    """The group's weights as its VirtualServices hold them: promoted when every member's
    managed route names its canary subset and the ingress splits nothing."""
    percent = ingress_percent(ingress, canary, name)
    states = [member_state(vs, member, name) for member, vs in members]
    finished = all(
        subset == member.canary_subset and not grouped
        for (member, _), (subset, grouped) in zip(members, states, strict=True)
    )
    if percent == 0 and members and finished:
        return Weights(0, canary.canary_subset())
    return Weights(percent, canary.stable_subset())


def group_objects(
    ingress: Mapping[str, Any],
    members: Sequence[tuple[GroupMember, Mapping[str, Any]]],
    canary: Canary,
    name: str,
    w: Weights,
) -> list[Obj]:
    """Every VirtualService of the group as ``w`` wants it, in the order to apply them (the
    two stages of :func:`group_stages`, one after the other)."""
    first, then = group_stages(ingress, members, canary, name, w)
    return [*first, *then]


def group_stages(
    ingress: Mapping[str, Any],
    members: Sequence[tuple[GroupMember, Mapping[str, Any]]],
    canary: Canary,
    name: str,
    w: Weights,
) -> tuple[list[Obj], list[Obj]]:
    """What to apply first and what once the proxies took it, so no request is half in the
    slice: the members first while the slice opens, widens or is promoted (their group routes,
    or their new stable subsets, are in place before the ingress sets or drops the header), the
    ingress first while it closes (no new session enters the slice while the members still
    serve it)."""
    written = [member_virtual_service(vs, canary, member, name, w) for member, vs in members]
    gate = ingress_virtual_service(ingress, canary, name, w)
    if w.canary > 0 or promoted(canary, w):
        return written, [gate]
    return [gate], written


# --- shared -----------------------------------------------------------------------------------


def _group(canary: Canary) -> ReleaseGroup:
    if canary.group is None:
        raise ConfigError("the Canary has no spec.group")
    return canary.group


def _http(vs: Mapping[str, Any]) -> list[Obj]:
    routes = vs.get("spec", {}).get("http")
    if not isinstance(routes, list) or not routes:
        raise ConfigError(f"VirtualService {qualified(vs)} has no HTTP routes to manage")
    return copy.deepcopy(routes)


def _managed(
    routes: Sequence[Obj], host: str, names: Sequence[str], vs: Mapping[str, Any]
) -> tuple[int, ...]:
    return managed_indexes(routes, host, names, _hosts, f"VirtualService {qualified(vs)}")


def _hosts(route: Mapping[str, Any]) -> list[str]:
    return [str(d.get("destination", {}).get("host", "")) for d in route.get("route", [])]


def _host_of(route: Mapping[str, Any], host: str) -> str:
    for written in _hosts(route):
        if short_host(written) == short_host(host):
            return written
    return host


def _port_of(route: Mapping[str, Any], member: GroupMember) -> Any:
    if member.port is not None:
        return {"number": member.port}
    for dest in route.get("route", []):
        port = dest.get("destination", {}).get("port")
        if port is not None:
            return copy.deepcopy(port)
    return None


def _matches_of(routes: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """The requests any of ``routes`` takes, as one ``match`` list (``[{}]``: every request)."""
    found: list[Obj] = []
    for route in routes:
        if not route.get("match"):
            return [{}]  # a catch-all route: ours alone decides
        found += list(route["match"])
    return found


def _regex_literal(text: str) -> str:
    # Names and subsets are DNS labels plus the writer's own ``=._``: only ``.`` is special.
    return text.replace(".", "\\.")


def _seconds(duration: str) -> int:
    parsed = parse_duration(duration)
    return int((parsed or datetime.timedelta(days=1)).total_seconds())

"""The managed routes of a Canary inside the user's VirtualService: which HTTP routes are ours
to change, how a :class:`~canarymesh.rollout.actions.Weights` is written into them, and how it
is read back. Pure (dicts in, dicts out); called by the local router
(:mod:`canarymesh.runtime.local.router`) and meant for the Kubernetes one too, so both write
the same YAML.

Rules:

* Managed routes are the HTTP routes named in ``target.routes``, or else every route whose
  destinations all point at ``target.host`` (short name, ``host.namespace`` or the FQDN) and
  that the controller did not add itself. A VirtualService without one is a ConfigError.
* Only ``route`` (the two subsets and their weights) and ``mirror``/``mirrorPercentage`` of a
  managed route change; its match, retries, timeouts and everything else stay the user's.
* The controller adds routes of its own in front of the first managed route, named
  ``canarymesh-<canary>-ab`` (the strategy's ``match`` to the canary) and
  ``canarymesh-<canary>-affinity`` (the session cookie to the canary); they are removed when
  no longer wanted and at :func:`finalized`.
* Session affinity (Flagger's): the canary's destination sets ``<cookie>=<canary name>`` on
  its answers, and the affinity route sends requests carrying it back to the canary (and
  refreshes the cookie). Our routes also keep the managed route's own match (ANDed), so a
  gateway route for ``/productpage`` never turns into one for every path.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from canarymesh.api.canary import Canary
from canarymesh.api.durations import parse_duration
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights

__all__ = ["finalized", "managed_indexes", "patched", "read_weights", "route_name"]

Json = dict[str, Any]
_PREFIX = "canarymesh-"


def route_name(canary_name: str, purpose: str) -> str:
    return f"{_PREFIX}{canary_name}-{purpose}"


def patched(vs: Mapping[str, Any], name: str, spec: Canary, weights: Weights) -> Json:
    """``vs`` with its managed routes carrying ``weights`` (plus the A/B and affinity routes)."""
    out, http, managed = _prepare(vs, name, spec)
    canary = spec.canary_subset()
    for index in managed:
        http[index] = _weighted(http[index], spec, weights, canary, name)
    extra: list[Json] = []
    if weights.match and spec.match():
        extra.append(_to_canary(route_name(name, "ab"), _matches(spec), http[managed[0]], spec))
    affinity = spec.strategy.session_affinity
    if affinity is not None and weights.canary > 0:
        match = [{"headers": {"cookie": {"regex": f".*{affinity.cookie_name}={name}.*"}}}]
        route = _to_canary(route_name(name, "affinity"), match, http[managed[0]], spec)
        route["route"][0]["headers"] = _set_cookie(affinity.cookie_name, affinity.max_age, name)
        extra.append(route)
    http[managed[0] : managed[0]] = extra
    out["spec"]["http"] = http
    return out


def finalized(vs: Mapping[str, Any], name: str, spec: Canary, stable_subset: str) -> Json:
    """``vs`` with its managed routes pointing at ``stable_subset`` alone, our routes removed."""
    out, http, managed = _prepare(vs, name, spec)
    for index in managed:
        route = dict(http[index])
        first = _destinations(route)[0]
        route["route"] = [{"destination": {**first, "subset": stable_subset}}]
        _drop_mirror(route, spec)
        http[index] = route
    out["spec"]["http"] = http
    return out


def read_weights(vs: Mapping[str, Any], name: str, spec: Canary) -> Weights:
    """The weights the managed routes hold (the first managed route speaks for all)."""
    _, http, managed = _prepare(vs, name, spec)
    route = http[managed[0]]
    items = route.get("route") or []
    subsets = [str((item.get("destination") or {}).get("subset")) for item in items]
    mirror = route.get("mirrorPercentage", {}).get("value", 100.0) if "mirror" in route else 0.0
    names = {r.get("name") for r in vs.get("spec", {}).get("http") or []}
    match = route_name(name, "ab") in names
    if len(items) == 1:  # one destination: all of it, whichever subset that is
        return Weights(0, subsets[0], float(mirror), match)
    canary = sum(
        int(i.get("weight", 0))
        for i, s in zip(items, subsets, strict=True)
        if s == spec.canary_subset()
    )
    others = [s for s in subsets if s != spec.canary_subset()]
    return Weights(canary, others[0] if others else spec.stable_subset(), float(mirror), match)


def managed_indexes(http: list[Json], spec: Canary) -> list[int]:
    """Indexes of the managed routes in ``http`` (ours excluded)."""
    named = set(spec.target.routes)
    found = []
    for index, route in enumerate(http):
        if str(route.get("name", "")).startswith(_PREFIX):
            continue
        if named:
            if route.get("name") in named:
                found.append(index)
        elif route.get("route") and all(_is_target(d, spec) for d in _destinations(route)):
            found.append(index)
    return found


def _prepare(vs: Mapping[str, Any], name: str, spec: Canary) -> tuple[Json, list[Json], list[int]]:
    out = copy.deepcopy(dict(vs))
    out.setdefault("spec", {})
    http = [r for r in out["spec"].get("http") or [] if not _ours(r, name)]
    managed = managed_indexes(http, spec)
    if not managed:
        meta = out.get("metadata", {})
        where = f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"
        wanted = f"named {', '.join(spec.target.routes)}" if spec.target.routes else "to it"
        raise ConfigError(
            f"VirtualService {where} has no HTTP route {wanted} for host {spec.target.host}: "
            "the Canary's target.virtualService must route its host"
        )
    return out, http, managed


def _ours(route: Mapping[str, Any], name: str) -> bool:
    return str(route.get("name", "")).startswith(f"{_PREFIX}{name}-")


def _destinations(route: Mapping[str, Any]) -> list[Json]:
    return [dict(item.get("destination") or {}) for item in route.get("route") or []]


def _is_target(destination: Mapping[str, Any], spec: Canary) -> bool:
    host = str(destination.get("host", ""))
    wanted = spec.target.host
    return host == wanted or host.split(".")[0] == wanted.split(".")[0]


def _weighted(route: Json, spec: Canary, weights: Weights, canary: str, name: str) -> Json:
    route = dict(route)
    first = _destinations(route)[0]
    stable_dest = {**first, "subset": weights.stable_subset}
    canary_dest: Json = {"destination": {**first, "subset": canary}, "weight": weights.canary}
    affinity = spec.strategy.session_affinity
    if affinity is not None and weights.canary > 0:
        canary_dest["headers"] = _set_cookie(affinity.cookie_name, affinity.max_age, name)
    route["route"] = [{"destination": stable_dest, "weight": 100 - weights.canary}, canary_dest]
    _drop_mirror(route, spec)
    if weights.mirror > 0:
        route["mirror"] = {**first, "subset": canary}
        route["mirrorPercentage"] = {"value": weights.mirror}
    return route


def _drop_mirror(route: Json, spec: Canary) -> None:
    mirror = route.get("mirror")
    if isinstance(mirror, dict) and _is_target(mirror, spec):
        route.pop("mirror", None)
        route.pop("mirrorPercentage", None)
        route.pop("mirrorPercent", None)


def _matches(spec: Canary) -> list[Json]:
    return [m.model_dump(by_alias=True, exclude_defaults=True, mode="json") for m in spec.match()]


def _to_canary(name: str, match: list[Json], template: Json, spec: Canary) -> Json:
    """A route of ours: requests matching ``match`` *and* the managed route's own match."""
    first = _destinations(template)[0]
    combined = []
    for theirs in template.get("match") or [{}]:
        for ours in match:
            merged = {**theirs, **ours}
            if "headers" in theirs and "headers" in ours:
                merged["headers"] = {**theirs["headers"], **ours["headers"]}
            combined.append(merged)
    destination = {**first, "subset": spec.canary_subset()}
    return {"name": name, "match": combined, "route": [{"destination": destination}]}


def _set_cookie(cookie: str, max_age: str, value: str) -> Json:
    """Header operations that give the client ``cookie=value`` (refreshed on every answer)."""
    age = parse_duration(max_age)
    seconds = int(age.total_seconds()) if age is not None else 86400
    return {"response": {"add": {"Set-Cookie": f"{cookie}={value}; Max-Age={seconds}"}}}

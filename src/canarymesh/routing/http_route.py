"""A rollout's weights in a Gateway API HTTPRoute: the weights of the managed rules'
``backendRefs``, a ``RequestMirror`` filter, and an A/B rule in front, under the rules of
:mod:`.managed`. Pure; the HTTPRoute counterpart of :mod:`.virtual_service`, used by
:class:`canarymesh.runtime.kube.router.KubeRouter`.

There are no subsets on Gateway API: a subset ``v3`` of host ``reviews`` is the Service
``reviews-v3``, as in Istio's Bookinfo (``bookinfo-versions.yaml``). Session affinity needs a
per-backend response header, which HTTPRoute cannot set, so it is refused.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from canarymesh.api.canary import Canary
from canarymesh.api.istio_networking import HTTPMatchRequest
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.managed import (
    Obj,
    managed_indexes,
    match_json,
    match_route_name,
    qualified,
    short_host,
    subset_service,
    with_list,
)

__all__ = ["finalized_http_route", "http_route_weights", "managed_http_route"]


def managed_http_route(route: Mapping[str, Any], canary: Canary, name: str, w: Weights) -> Obj:
    """``route`` with its managed rules giving the weights ``w``, the A/B rule in front."""
    if canary.strategy.session_affinity is not None:
        raise ConfigError(
            f"Canary {name}: sessionAffinity needs an Istio VirtualService; "
            f"HTTPRoute {qualified(route)} cannot set a cookie per backend"
        )
    if w.stable_subset == canary.canary_subset():
        return finalized_http_route(route, canary, name, w.stable_subset)
    rules = _rules(route)
    managed = _managed(rules, canary, route)
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
    return with_list(route, "rules", out)


def finalized_http_route(route: Mapping[str, Any], canary: Canary, name: str, stable: str) -> Obj:
    """Every managed rule to ``stable`` alone; the A/B rule removed."""
    rules = _rules(route)
    managed = _managed(rules, canary, route)
    out: list[Obj] = []
    for index, rule in enumerate(rules):
        if rule.get("name") == match_route_name(name):
            continue
        if index in managed:
            rule = _without_rule_mirror(rule, canary)
            rule["backendRefs"] = [_backend(rule, canary, stable, 100)]
        out.append(rule)
    return with_list(route, "rules", out)


def http_route_weights(route: Mapping[str, Any], canary: Canary, name: str) -> Weights:
    """The weights the first managed rule holds now (what ``get_weights`` reports)."""
    rules = _rules(route)
    first = rules[_managed(rules, canary, route)[0]]
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
    stable = stable_service.removeprefix(f"{short_host(host)}-")
    percent = 0.0
    for f in first.get("filters", []):
        mirror = f.get("requestMirror") or {}
        if mirror.get("backendRef", {}).get("name") == canary_service:
            percent = float(mirror.get("percent", 100))
    matched = any(r.get("name") == match_route_name(name) for r in rules)
    return Weights(canary_weight, stable, mirror=percent, match=matched)


def _rules(route: Mapping[str, Any]) -> list[Obj]:
    rules = route.get("spec", {}).get("rules")
    if not isinstance(rules, list) or not rules:
        raise ConfigError(f"HTTPRoute {qualified(route)} has no rules to manage")
    return copy.deepcopy(rules)


def _managed(rules: Sequence[Obj], canary: Canary, route: Mapping[str, Any]) -> tuple[int, ...]:
    target = canary.target
    where = f"HTTPRoute {qualified(route)}"
    return managed_indexes(rules, target.host, target.routes, _backend_names, where)


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
    """The A/B rule: the strategy's matches, each also requiring one of the managed rule's own
    (an HTTPRoute ORs its ``matches`` and ANDs the fields of one)."""
    ours = [_gateway_match(m, name) for m in canary.match()]
    matches = []
    for theirs in rule.get("matches") or [{}]:
        for extra in ours:
            merged = {**copy.deepcopy(theirs), **copy.deepcopy(extra)}
            if theirs.get("headers"):
                merged["headers"] = [*copy.deepcopy(theirs["headers"]), *extra["headers"]]
            matches.append(merged)
    backend = _backend(rule, canary, canary.canary_subset(), 100)
    backend.pop("weight")
    return {"name": match_route_name(name), "matches": matches, "backendRefs": [backend]}


def _gateway_match(match: HTTPMatchRequest, name: str) -> Obj:
    # Only header matches translate one to one (exact and regex); anything else would
    # silently change who sees the canary, so it is refused.
    data = match_json(match)
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

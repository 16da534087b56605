"""Which routes of a user's route object the controller owns, and the names of those it adds.

Rules, the same for a VirtualService's ``http`` routes and an HTTPRoute's ``rules``:

* Managed routes are those named in ``spec.target.routes`` (every name must exist), or else
  every route whose destinations are all ``target.host`` (short name, ``host.namespace`` or the
  FQDN: one Service) that the controller did not add itself. None is a ConfigError naming the
  object.
* Only the destinations (the two subsets and their weights) and the controller's own mirror of a
  managed route change; its match, retries, timeouts and everything else stay the user's.
* The controller adds routes of its own in front of the first managed route, named
  ``canarymesh-<canary>-affinity`` (the session cookie to the canary) and
  ``canarymesh-<canary>-match`` (the strategy's A/B ``match`` to the canary). Each keeps the
  managed route's own match too (ANDed): a gateway route for ``/productpage`` never becomes one
  for every path. They are replaced on every write and removed when no longer wanted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from canarymesh.api.istio_networking import HTTPMatchRequest
from canarymesh.errors import ConfigError

__all__ = [
    "ROUTE_PREFIX",
    "Obj",
    "affinity_route_name",
    "and_matches",
    "managed_indexes",
    "match_json",
    "match_route_name",
    "qualified",
    "short_host",
    "subset_service",
    "with_list",
]

Obj = dict[str, Any]
HostsOf = Callable[[Mapping[str, Any]], list[str]]
ROUTE_PREFIX = "canarymesh-"


def match_route_name(canary_name: str) -> str:
    return f"{ROUTE_PREFIX}{canary_name}-match"


def affinity_route_name(canary_name: str) -> str:
    return f"{ROUTE_PREFIX}{canary_name}-affinity"


def subset_service(host: str, subset: str) -> str:
    """The Service that plays a subset on Gateway API (``reviews`` + ``v3`` -> ``reviews-v3``)."""
    return f"{short_host(host)}-{subset}"


def short_host(host: str) -> str:
    return host.split(".", 1)[0]


def qualified(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata", {})
    return f"{metadata.get('namespace', 'default')}/{metadata.get('name', '?')}"


def match_json(match: HTTPMatchRequest) -> Obj:
    return match.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json")


def managed_indexes(
    routes: Sequence[Mapping[str, Any]],
    host: str,
    names: Sequence[str],
    hosts_of: HostsOf,
    where: str,
) -> tuple[int, ...]:
    """Indexes of the routes the controller may rewrite; ConfigError when there are none.

    ``host`` and ``names`` are the Canary's ``target.host`` and ``target.routes``; ``where``
    names the object in errors (``VirtualService webapps/reviews``)."""
    if names:
        found = {str(r.get("name")): i for i, r in enumerate(routes) if r.get("name") is not None}
        missing = [n for n in names if n not in found]
        if missing:
            raise ConfigError(
                f"{where}: spec.target.routes names routes that do not exist: {missing}"
            )
        return tuple(sorted(found[n] for n in names))
    indexes = tuple(
        i
        for i, route in enumerate(routes)
        # reviews, reviews.webapps, reviews.webapps.svc.cluster.local: one Service.
        if not str(route.get("name", "")).startswith(ROUTE_PREFIX)
        and (hosts := hosts_of(route))
        and all(short_host(h) == short_host(host) for h in hosts)
    )
    if not indexes:
        raise ConfigError(
            f"{where}: no route sends traffic only to {host!r}; name one in spec.target.routes"
        )
    return indexes


def with_list(obj: Mapping[str, Any], field: str, items: list[Obj]) -> Obj:
    """A deep copy of ``obj`` whose ``spec.<field>`` is ``items``."""
    out = copy.deepcopy(dict(obj))
    out["spec"] = {**out.get("spec", {}), field: items}
    return out


def and_matches(theirs: Sequence[Obj], ours: Sequence[Obj]) -> list[Obj]:
    """Matches that hold when one of ``theirs`` and one of ``ours`` both hold (Istio ORs the
    items of a ``match`` list and ANDs the fields of one item). Every result is a new object."""
    combined = []
    for mine in theirs:
        for extra in ours:
            merged = {**copy.deepcopy(mine), **copy.deepcopy(extra)}
            if "headers" in mine and "headers" in extra:
                merged["headers"] = copy.deepcopy({**mine["headers"], **extra["headers"]})
            combined.append(merged)
    return combined

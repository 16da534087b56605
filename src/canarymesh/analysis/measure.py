"""From Prometheus answers to a :class:`~canarymesh.analysis.windows.Window`: which queries one
window needs per version, and how their numbers become request counts. Pure; called by the
controller loop, which runs the queries through a ``MetricsSource``.

A window's counts are the counters' values at its end minus their values at its start
(:data:`COUNTER_QUERIES`, :func:`counts_between`), series by series, so consecutive windows tile
time exactly and a window can be as short as one scrape interval. A series that went down was
reset (its pod restarted): its value at the end is what it counted since. The older
``increase()`` queries (:data:`WINDOW_QUERIES`) extrapolate to the edges of their range, so their
answers are fractional and can be slightly inconsistent; :func:`counts_from` rounds and makes
counts consistent, in one place, instead of in every judge.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from canarymesh.analysis.queries import CONFIG_QUERIES, GROUP_QUERIES, render_query
from canarymesh.analysis.windows import Counts

__all__ = [
    "COUNTER_QUERIES",
    "WINDOW_QUERIES",
    "ConfigCounters",
    "Series",
    "counter_queries",
    "counts_between",
    "counts_from",
    "group_counter_queries",
    "promql_range",
    "window_queries",
]

WINDOW_QUERIES = ("request-count", "error-count", "duration-buckets")
COUNTER_QUERIES = ("request-counters", "error-counters", "duration-counters")
# One answer of a counter query: every series as (its labels, its value).
Series = tuple[tuple[tuple[tuple[str, str], ...], float], ...]


def promql_range(interval: datetime.timedelta) -> str:
    """A PromQL range for ``interval`` (whole seconds, at least one)."""
    return f"{max(1, round(interval.total_seconds()))}s"


def window_queries(host: str, version: str, interval: datetime.timedelta) -> Mapping[str, str]:
    """The PromQL of each query in :data:`WINDOW_QUERIES` for one version (``host`` is the FQDN)."""
    variables = {"host": host, "version": version, "interval": promql_range(interval)}
    return {name: render_query(name, variables) for name in WINDOW_QUERIES}


@dataclass(frozen=True)
class ConfigCounters:
    """Where a config canary's requests are counted: the runtime's families
    (:data:`~canarymesh.analysis.queries.CONFIG_QUERIES`), the Canary (``namespace/name``) and
    the reporter whose sidecars run the changed config."""

    runtime: Literal["local", "cluster"]
    canary: str
    reporter: Literal["source", "destination"]


def counter_queries(
    host: str, version: str, config: ConfigCounters | None = None
) -> Mapping[str, str]:
    """The PromQL of each query in :data:`COUNTER_QUERIES` for one version (``host``: FQDN), or,
    for a config canary, for one set of its sidecars (``version``: ``canary`` or ``stable``)."""
    if config is None:
        variables = {"host": host, "version": version}
        return {name: render_query(name, variables) for name in COUNTER_QUERIES}
    templates = CONFIG_QUERIES[config.runtime]
    variables = {
        "host": host,
        "version": version,
        "canary": config.canary,
        "reporter": config.reporter,
    }
    return {name: render_query(templates[name], variables) for name in COUNTER_QUERIES}


def group_counter_queries(host: str, group: str, *, in_slice: bool) -> Mapping[str, str]:
    """The queries of :data:`COUNTER_QUERIES` at a release group's ingress (``host``: FQDN),
    for the sessions in the slice of ``group`` (the Canary's name), or for every other one."""
    matcher = f'="{group}"' if in_slice else f'!="{group}"'
    variables = {"host": host, "slice": matcher}
    return {name: render_query(GROUP_QUERIES[name], variables) for name in COUNTER_QUERIES}


def counts_between(start: Mapping[str, Series], end: Mapping[str, Series]) -> Counts:
    """The counts between two readings of :data:`COUNTER_QUERIES` (a missing reading, or one
    without series, counts as nothing served)."""
    requests = _increase(start.get("request-counters", ()), end.get("request-counters", ()))
    errors = _increase(start.get("error-counters", ()), end.get("error-counters", ()))
    by_le: dict[str, float] = {}
    for labels, value in _increases(
        start.get("duration-counters", ()), end.get("duration-counters", ())
    ):
        le = dict(labels).get("le", "+Inf")
        by_le[le] = by_le.get(le, 0.0) + value
    return counts_from(requests, errors, by_le.items())


def _increases(start: Series, end: Series) -> list[tuple[tuple[tuple[str, str], ...], float]]:
    before = dict(start)
    out = []
    for labels, value in end:
        earlier = before.get(labels, 0.0)
        out.append((labels, value - earlier if value >= earlier else value))  # reset: since 0
    return out


def _increase(start: Series, end: Series) -> float:
    return sum(value for _, value in _increases(start, end))


def counts_from(
    requests: float | None, errors: float | None, buckets: Iterable[tuple[str, float]]
) -> Counts:
    """Counts from the three answers: ``buckets`` are ``(le label, value)`` pairs in any order.

    A missing answer (no series: nothing was served) counts as zero.
    """
    total = max(0, round(requests or 0.0))
    failed = min(max(0, round(errors or 0.0)), total)
    by_bound = sorted((_bound(le), value) for le, value in buckets)
    cumulative, running = [], 0
    for bound, value in by_bound:
        running = max(running, round(value))  # cumulative counts never decrease
        cumulative.append((bound, running))
    return Counts(total, failed, tuple(cumulative))


def _bound(le: str) -> float:
    if le in ("+Inf", "Inf", "inf"):
        return math.inf
    try:
        return float(le)
    except ValueError:
        raise ValueError(f"a histogram bucket bound must be a number, not le={le!r}") from None

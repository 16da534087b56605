"""From Prometheus answers to a :class:`~canarymesh.analysis.windows.Window`: which queries one
window needs per version, and how their numbers become request counts. Pure; called by the
controller loop, which runs the queries through a ``MetricsSource`` at the window's end.

``increase()`` extrapolates to the edges of its range, so its answers are fractional and can be
slightly inconsistent (a bucket above the total, errors above requests). Counts are rounded and
made consistent here, in one place, instead of in every judge.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Mapping

from canarymesh.analysis.queries import GROUP_QUERIES, render_query
from canarymesh.analysis.windows import Counts

__all__ = [
    "WINDOW_QUERIES",
    "counts_from",
    "group_window_queries",
    "promql_range",
    "window_queries",
]

WINDOW_QUERIES = ("request-count", "error-count", "duration-buckets")


def promql_range(interval: datetime.timedelta) -> str:
    """A PromQL range for ``interval`` (whole seconds, at least one)."""
    return f"{max(1, round(interval.total_seconds()))}s"


def window_queries(host: str, version: str, interval: datetime.timedelta) -> Mapping[str, str]:
    """The PromQL of each query in :data:`WINDOW_QUERIES` for one version (``host`` is the FQDN)."""
    variables = {"host": host, "version": version, "interval": promql_range(interval)}
    return {name: render_query(name, variables) for name in WINDOW_QUERIES}


def group_window_queries(
    host: str, group: str, interval: datetime.timedelta, *, in_slice: bool
) -> Mapping[str, str]:
    """The same three queries at a release group's ingress (``host``), for the sessions in the
    slice of the group ``group`` (the Canary's name), or for every other session."""
    matcher = f'="{group}"' if in_slice else f'!="{group}"'
    variables = {"host": host, "slice": matcher, "interval": promql_range(interval)}
    return {name: render_query(GROUP_QUERIES[name], variables) for name in WINDOW_QUERIES}


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

"""From the ports to an :class:`~canarymesh.rollout.machine.Observation`: which metric windows
are due, the PromQL each needs, and the :class:`~canarymesh.analysis.windows.Window` built from
the answers. Called by :mod:`canarymesh.controller.loop` once per reconcile of a rollout.

Windows follow the machine's rule "weights first, clock second": the first window of a split
starts when the router verified it (``state.verified_at``), each next one where the last judged
one ended (``state.analysed_until``), and each lasts one analysis interval. A window is measured
only once it ended :data:`SCRAPE_LAG` ago, so Prometheus has scraped its last requests.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from canarymesh.analysis.measure import counts_from, group_window_queries, window_queries
from canarymesh.analysis.queries import render_query
from canarymesh.analysis.windows import Counts, Window
from canarymesh.api.canary import BUILTIN_METRICS, Canary
from canarymesh.controller.wiring import CanaryItem
from canarymesh.ports import MetricsSource, Sample
from canarymesh.rollout.state import CanaryState

__all__ = ["MAX_WINDOWS", "SCRAPE_LAG", "due_windows", "fqdn", "measure", "subset_versions"]

# Scrape interval (1 s) plus the telemetry collector's flush, rounded up.
SCRAPE_LAG = datetime.timedelta(seconds=2)
MAX_WINDOWS = 10  # a controller that was down catches up at most this many windows per tick


def fqdn(host: str, namespace: str) -> str:
    """``reviews`` -> ``reviews.<namespace>.svc.cluster.local`` (as in ``destination_service``)."""
    if host.endswith(".svc.cluster.local"):
        return host
    parts = host.split(".")
    name, ns = parts[0], parts[1] if len(parts) > 1 else namespace
    return f"{name}.{ns}.svc.cluster.local"


def subset_versions(
    rules: Iterable[Mapping[str, Any]], canary: Canary, namespace: str
) -> tuple[tuple[str, str], ...]:
    """Each subset's ``version`` label, from the DestinationRules of the namespace: of the
    target host (by subset name), and of each release group member (``<short host>/<subset>``)."""
    hosts = [(fqdn(canary.target.host, namespace), "")]
    if canary.group is not None:
        hosts += [
            (fqdn(m.host, namespace), f"{m.host.split('.', 1)[0]}/") for m in canary.group.members
        ]
    found = []
    listed = list(rules)
    for host, prefix in hosts:
        for rule in listed:
            spec = rule.get("spec") or {}
            if fqdn(str(spec.get("host", "")), namespace) != host:
                continue
            for subset in spec.get("subsets") or []:
                version = (subset.get("labels") or {}).get("version")
                if version:
                    found.append((prefix + str(subset["name"]), str(version)))
    return tuple(found)


def due_windows(
    state: CanaryState, interval: datetime.timedelta, now: datetime.datetime
) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """The ``(start, end)`` of each complete window not judged yet, oldest first."""
    if state.verified_at is None:
        return []
    start = state.verified_at
    if state.analysed_until is not None and state.analysed_until > start:
        start = state.analysed_until
    found: list[tuple[datetime.datetime, datetime.datetime]] = []
    while start + interval <= now - SCRAPE_LAG and len(found) < MAX_WINDOWS:
        found.append((start, start + interval))
        start += interval
    return found


def measure(
    source: MetricsSource, item: CanaryItem, start: datetime.datetime, end: datetime.datetime
) -> Window:
    """Both versions' counts over ``[start, end)``, and the canary's custom metrics."""
    spec = item.canary
    host = fqdn(spec.target.host, item.namespace)
    if spec.group is not None:
        return _group_window(source, item, host, start, end)
    canary = _counts(source, host, item.version_of(spec.canary_subset()), start, end)
    stable = _counts(source, host, item.version_of(spec.stable_subset()), start, end)
    custom = tuple(
        (check.name, _custom(source, item, check.query or check.name, host, start, end))
        for check in spec.metric_checks()
        if check.query is not None or check.name not in BUILTIN_METRICS
    )
    return Window(start, end, canary, stable, custom)


def _group_window(
    source: MetricsSource,
    item: CanaryItem,
    ingress: str,
    start: datetime.datetime,
    end: datetime.datetime,
) -> Window:
    """A release group's window: the session slice against the rest at the ingress, and each
    member's canary subset against its stable one (every caller, like a one-service canary)."""
    assert item.canary.group is not None
    interval = end - start
    queries = group_window_queries(ingress, item.name, interval, in_slice=True)
    in_slice = _answers(source, queries, end)
    queries = group_window_queries(ingress, item.name, interval, in_slice=False)
    rest = _answers(source, queries, end)
    scopes = []
    for member in item.canary.group.members:
        host = fqdn(member.host, item.namespace)
        canary = item.member_version(member.host, member.canary_subset)
        stable = item.member_version(member.host, member.stable_subset)
        scopes.append(
            (
                member.host.split(".", 1)[0],
                Window(
                    start,
                    end,
                    _counts(source, host, canary, start, end),
                    _counts(source, host, stable, start, end),
                ),
            )
        )
    return Window(start, end, in_slice, rest, scopes=tuple(scopes))


def _counts(
    source: MetricsSource,
    host: str,
    version: str,
    start: datetime.datetime,
    end: datetime.datetime,
) -> Counts:
    return _answers(source, window_queries(host, version, end - start), end)


def _answers(source: MetricsSource, queries: Mapping[str, str], end: datetime.datetime) -> Counts:
    requests = _scalar(source.query(queries["request-count"], end))
    errors = _scalar(source.query(queries["error-count"], end))
    buckets = [
        (dict(s.labels).get("le", "+Inf"), s.value)
        for s in source.query(queries["duration-buckets"], end)
    ]
    return counts_from(requests, errors, buckets)


def _custom(
    source: MetricsSource,
    item: CanaryItem,
    template: str,
    host: str,
    start: datetime.datetime,
    end: datetime.datetime,
) -> float | None:
    seconds = max(1, round((end - start).total_seconds()))
    variables = {
        "namespace": item.namespace,
        "host": host,
        "version": item.version_of(item.canary.canary_subset()),
        "interval": f"{seconds}s",
    }
    return _scalar(source.query(render_query(template, variables), end))


def _scalar(samples: tuple[Sample, ...]) -> float | None:
    numbers = [s.value for s in samples if s.value == s.value]  # NaN: no data
    return sum(numbers) if numbers else None

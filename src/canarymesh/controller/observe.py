"""From the ports to an :class:`~canarymesh.rollout.machine.Observation`: which metric windows
are due, the PromQL each needs, the :class:`~canarymesh.analysis.windows.Window` built from the
answers, and the stable's traffic before the rollout. Called by :mod:`canarymesh.controller.loop`
once per reconcile of a rollout.

Windows follow the machine's rule "weights first, clock second": the first window starts when
the router verified the weights (``state.verified_at``), each next one where the last judged one
ended (``state.analysed_until``), so windows tile time and no request is judged twice or never.
The threshold judge starts again at each new split (a rate must belong to one); the statistical
judge compares counts and goes on across weight changes. A window ends :data:`SCRAPE_LAG` before
now, so the counters' reading at its end is one Prometheus has already ingested (a request
scraped a little later is counted in the next window, whose start reading is this window's end
reading: nothing is lost or counted twice). The statistical judge reads every window that is
at least :data:`MIN_WINDOW` long (the loop looks every second, so a second); the threshold judge
reads windows of one analysis interval, as Flagger checks a rate over its interval. A window's
counts are the counters at its end minus those at its start
(:func:`canarymesh.analysis.measure.counts_between`), so any length down to one scrape interval
is exact; custom metrics are queried over the trailing interval, once per interval.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from canarymesh.analysis.baseline import Baseline
from canarymesh.analysis.measure import (
    Series,
    counter_queries,
    counts_between,
    group_counter_queries,
)
from canarymesh.analysis.queries import render_query
from canarymesh.analysis.windows import Counts, Window
from canarymesh.api.canary import BUILTIN_METRICS, Canary
from canarymesh.controller.wiring import CanaryItem
from canarymesh.ports import MetricsSource, Sample
from canarymesh.rollout.state import CanaryState

__all__ = [
    "MAX_WINDOWS",
    "MIN_WINDOW",
    "SCRAPE_LAG",
    "Readings",
    "due_windows",
    "fqdn",
    "measure",
    "measure_baseline",
    "subset_versions",
]

# One scrape interval of the local Prometheus: the reading at a window's end is final.
SCRAPE_LAG = datetime.timedelta(seconds=1)
# The shortest window the statistical judge reads: the local Prometheus' scrape interval.
MIN_WINDOW = datetime.timedelta(seconds=1)
MAX_WINDOWS = 10  # a controller that was down catches up at most this many windows per tick
# Counter readings kept between ticks: (promql, time) -> series. A window starts where the last
# one ended, so each reading is used twice; the loop keeps one of these per controller.
Readings = dict[tuple[str, datetime.datetime], Series]
_KEEP = 64


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
    state: CanaryState, spec: Canary, now: datetime.datetime
) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """The ``(start, end)`` of each complete window not judged yet, oldest first."""
    end = now - SCRAPE_LAG
    if spec.analysis.judge == "statistical":
        start = state.analysed_until or state.verified_at
        return [(start, end)] if start is not None and end - start >= MIN_WINDOW else []
    if state.verified_at is None:
        return []
    start = state.verified_at
    if state.analysed_until is not None and state.analysed_until > start:
        start = state.analysed_until
    interval = spec.interval()
    found: list[tuple[datetime.datetime, datetime.datetime]] = []
    while start + interval <= end and len(found) < MAX_WINDOWS:
        found.append((start, start + interval))
        start += interval
    return found


def custom_due(state: CanaryState, spec: Canary, end: datetime.datetime) -> bool:
    """Whether a statistical rollout's custom metrics are due at ``end`` (once an interval)."""
    if spec.analysis.judge != "statistical":
        return True
    since = state.checked_until or state.verified_at
    return since is None or end - since >= spec.interval()


def measure(
    source: MetricsSource,
    item: CanaryItem,
    start: datetime.datetime,
    end: datetime.datetime,
    readings: Readings | None = None,
    custom: bool = True,
) -> Window:
    """Both versions' counts over ``[start, end)``, and (``custom``) the canary's custom
    metrics over the analysis interval that ends at ``end``."""
    spec = item.canary
    host = fqdn(spec.target.host, item.namespace)
    readings = readings if readings is not None else {}
    if spec.group is not None:
        window = _group_window(source, item, host, start, end, readings)
        _forget(readings, start)
        return window
    canary = _counts(source, item, host, spec.canary_subset(), start, end, readings)
    stable = _counts(source, item, host, spec.stable_subset(), start, end, readings)
    values: tuple[tuple[str, float | None], ...] = ()
    if custom:
        span = spec.interval()
        if spec.analysis.judge == "threshold":
            span = min(end - start, span)  # a Flagger check: the window's own rate
        values = tuple(
            (check.name, _custom(source, item, check.query or check.name, host, span, end))
            for check in spec.metric_checks()
            if check.query is not None or check.name not in BUILTIN_METRICS
        )
    _forget(readings, start)
    return Window(start, end, canary, stable, values)


def measure_baseline(source: MetricsSource, item: CanaryItem, now: datetime.datetime) -> Baseline:
    """The stable's traffic over the spec's ``analysis.history`` before ``now``."""
    spec = item.canary
    history = spec.history()
    if history <= datetime.timedelta(0):
        return Baseline.empty()
    end = now - SCRAPE_LAG
    start = end - history
    host = fqdn(spec.target.host, item.namespace)
    if spec.group is not None:  # the ingress's sessions, none of them in the slice yet
        queries = group_counter_queries(host, item.name, in_slice=False)
        counts = _between(source, queries, start, end, {})
    else:
        counts = _counts(source, item, host, spec.stable_subset(), start, end, {})
    return Baseline(history.total_seconds(), counts)


def _group_window(
    source: MetricsSource,
    item: CanaryItem,
    ingress: str,
    start: datetime.datetime,
    end: datetime.datetime,
    readings: Readings,
) -> Window:
    """A release group's window: the session slice against the rest at the ingress, and each
    member's canary subset against its stable one (every caller, like a one-service canary)."""
    assert item.canary.group is not None
    in_slice = _between(
        source, group_counter_queries(ingress, item.name, in_slice=True), start, end, readings
    )
    rest = _between(
        source, group_counter_queries(ingress, item.name, in_slice=False), start, end, readings
    )
    scopes = []
    for member in item.canary.group.members:
        host = fqdn(member.host, item.namespace)
        canary = counter_queries(host, item.member_version(member.host, member.canary_subset))
        stable = counter_queries(host, item.member_version(member.host, member.stable_subset))
        part = Window(
            start,
            end,
            _between(source, canary, start, end, readings),
            _between(source, stable, start, end, readings),
        )
        scopes.append((member.host.split(".", 1)[0], part))
    return Window(start, end, in_slice, rest, scopes=tuple(scopes))


def _counts(
    source: MetricsSource,
    item: CanaryItem,
    host: str,
    subset: str,
    start: datetime.datetime,
    end: datetime.datetime,
    readings: Readings,
) -> Counts:
    queries = counter_queries(host, item.version_of(subset), item.config)
    return _between(source, queries, start, end, readings)


def _between(
    source: MetricsSource,
    queries: Mapping[str, str],
    start: datetime.datetime,
    end: datetime.datetime,
    readings: Readings,
) -> Counts:
    return counts_between(
        {name: _reading(source, promql, start, readings) for name, promql in queries.items()},
        {name: _reading(source, promql, end, readings) for name, promql in queries.items()},
    )


def _reading(
    source: MetricsSource, promql: str, at: datetime.datetime, readings: Readings
) -> Series:
    key = (promql, at)
    if key not in readings:
        answer = source.query(promql, at)
        readings[key] = tuple((s.labels, s.value) for s in answer if s.value == s.value)
    return readings[key]


def _forget(readings: Readings, before: datetime.datetime) -> None:
    """Drop readings older than ``before`` (the next window starts at the end of this one)."""
    if len(readings) > _KEEP:
        for key in [k for k in readings if k[1] < before]:
            del readings[key]


def _custom(
    source: MetricsSource,
    item: CanaryItem,
    template: str,
    host: str,
    span: datetime.timedelta,
    end: datetime.datetime,
) -> float | None:
    seconds = max(1, round(span.total_seconds()))
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

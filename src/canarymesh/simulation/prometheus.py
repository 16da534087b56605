"""A Prometheus that answers the controller's own PromQL from :mod:`.traffic`: the
``MetricsSource`` port of :mod:`canarymesh.ports`, for simulated rollouts.

It knows Istio's two series the canary analysis reads, ``istio_requests_total`` (one series per
version and response code, 200 or 503) and ``istio_request_duration_milliseconds_bucket`` (one per
version and ``le``), all with ``reporter="destination"`` and the service's FQDN, and the shapes of
query the controller sends: a selector (an instant counter value), ``increase(selector[Ns])``,
either one under ``sum`` or ``sum by (le)``. Anything else is a ``ValueError``, so a change of the
controller's queries cannot go unnoticed by the simulation.

Timing is a real Prometheus' with a 1 s scrape interval: a sample is scraped at every whole
second and holds the counts of every second before it, so a query at ``t`` sees the requests
served up to the last whole second; ``increase`` extrapolates to the edges of its range as
Prometheus does.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from canarymesh.ports import Sample
from canarymesh.simulation.traffic import DURATION_BUCKETS, Side, SimulatedTraffic

__all__ = ["SimulatedPrometheus"]

_QUERY = re.compile(
    r"\s*(?P<agg>sum(?:\s+by\s*\((?P<by>[\w\s,]*)\))?)?\s*\(?\s*"
    r"(?P<increase>increase\()?\s*(?P<metric>[a-z_]+)\{(?P<labels>[^}]*)\}"
    r"(?:\[(?P<range>\d+)s\])?\s*\)?\s*\)?\s*"
)
_MATCHER = re.compile(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds_bucket"
_LE = (*(f"{b:g}" for b in DURATION_BUCKETS), "+Inf")
# Cumulative (requests, errors, requests at or below each le) of the seconds before a scrape.
_Cum = tuple[int, int, tuple[int, ...]]
_ZERO: _Cum = (0, 0, (0,) * len(_LE))
_Series = tuple[tuple[tuple[str, str], ...], "Callable[[_Cum], int]"]


@dataclass(frozen=True, slots=True)
class _Query:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]
    by_le: bool
    summed: bool
    range_s: int | None


@lru_cache(maxsize=512)
def _parse(promql: str) -> _Query:
    found = _QUERY.fullmatch(promql)
    if found is None or found["metric"] not in (REQUESTS, DURATION):
        raise ValueError(f"the simulated Prometheus cannot answer {promql!r}")
    by = (found["by"] or "").replace(" ", "")
    if by not in ("", "le") or bool(found["increase"]) != bool(found["range"]):
        raise ValueError(f"the simulated Prometheus cannot answer {promql!r}")
    matchers = tuple(
        (m.group(1), m.group(2), m.group(3)) for m in _MATCHER.finditer(found["labels"])
    )
    summed = found["agg"] is not None
    range_s = int(found["range"]) if found["range"] else None
    return _Query(found["metric"], matchers, by == "le", summed, range_s)


class SimulatedPrometheus:
    """Answers queries about ``traffic``; ``host`` is the service's FQDN, ``versions`` the
    ``version`` label of the stable and canary pods."""

    def __init__(
        self,
        traffic: SimulatedTraffic,
        host: str,
        versions: Mapping[Side, str],
        epoch: datetime.datetime,
    ) -> None:
        self.traffic = traffic
        self.host = host
        self.versions = versions
        self.epoch = epoch  # the time of second 0
        self.online = True
        self._cumulative: dict[Side, list[_Cum]] = {"stable": [_ZERO], "canary": [_ZERO]}
        self._matched: dict[str, list[tuple[Side, list[_Series]]]] = {}

    def is_online(self) -> bool:
        return self.online

    def query(self, promql: str, at: datetime.datetime) -> tuple[Sample, ...]:
        parsed = _parse(promql)
        seconds = (at - self.epoch).total_seconds()
        series: list[Sample] = []
        for side, matched in self._matching(promql, parsed):
            span = self._span(parsed, side, seconds)
            if span is None:
                continue
            end, start, scale = span
            for labels, pick in matched:
                series.append(Sample(labels, (pick(end) - pick(start)) * scale))
        if not parsed.summed:
            return tuple(series)
        return _sum(series, parsed.by_le)

    def _matching(self, promql: str, query: _Query) -> list[tuple[Side, list[_Series]]]:
        """Each side's series that ``query`` selects (worked out once per query text)."""
        found = self._matched.get(promql)
        if found is None:
            found = []
            for side, version in self.versions.items():
                base = {"reporter": "destination", "destination_service": self.host,
                        "destination_version": version}  # fmt: skip
                found.append(
                    (side, [
                        (tuple(sorted(labels.items())), pick)
                        for labels, pick in _all_series(query.metric, base)
                        if _matches(query.matchers, labels)
                    ])
                )  # fmt: skip
            self._matched[promql] = found
        return found

    # --- series ----------------------------------------------------------------------------

    def _span(self, query: _Query, side: Side, seconds: float) -> tuple[_Cum, _Cum, float] | None:
        """The cumulative counts at the end and the start of the query, and the factor that
        extrapolates their difference (an instant query: the start is nothing, the factor 1)."""
        last = math.floor(seconds)  # the last scrape at or before the query time
        if last < 1:
            return None
        end = self._at(side, last)
        if query.range_s is None:
            return end, _ZERO, 1.0
        first = math.floor(seconds - query.range_s) + 1  # the first scrape inside the range
        if last - first < 1:
            return None  # fewer than two samples: Prometheus answers nothing
        start = self._at(side, max(first, 0))
        return end, start, query.range_s / (last - first)  # extrapolated to the range's edges

    def _at(self, side: Side, scrape: int) -> _Cum:
        """Cumulative (requests, errors, buckets) of every second before ``scrape``."""
        self.traffic.generate_until(scrape)
        cumulative = self._cumulative[side]
        seconds = self.traffic.seconds[side]
        while len(cumulative) <= scrape:
            requests, errors, buckets = cumulative[-1]
            counts = seconds[len(cumulative) - 1]
            running, summed = 0, []
            for previous, count in zip(buckets, counts.buckets, strict=True):
                running += count
                summed.append(previous + running)
            cumulative.append((requests + counts.requests, errors + counts.errors, tuple(summed)))
        return cumulative[scrape]


def _all_series(
    metric: str, base: dict[str, str]
) -> list[tuple[dict[str, str], Callable[[_Cum], int]]]:
    """Every series of ``metric`` for one version, and how to read it from cumulative counts."""
    if metric == REQUESTS:
        return [
            ({**base, "response_code": "200"}, lambda c: c[0] - c[1]),
            ({**base, "response_code": "503"}, lambda c: c[1]),
        ]
    return [({**base, "le": le}, _bucket(i)) for i, le in enumerate(_LE)]


def _bucket(index: int) -> Callable[[_Cum], int]:
    return lambda c: c[2][index]


def _matches(matchers: tuple[tuple[str, str, str], ...], labels: dict[str, str]) -> bool:
    for name, op, expected in matchers:
        value = labels.get(name, "")
        if op == "=" and value != expected:
            return False
        if op == "!=" and value == expected:
            return False
        if op == "=~" and re.fullmatch(expected, value) is None:
            return False
        if op == "!~" and re.fullmatch(expected, value) is not None:
            return False
    return True


def _sum(series: list[Sample], by_le: bool) -> tuple[Sample, ...]:
    if not series:
        return ()
    if not by_le:
        return (Sample((), sum(s.value for s in series)),)
    totals: dict[str, float] = {}
    for sample in series:
        le = sample.label("le") or ""
        totals[le] = totals.get(le, 0.0) + sample.value
    return tuple(Sample((("le", le),), value) for le, value in totals.items())

"""The service view (Grafana's Istio service dashboard): ``service_view(...) -> ServiceView``. Pure.

Called by the dashboard's ``/api/service`` with the ``data`` of range queries named after the
panel queries of :mod:`canarymesh.analysis.panels` (``version-request-rate``,
``version-success-rate``, ``version-p50``, ``version-p90``, ``version-p99``). One row per version
with its series over time and its latest values; the traffic split is each version's share of the
latest request rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from canarymesh.views.promjson import Point, finite, matrix

__all__ = ["SERIES", "ServiceView", "VersionRow", "service_view"]

# query name -> the VersionRow field its series fill
SERIES = {
    "version-request-rate": "rps",
    "version-success-rate": "success",
    "version-p50": "p50",
    "version-p90": "p90",
    "version-p99": "p99",
}
OptionalPoint = tuple[float, float | None]


@dataclass(frozen=True, slots=True)
class VersionRow:
    version: str
    share_pct: float
    rps: tuple[OptionalPoint, ...]
    success: tuple[OptionalPoint, ...]
    p50: tuple[OptionalPoint, ...]
    p90: tuple[OptionalPoint, ...]
    p99: tuple[OptionalPoint, ...]
    latest: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class ServiceView:
    service: str
    window: str
    versions: tuple[VersionRow, ...]
    total_rps: float | None


def _clean(points: tuple[Point, ...], scale: float = 1.0) -> tuple[OptionalPoint, ...]:
    return tuple((t, None if (f := finite(v)) is None else f * scale) for t, v in points)


def _latest(points: tuple[OptionalPoint, ...]) -> float | None:
    for _, value in reversed(points):
        if value is not None:
            return value
    return None


def service_view(
    service: str, window: str, results: Mapping[str, Mapping[str, object]]
) -> ServiceView:
    """``results`` maps each name of :data:`SERIES` to its range query's ``data``."""
    missing = sorted(set(SERIES) - set(results))
    if missing:
        raise KeyError(f"service view needs the results of {', '.join(missing)}")
    by_version: dict[str, dict[str, tuple[OptionalPoint, ...]]] = {}
    for query, field in SERIES.items():
        # Success is a ratio in Prometheus and a percentage on screen.
        scale = 100.0 if field == "success" else 1.0
        for series in matrix(results[query]):
            version = series.labels.get("destination_version") or "unknown"
            by_version.setdefault(version, {})[field] = _clean(series.points, scale)
    latest_rps = {v: _latest(f.get("rps", ())) or 0.0 for v, f in by_version.items()}
    total = sum(latest_rps.values())
    rows = []
    for version in sorted(by_version):
        fields = by_version[version]
        rows.append(
            VersionRow(
                version=version,
                share_pct=100.0 * latest_rps[version] / total if total > 0 else 0.0,
                rps=fields.get("rps", ()),
                success=fields.get("success", ()),
                p50=fields.get("p50", ()),
                p90=fields.get("p90", ()),
                p99=fields.get("p99", ()),
                latest={f: _latest(fields.get(f, ())) for f in SERIES.values()},
            )
        )
    return ServiceView(service, window, tuple(rows), total if by_version else None)

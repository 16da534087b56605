"""Prometheus' ``/api/v1/query`` and ``/api/v1/query_range`` answers as typed series. Pure.

Called by the mesh-graph and service view models; they take the ``data`` object of Prometheus'
JSON (``{"resultType": ..., "result": [...]}``) so that the dashboard, the tests' canned answers
and a cluster's Prometheus all feed them the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from canarymesh.errors import ConfigError

__all__ = ["Point", "Series", "finite", "instant", "matrix"]

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Series:
    labels: Mapping[str, str]
    points: tuple[Point, ...]

    @property
    def last(self) -> float:
        return self.points[-1][1] if self.points else math.nan


def finite(value: float) -> float | None:
    """None for NaN and infinities (JSON has neither; a quantile over no requests is NaN)."""
    return value if math.isfinite(value) else None


def _result(data: Mapping[str, object], kind: str) -> list[dict[str, object]]:
    if data.get("resultType") != kind or not isinstance(data.get("result"), list):
        raise ConfigError(f"expected a Prometheus {kind} result, got {data.get('resultType')!r}")
    return cast(list[dict[str, object]], data["result"])


def _point(pair: object) -> Point:
    timestamp, value = cast(list[object], pair)
    return float(cast(float, timestamp)), float(cast(str, value))


def instant(data: Mapping[str, object]) -> list[Series]:
    """An instant vector: one point per series."""
    return [
        Series(cast(dict[str, str], s.get("metric", {})), (_point(s["value"]),))
        for s in _result(data, "vector")
    ]


def matrix(data: Mapping[str, object]) -> list[Series]:
    """A range query's matrix: points in time order."""
    return [
        Series(
            cast(dict[str, str], s.get("metric", {})),
            tuple(_point(p) for p in cast(list[object], s.get("values", []))),
        )
        for s in _result(data, "matrix")
    ]

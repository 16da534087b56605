"""Verdicts: what a judge concluded about one metric, and why, in words with the numbers. Pure.

Produced by :mod:`canarymesh.analysis.threshold` and :mod:`canarymesh.analysis.statistical`,
combined here, and read by :mod:`canarymesh.rollout.machine`, which turns the worst verdict
into the next step (or a rollback) and quotes its reason.

"Not enough data yet" is a phase of its own (``NO_DATA``, ``INCONCLUSIVE``): it never passes a
step and never counts as a failure (Argo Rollouts' Inconclusive, Kayenta's Nodata); the rollout
holds, and the progress deadline bounds how long.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Explanation", "MetricVerdict", "VerdictPhase", "worst"]


class VerdictPhase(enum.Enum):
    """Ordered from best to worst; :func:`worst` picks the last of a set."""

    SUCCESSFUL = "Successful"  # the canary met the check for this window / so far
    INCONCLUSIVE = "Inconclusive"  # data, but too little to tell yet
    NO_DATA = "NoData"  # the canary (or stable) served no request in the window
    ERROR = "Error"  # the metric could not be read (Prometheus down, bad query)
    FAILED = "Failed"  # the canary is worse: a failed check, or a sequential rejection


_ORDER = {phase: rank for rank, phase in enumerate(VerdictPhase)}


@dataclass(frozen=True, slots=True)
class Explanation:
    """What a statistical verdict rests on, as numbers a person can check.

    Counts are of the rollout (``stable_before``: the stable's requests before it, which the
    judge also learnt from); ``bad`` means failed (5xx) or, for latency, slower than
    ``canary_bound_ms`` (canary) and ``stable_bound_ms`` (stable). ``ratio``: the canary's rate
    of bad requests over the stable's, with an always-valid ``confidence`` interval
    (``ratio_low``, ``ratio_high``; infinity: not bounded yet). ``p_value`` is always valid (it
    stays valid however often it is looked at); the metric fails below ``alpha``. ``settle``:
    for an Inconclusive verdict, what more data would settle it.
    """

    canary_requests: int
    canary_bad: int
    stable_requests: int
    stable_bad: int
    stable_before: int
    ratio: float | None
    ratio_low: float
    ratio_high: float
    confidence: float
    p_value: float
    alpha: float
    tolerance: float
    effect_size: float
    canary_bound_ms: float | None = None
    stable_bound_ms: float | None = None
    settle: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "canary": {"requests": self.canary_requests, "bad": self.canary_bad},
            "stable": {
                "requests": self.stable_requests,
                "bad": self.stable_bad,
                "before": self.stable_before,
            },
            "ratio": self.ratio,
            "interval": [self.ratio_low, _json_float(self.ratio_high)],
            "confidence": self.confidence,
            "pValue": self.p_value,
            "alpha": self.alpha,
            "tolerance": self.tolerance,
            "effectSize": self.effect_size,
            "boundsMs": {"canary": self.canary_bound_ms, "stable": self.stable_bound_ms},
            "settle": self.settle,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Explanation:
        return Explanation(
            canary_requests=int(data["canary"]["requests"]),
            canary_bad=int(data["canary"]["bad"]),
            stable_requests=int(data["stable"]["requests"]),
            stable_bad=int(data["stable"]["bad"]),
            stable_before=int(data["stable"]["before"]),
            ratio=None if data["ratio"] is None else float(data["ratio"]),
            ratio_low=float(data["interval"][0]),
            ratio_high=_float(data["interval"][1]),
            confidence=float(data["confidence"]),
            p_value=float(data["pValue"]),
            alpha=float(data["alpha"]),
            tolerance=float(data["tolerance"]),
            effect_size=float(data["effectSize"]),
            canary_bound_ms=data["boundsMs"]["canary"],
            stable_bound_ms=data["boundsMs"]["stable"],
            settle=str(data["settle"]),
        )


@dataclass(frozen=True, slots=True)
class MetricVerdict:
    """One metric's verdict; ``reason`` is a sentence with the query, values, samples, limit;
    ``explanation`` (statistical judge) the numbers behind it."""

    metric: str
    phase: VerdictPhase
    reason: str
    canary_value: float | None = None
    stable_value: float | None = None
    samples: int = 0
    p_value: float | None = None
    explanation: Explanation | None = None


def worst(verdicts: Iterable[MetricVerdict]) -> MetricVerdict | None:
    """The most serious verdict (Failed > Error > NoData > Inconclusive > Successful); the
    first of equally serious ones."""
    return max(verdicts, key=lambda v: _ORDER[v.phase], default=None)


def _json_float(value: float) -> float | str:
    return "+Inf" if math.isinf(value) else value


def _float(value: object) -> float:
    if value == "+Inf":
        return math.inf
    if not isinstance(value, int | float):
        raise ValueError(f"expected a number, not {value!r}")
    return float(value)

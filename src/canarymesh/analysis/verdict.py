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
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MetricVerdict", "VerdictPhase", "worst"]


class VerdictPhase(enum.Enum):
    """Ordered from best to worst; :func:`worst` picks the last of a set."""

    SUCCESSFUL = "Successful"  # the canary met the check for this window / so far
    INCONCLUSIVE = "Inconclusive"  # data, but too little to tell yet
    NO_DATA = "NoData"  # the canary (or stable) served no request in the window
    ERROR = "Error"  # the metric could not be read (Prometheus down, bad query)
    FAILED = "Failed"  # the canary is worse: a failed check, or a sequential rejection


_ORDER = {phase: rank for rank, phase in enumerate(VerdictPhase)}


@dataclass(frozen=True, slots=True)
class MetricVerdict:
    """One metric's verdict; ``reason`` is a sentence with the query, values, samples, limit."""

    metric: str
    phase: VerdictPhase
    reason: str
    canary_value: float | None = None
    stable_value: float | None = None
    samples: int = 0
    p_value: float | None = None


def worst(verdicts: Iterable[MetricVerdict]) -> MetricVerdict | None:
    """The most serious verdict (Failed > Error > NoData > Inconclusive > Successful); the
    first of equally serious ones."""
    return max(verdicts, key=lambda v: _ORDER[v.phase], default=None)

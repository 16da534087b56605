"""The threshold judge (Flagger's): each window is one check of the canary's value of every
metric against its ``thresholdRange``. Pure; called by :mod:`canarymesh.rollout.machine` for
``judge: threshold`` and, under the statistical judge, for custom metrics (a single number per
window cannot be compared request by request).

Unlike Flagger, a window without canary requests is ``NoData`` (hold), not a failed check:
"no values found" at low traffic says nothing about the canary's health.
"""

from __future__ import annotations

from collections.abc import Sequence

from canarymesh.analysis.verdict import MetricVerdict, VerdictPhase
from canarymesh.analysis.windows import Window, quantile
from canarymesh.api.canary import MetricCheck

__all__ = ["check_value", "judge_window", "value_of"]

_UNITS = {"request-success-rate": "%", "request-duration": " ms"}


def value_of(check: MetricCheck, window: Window) -> float | None:
    """The canary's value of ``check`` in ``window`` (None: no data)."""
    if check.name == "request-success-rate" and check.query is None:
        return window.canary.success_rate
    if check.name == "request-duration" and check.query is None:
        return quantile(0.99, window.canary.buckets)
    return window.custom_value(check.name)


def check_value(check: MetricCheck, value: float | None, samples: int) -> MetricVerdict:
    """``value`` against ``check.thresholdRange``, as a verdict with the numbers."""
    unit = _UNITS.get(check.name, "")
    if value is None:
        reason = (
            f"{check.name}: no values found for the canary (n={samples}); "
            "probably it is not receiving traffic"
        )
        return MetricVerdict(check.name, VerdictPhase.NO_DATA, reason, samples=samples)
    limits = check.threshold_range
    shown = f"{check.name} canary {value:.2f}{unit} (n={samples})"
    if limits is not None and limits.min is not None and value < limits.min:
        reason = f"{shown} < min {limits.min:g}{unit}"
        return MetricVerdict(check.name, VerdictPhase.FAILED, reason, value, samples=samples)
    if limits is not None and limits.max is not None and value > limits.max:
        reason = f"{shown} > max {limits.max:g}{unit}"
        return MetricVerdict(check.name, VerdictPhase.FAILED, reason, value, samples=samples)
    reason = f"{shown} within {_range_text(check, unit)}"
    return MetricVerdict(check.name, VerdictPhase.SUCCESSFUL, reason, value, samples=samples)


def judge_window(window: Window, checks: Sequence[MetricCheck]) -> tuple[MetricVerdict, ...]:
    """One verdict per check for the canary's values in ``window``."""
    return tuple(
        check_value(check, value_of(check, window), window.canary.requests) for check in checks
    )


def _range_text(check: MetricCheck, unit: str) -> str:
    limits = check.threshold_range
    if limits is None or (limits.min is None and limits.max is None):
        return "no limits"
    parts = []
    if limits.min is not None:
        parts.append(f"min {limits.min:g}{unit}")
    if limits.max is not None:
        parts.append(f"max {limits.max:g}{unit}")
    return " and ".join(parts)

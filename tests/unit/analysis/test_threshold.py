"""The threshold judge: one check per metric per window, NoData is not a failure."""

from __future__ import annotations

import datetime
import math

from canarymesh.analysis.threshold import judge_window
from canarymesh.analysis.verdict import MetricVerdict, VerdictPhase, worst
from canarymesh.analysis.windows import Counts, Window
from canarymesh.api.canary import MetricCheck, ThresholdRange

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
SLOW = ((100.0, 90), (1000.0, 100), (math.inf, 100))
CHECKS = (
    MetricCheck(name="request-success-rate", threshold_range=ThresholdRange(min=99.0)),
    MetricCheck(name="request-duration", threshold_range=ThresholdRange(max=500.0)),
    MetricCheck(name="queue", query="q", threshold_range=ThresholdRange(min=1.0, max=5.0)),
)


def window(canary: Counts, custom: float | None = 2.0) -> Window:
    return Window(T0, T0 + datetime.timedelta(minutes=1), canary, Counts(900, 0),
                  custom=(("queue", custom),))  # fmt: skip


def test_values_within_limits_succeed_with_the_numbers() -> None:
    verdicts = judge_window(window(Counts(100, 0, ((100.0, 100), (math.inf, 100)))), CHECKS)
    assert [v.phase for v in verdicts] == [VerdictPhase.SUCCESSFUL] * 3
    assert verdicts[0].reason == "request-success-rate canary 100.00% (n=100) within min 99%"
    assert verdicts[1].reason == "request-duration canary 99.00 ms (n=100) within max 500 ms"
    assert verdicts[2].reason == "queue canary 2.00 (n=100) within min 1 and max 5"


def test_values_outside_limits_fail() -> None:
    verdicts = judge_window(window(Counts(100, 2, SLOW), custom=9.0), CHECKS)
    assert [v.reason for v in verdicts] == [
        "request-success-rate canary 98.00% (n=100) < min 99%",
        "request-duration canary 910.00 ms (n=100) > max 500 ms",
        "queue canary 9.00 (n=100) > max 5",
    ]
    assert all(v.phase is VerdictPhase.FAILED for v in verdicts)


def test_no_canary_requests_is_no_data_not_a_failed_check() -> None:
    verdicts = judge_window(window(Counts(0, 0), custom=None), CHECKS)
    assert [v.phase for v in verdicts] == [VerdictPhase.NO_DATA] * 3
    assert verdicts[0].reason == (
        "request-success-rate: no values found for the canary (n=0); "
        "probably it is not receiving traffic"
    )


def test_worst_orders_failed_above_no_data_above_inconclusive() -> None:
    def v(phase: VerdictPhase, name: str) -> MetricVerdict:
        return MetricVerdict(name, phase, name)

    found = worst([v(VerdictPhase.INCONCLUSIVE, "a"), v(VerdictPhase.FAILED, "b"),
                   v(VerdictPhase.NO_DATA, "c"), v(VerdictPhase.FAILED, "d")])  # fmt: skip
    assert found is not None and found.metric == "b"
    assert worst([]) is None

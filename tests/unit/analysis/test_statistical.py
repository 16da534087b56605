"""The statistical judge's metric tests: what counts as a bad request (5xx; slower than a bound
learnt from the stable), how the tolerance and the effect size enter, and its verdicts with their
explanations, compared with a golden file (``CANARYMESH_REFRESH_GOLDEN=1`` rewrites it)."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import pytest
import yaml

from canarymesh.analysis import statistical
from canarymesh.analysis.baseline import Baseline
from canarymesh.analysis.verdict import VerdictPhase
from canarymesh.analysis.windows import Buckets, Counts, Window
from canarymesh.api.canary import MetricCheck
from tests.unit.api.golden import compare_golden

GOLDEN = Path(__file__).parents[2] / "golden" / "judge" / "verdicts.yaml"
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
BOUNDS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, math.inf)
ERRORS = MetricCheck(name="request-success-rate")
LATENCY = MetricCheck(name="request-duration")


def histogram(per_bucket: tuple[int, ...]) -> Buckets:
    """Cumulative buckets from counts per bucket of BOUNDS."""
    running, out = 0, []
    for bound, count in zip(BOUNDS, per_bucket, strict=True):
        running += count
        out.append((bound, running))
    return tuple(out)


def counts(requests: int, errors: int = 0, per_bucket: tuple[int, ...] | None = None) -> Counts:
    shape = per_bucket or (0, 0, requests, 0, 0, 0, 0)
    return Counts(requests, errors, histogram(shape))


def window(second: int, canary: Counts, stable: Counts, seconds: int = 1) -> Window:
    start = T0 + datetime.timedelta(seconds=second)
    return Window(start, start + datetime.timedelta(seconds=seconds), canary, stable)


# The stable's ten minutes before the rollout: 12,000 requests, 60 failed; durations mostly in
# (10, 25] ms, 2% in (25, 50], 0.5% in (50, 100].
HISTORY = Baseline(600.0, counts(12_000, 60, (0, 2_000, 9_700, 240, 60, 0, 0)))


def test_the_latency_bounds_come_from_the_stable_and_the_tolerance() -> None:
    same = statistical.start(LATENCY, HISTORY)
    assert same.slow == statistical.Slow(25.0, 25.0)  # the largest bound 1% of them exceed
    slower = statistical.start(MetricCheck(name="request-duration", tolerance=3), HISTORY)
    assert slower.slow == statistical.Slow(25.0, 100.0)  # the first bound >= 3 x 25 ms
    # 50% slower than allowed: the share above 25 ms of durations 1.5x the stable's.
    assert 10.0 < same.effect < 20.0  # most of the stable sits just under 25 ms
    assert slower.effect_size == 4.5  # default: 1.5 times the tolerance
    errors = statistical.start(MetricCheck(name="request-success-rate", tolerance=2), HISTORY)
    assert (errors.effect_size, errors.effect) == (6.0, 6.0)


def test_without_history_latency_learns_first_then_judges() -> None:
    test = statistical.start(LATENCY, None)
    assert test.slow is None
    verdict = statistical.verdict(test, alpha=0.0025, min_requests=50, idle_limit=30)
    assert verdict.phase is VerdictPhase.INCONCLUSIVE
    assert verdict.reason == (
        "request-duration: learning what is slow for the stable (0 of 200 requests seen)"
    )
    test = statistical.observe(test, window(0, counts(20), counts(180)))
    assert test.slow is None and test.learning.requests == 180
    test = statistical.observe(test, window(1, counts(20), counts(180)))
    assert test.slow == statistical.Slow(25.0, 25.0) and test.evidence.canary_requests == 20


def test_a_canary_silent_for_an_interval_is_no_data() -> None:
    test = statistical.start(ERRORS, HISTORY)
    for second in range(30):
        test = statistical.observe(test, window(second, counts(0), counts(20)))
    verdict = statistical.verdict(test, alpha=0.0075, min_requests=50, idle_limit=30)
    assert verdict.phase is VerdictPhase.NO_DATA
    assert "no requests reached the canary in the last 30s" in verdict.reason


def _story(check: MetricCheck, seconds: int, canary: Counts, stable: Counts) -> dict[str, object]:
    test = statistical.start(check, HISTORY)
    for second in range(seconds):
        test = statistical.observe(test, window(second, canary, stable))
    alpha = 0.0075 if check.name == statistical.SUCCESS else 0.0025
    verdict = statistical.verdict(test, alpha=alpha, min_requests=50, idle_limit=30,
                                  canary_rate=canary.requests)  # fmt: skip
    assert verdict.explanation is not None
    return {
        "phase": verdict.phase.value,
        "reason": verdict.reason,
        "explanation": verdict.explanation.to_json(),
    }


def test_explained_verdicts_golden() -> None:
    slow_canary = (0, 0, 1, 1, 0, 0, 0)  # half its requests above 25 ms
    stories = {
        "too few canary requests yet": _story(ERRORS, 10, counts(2), counts(18)),
        "a healthy canary": _story(ERRORS, 120, counts(5), counts(15)),
        "a canary failing 1 in 5 is rolled back": _story(ERRORS, 30, counts(5, 1), counts(15)),
        "a slow canary is rolled back on latency": _story(
            LATENCY, 20, counts(2, 0, slow_canary), counts(18)
        ),
    }
    # The suspicious one: a canary error every 10 seconds (2%) against none of the stable.
    test = statistical.start(ERRORS, HISTORY)
    for second in range(60):
        test = statistical.observe(test, window(second, counts(5, int(second % 10 == 0)),
                                                counts(15)))  # fmt: skip
    verdict = statistical.verdict(test, alpha=0.0075, min_requests=50, idle_limit=30,
                                  canary_rate=5)  # fmt: skip
    assert verdict.explanation is not None
    stories["a suspicious canary is watched longer"] = {
        "phase": verdict.phase.value,
        "reason": verdict.reason,
        "explanation": verdict.explanation.to_json(),
    }
    assert stories["too few canary requests yet"]["phase"] == "Inconclusive"
    assert stories["a healthy canary"]["phase"] == "Successful"
    assert stories["a canary failing 1 in 5 is rolled back"]["phase"] == "Failed"
    assert stories["a suspicious canary is watched longer"]["phase"] == "Inconclusive"
    assert "would settle it" in str(stories["a suspicious canary is watched longer"]["reason"])
    assert stories["a slow canary is rolled back on latency"]["phase"] == "Failed"
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    compare_golden(yaml.safe_dump(_rounded(stories), sort_keys=False, width=100), GOLDEN)


def _rounded(value: object) -> object:
    """Numbers to 4 significant digits: the golden file is about what is said, not the last
    bits of a float."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_a_metric_test_survives_json() -> None:
    test = statistical.start(LATENCY, HISTORY)
    test = statistical.observe(test, window(0, counts(2), counts(18)))
    assert statistical.MetricTest.from_json(test.to_json()) == test
    with pytest.raises(ValueError, match="metric test is malformed"):
        statistical.MetricTest.from_json({"metric": "request-duration"})


def test_only_the_built_in_metrics_have_a_test() -> None:
    with pytest.raises(ValueError, match="no test for queue"):
        statistical.start(MetricCheck(name="queue"), HISTORY)

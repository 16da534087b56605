"""What a plan can see at a traffic: the chance to catch a regression, the smallest one caught by
each step, the warnings said before the first step, adaptive mode's gates; and the stable's
baseline they start from."""

from __future__ import annotations

import math

import pytest

from canarymesh.analysis.baseline import Baseline, above, slow_bound
from canarymesh.analysis.planning import (
    MetricPlan,
    PlanAssessment,
    Segment,
    assess,
    catch_probability,
    gates,
)
from canarymesh.analysis.windows import Counts

SHIPPED = [Segment(10, 60, 1), Segment(25, 60, 2), Segment(50, 120, 3)]
ERRORS = MetricPlan("request-success-rate", 0.005, 1.0, 3.0, 3.0, 0.0075)


def test_the_chance_to_catch_grows_with_requests_and_with_the_regression() -> None:
    few = catch_probability(200, 0.005, 5.0, 1.0, 0.0075)
    many = catch_probability(2000, 0.005, 5.0, 1.0, 0.0075)
    worse = catch_probability(200, 0.005, 20.0, 1.0, 0.0075)
    assert 0.0 <= few < many <= 1.0 and few < worse
    assert catch_probability(2000, 0.005, 1.0, 1.0, 0.0075) == 0.0  # no regression
    assert catch_probability(0, 0.005, 5.0, 1.0, 0.0075) == 0.0


def test_at_twenty_requests_a_second_the_shipped_plan_sees_a_two_percent_regression() -> None:
    seen = assess(SHIPPED, 20.0, [ERRORS], power=0.97, min_requests=50, adaptive=True)
    sight = seen.metrics[0]
    assert [s.step for s in sight.steps] == [1, 2, 3]
    assert [round(s.canary_requests) for s in sight.steps] == [120, 420, 1620]
    smallest = [s.smallest for s in sight.steps]
    assert smallest[0] is not None and smallest[2] is not None
    assert smallest[0] > smallest[2]  # more data, smaller regressions
    assert smallest[2] < 5.0  # +2% on 0.5% is 5x: caught by the end
    assert sight.median_seconds is not None and sight.median_seconds < 240
    assert sight.promote_seconds is not None and sight.promote_seconds < 240


def test_at_five_requests_a_second_the_plan_says_what_it_cannot_see() -> None:
    seen = assess(SHIPPED, 5.0, [ERRORS], power=0.97, min_requests=50, adaptive=False)
    assert seen.metrics[0].catch < 0.5
    assert seen.warnings == (
        "request-success-rate: at 5 req/s this plan catches a 3x regression only "
        f"{100 * seen.metrics[0].catch:.0f}% of the time by its end (it needs about "
        f"{_needed(seen)} canary requests with 0.5% errors: {_minutes(seen)} min at 50%)",
    )


def _needed(seen: PlanAssessment) -> str:
    warning = seen.warnings[0]
    return warning.split("needs about ")[1].split(" ")[0]


def _minutes(seen: PlanAssessment) -> str:
    return str(round(int(_needed(seen)) / 2.5 / 60))


def test_no_traffic_measured_is_said_too() -> None:
    seen = assess(SHIPPED, 0.0, [ERRORS], power=0.97, min_requests=50, adaptive=True)
    assert seen.warnings[0].startswith("no traffic measured before the rollout")


def test_the_assessment_survives_json() -> None:
    seen = assess(SHIPPED, 20.0, [ERRORS], power=0.97, min_requests=50, adaptive=True)
    assert PlanAssessment.from_json(seen.to_json()) == seen
    with pytest.raises(ValueError, match="plan assessment is malformed"):
        PlanAssessment.from_json({"rps": 1})


def test_adaptive_gates_rule_out_a_large_regression_first_and_the_effect_size_last() -> None:
    three = gates(3, 0.97)
    assert [g.step for g in three] == [1, 2, 3]
    assert [round(g.factor, 2) for g in three] == [10.0, 3.16, 1.0]
    need = math.log(1 / 0.03)
    assert [round(g.need, 3) for g in three] == [round(need * f, 3) for f in (1 / 9, 4 / 9, 1)]
    assert gates(1, 0.9) == (gates(1, 0.9)[0],) and gates(1, 0.9)[0].factor == 1.0


def test_the_stable_s_slow_bound_is_its_p99_bucket() -> None:
    def histogram(*cumulative: int) -> Counts:
        bounds = (5.0, 10.0, 25.0, 50.0, 100.0, math.inf)
        return Counts(cumulative[-1], 0, tuple(zip(bounds, cumulative, strict=True)))

    assert slow_bound(histogram(0, 2000, 11700, 11940, 12000, 12000)) == 25.0
    # More than 10% above the p99 bucket's lower bound: that bucket is too coarse, take its top.
    assert slow_bound(histogram(0, 0, 100, 100, 100, 100)) == 25.0
    assert slow_bound(histogram(0, 995, 1000, 1000, 1000, 1000)) == 10.0
    # Fewer than 1% above every bound: the smallest bound nothing exceeds.
    assert slow_bound(histogram(995, 1000, 1000, 1000, 1000, 1000)) == 10.0
    assert slow_bound(Counts(0, 0)) is None
    hist = histogram(0, 2000, 11700, 11940, 12000, 12000)
    assert above(hist, 25.0) == pytest.approx(300 / 12000)
    assert above(hist, 10.0) == pytest.approx(10000 / 12000)
    assert 300 / 12000 < above(hist, 20.0) < 10000 / 12000  # interpolated in the log


def test_a_baseline_says_what_it_saw_and_survives_json() -> None:
    base = Baseline(600.0, Counts(12000, 60, ((25.0, 11000), (math.inf, 12000))))
    assert base.rps == 20.0 and base.error_rate == 0.005
    assert base.describe() == (
        "stable before the rollout: 12000 requests in 600s (20.0 req/s), 0.50% errors"
    )
    assert Baseline.from_json(base.to_json()) == base
    assert Baseline.empty().describe() == "no traffic of the stable before the rollout"
    with pytest.raises(ValueError, match="baseline is malformed"):
        Baseline.from_json({"seconds": 1})

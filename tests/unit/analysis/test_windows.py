"""Reading histograms the way Prometheus does, and the window's value types."""

from __future__ import annotations

import math

import pytest

from canarymesh.analysis.windows import Counts, count_above, p99_bound, quantile

HIST = ((10.0, 50), (100.0, 100), (250.0, 100), (math.inf, 100))


def test_quantile_interpolates_inside_the_bucket_like_histogram_quantile() -> None:
    assert quantile(0.5, HIST) == 10.0
    assert quantile(0.99, HIST) == pytest.approx(10 + 90 * (99 - 50) / 50)
    assert quantile(0.25, HIST) == pytest.approx(5.0)


def test_a_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    tail = ((10.0, 50), (100.0, 90), (math.inf, 100))
    assert quantile(0.99, tail) == 100.0


def test_no_observations_no_quantile() -> None:
    assert quantile(0.99, ()) is None
    assert quantile(0.99, ((10.0, 0), (math.inf, 0))) is None


def test_p99_bound_is_the_lower_edge_of_the_p99_bucket() -> None:
    buckets = ((10.0, 900), (50.0, 985), (100.0, 998), (math.inf, 1000))
    assert p99_bound(buckets) == 50.0  # 15 of 1000 above 50 ms, 2 above 100 ms
    assert count_above(50.0, buckets) == 15
    assert p99_bound(((10.0, 1000), (math.inf, 1000))) is None
    with pytest.raises(ValueError, match="not a bucket bound"):
        count_above(42.0, buckets)


def test_counts_refuse_more_errors_than_requests() -> None:
    assert Counts(200, 3).success_rate == pytest.approx(98.5)
    assert Counts(0, 0).success_rate is None
    with pytest.raises(ValueError, match="inconsistent counts: 5 errors of 4"):
        Counts(4, 5)

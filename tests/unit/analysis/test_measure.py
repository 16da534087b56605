"""Prometheus answers to request counts: the window's queries and their cleanup."""

from __future__ import annotations

import datetime
import math

import pytest

from canarymesh.analysis.measure import counts_from, promql_range, window_queries


def test_one_window_needs_three_queries_per_version() -> None:
    queries = window_queries("reviews.webapps.svc.cluster.local", "v3",
                             datetime.timedelta(seconds=30))  # fmt: skip
    assert list(queries) == ["request-count", "error-count", "duration-buckets"]
    assert queries["request-count"] == (
        'sum(increase(istio_requests_total{reporter="destination",destination_service='
        '"reviews.webapps.svc.cluster.local",destination_version="v3"}[30s]))'
    )
    assert promql_range(datetime.timedelta(milliseconds=200)) == "1s"


def test_extrapolated_answers_become_consistent_counts() -> None:
    counts = counts_from(99.6, 2.4, [("+Inf", 99.8), ("25", 80.2), ("10", 81.0), ("100", 97.0)])
    assert (counts.requests, counts.errors) == (100, 2)
    # sorted by bound, rounded, never decreasing (10 -> 81, 25 stays 81)
    assert counts.buckets == ((10.0, 81), (25.0, 81), (100.0, 97), (math.inf, 100))


def test_no_series_is_zero_and_errors_never_exceed_requests() -> None:
    assert counts_from(None, None, []).requests == 0
    assert counts_from(3.0, 7.0, []).errors == 3


def test_a_bad_bucket_label_is_named() -> None:
    with pytest.raises(ValueError, match="le='fast'"):
        counts_from(1.0, 0.0, [("fast", 1.0)])

"""Prometheus answers to request counts: the window's queries and their cleanup."""

from __future__ import annotations

import datetime
import math

import pytest

from canarymesh.analysis.measure import (
    ConfigCounters,
    counter_queries,
    counts_between,
    counts_from,
    promql_range,
    window_queries,
)


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


def test_the_counters_are_read_series_by_series() -> None:
    queries = counter_queries("reviews.webapps.svc.cluster.local", "v3")
    assert list(queries) == ["request-counters", "error-counters", "duration-counters"]
    assert queries["error-counters"] == (
        'istio_requests_total{reporter="destination",destination_service='
        '"reviews.webapps.svc.cluster.local",destination_version="v3",response_code=~"5.."}'
    )


def test_a_window_is_the_counters_at_its_end_minus_at_its_start() -> None:
    pod_a, pod_b = (("pod", "a"),), (("pod", "b"),)
    start = {
        "request-counters": ((pod_a, 100.0), (pod_b, 50.0)),
        "error-counters": ((pod_a, 1.0),),
        "duration-counters": (((("le", "25"), *pod_a), 90.0), ((("le", "+Inf"), *pod_a), 100.0)),
    }
    end = {
        # pod b restarted (its counter went down: it counted 7 since), pod c is new.
        "request-counters": ((pod_a, 130.0), (pod_b, 7.0), ((("pod", "c"),), 3.0)),
        "error-counters": ((pod_a, 3.0),),
        "duration-counters": (((("le", "25"), *pod_a), 110.0), ((("le", "+Inf"), *pod_a), 130.0)),
    }
    counts = counts_between(start, end)
    assert (counts.requests, counts.errors) == (30 + 7 + 3, 2)
    assert counts.buckets == ((25.0, 20), (math.inf, 30))
    assert counts_between({}, {}).requests == 0


def test_a_config_canary_reads_its_sets_where_each_runtime_counts_them() -> None:
    local = ConfigCounters("local", "default/productpage-config", "source")
    queries = counter_queries("details.default.svc.cluster.local", "canary", local)
    assert list(queries) == ["request-counters", "error-counters", "duration-counters"]
    assert queries["error-counters"] == (
        'canarymesh_config_canary_requests_total{config_canary="default/productpage-config",'
        'set="canary",reporter="source",destination_service="details.default.svc.cluster.local"'
        ',response_code=~"0|403|5.."}'
    )
    cluster = ConfigCounters("cluster", "default/productpage-config", "destination")
    queries = counter_queries("details.default.svc.cluster.local", "stable", cluster)
    assert queries["duration-counters"] == (
        'istio_request_duration_milliseconds_bucket{reporter="destination",destination_service='
        '"details.default.svc.cluster.local",canarymesh_io_config_canary="stable"}'
    )

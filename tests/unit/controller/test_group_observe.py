"""What the controller measures for a release group: one window with the ingress's slice
against the other sessions (by the ``canarymesh_group`` tag) and each member's canary subset
against its stable one (by its pods' ``version`` label), from the exact PromQL it sends."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from canarymesh.analysis.measure import counter_queries, group_counter_queries
from canarymesh.api.canary import Canary
from canarymesh.controller.observe import fqdn, measure, subset_versions
from canarymesh.controller.wiring import CanaryItem
from canarymesh.ports import Sample
from tests.fakes import EPOCH, FakeMetrics
from tests.unit.routing.group_golden import canary_of, load_case

INTERVAL = datetime.timedelta(seconds=5)


def answer(metrics: FakeMetrics, queries: Mapping[str, str], rps: float, errors: float) -> None:
    """Counters growing by ``rps`` requests (``errors`` of them 5xx) a second."""
    metrics.counters[queries["request-counters"]] = (Sample((), rps),)
    metrics.counters[queries["error-counters"]] = (Sample((), errors),)
    buckets = ((("le", "25"),), (("le", "+Inf"),))
    metrics.counters[queries["duration-counters"]] = tuple(Sample(b, rps) for b in buckets)


def group() -> Canary:
    return canary_of(load_case("slice-20"))


def test_a_group_window_has_the_ingress_and_every_member() -> None:
    metrics = FakeMetrics()
    ingress = fqdn("productpage", "default")
    answer(metrics, group_counter_queries(ingress, "reviews-ratings", in_slice=True), 12, 0.2)
    answer(metrics, group_counter_queries(ingress, "reviews-ratings", in_slice=False), 28, 0)
    reviews, ratings = fqdn("reviews", "default"), fqdn("ratings", "default")
    answer(metrics, counter_queries(reviews, "v3"), 12, 0)
    answer(metrics, counter_queries(reviews, "v2"), 28, 0)
    answer(metrics, counter_queries(ratings, "v2-db"), 12, 6)
    answer(metrics, counter_queries(ratings, "v1"), 28, 0)
    versions = (("ratings/v2", "v2-db"), ("ratings/v1", "v1"))
    item = CanaryItem("default", "reviews-ratings", "1", group(), versions)
    window = measure(metrics, item, EPOCH + INTERVAL, EPOCH + 2 * INTERVAL)
    assert (window.canary.requests, window.canary.errors, window.stable.requests) == (60, 1, 140)
    parts = {scope: (w.canary.requests, w.canary.errors, w.stable.requests)
             for scope, w in window.scopes}  # fmt: skip
    assert parts == {"reviews": (60, 0, 140), "ratings": (60, 30, 140)}
    asked = [q for q, _ in metrics.asked]
    assert any('canarymesh_group="reviews-ratings"' in q for q in asked)
    assert any('canarymesh_group!="reviews-ratings"' in q for q in asked)
    assert all('reporter="source"' in q for q in asked if "canarymesh_group" in q)


def test_member_versions_come_from_each_member_s_destination_rule() -> None:
    rules = [
        {"spec": {"host": "ratings", "subsets": [{"name": "v2", "labels": {"version": "v2-db"}}]}},
        {"spec": {"host": "reviews.default.svc.cluster.local",
                  "subsets": [{"name": "v3", "labels": {"version": "v3"}}]}},
        {"spec": {"host": "details", "subsets": [{"name": "v2", "labels": {"version": "x"}}]}},
    ]  # fmt: skip
    found = subset_versions(rules, group(), "default")
    assert dict(found) == {"ratings/v2": "v2-db", "reviews/v3": "v3"}

"""The what-if simulation: traffic drawn second by second from a seed, a Prometheus that answers
the controller's own PromQL from it, and whole rollouts through the real controller."""

from __future__ import annotations

import datetime
import random

import pytest

from canarymesh.analysis.measure import counter_queries, window_queries
from canarymesh.api.canary import Canary
from canarymesh.simulation.prometheus import SimulatedPrometheus
from canarymesh.simulation.rollouts import START, simulate_rollout
from canarymesh.simulation.summary import flagger_style, run_many, summarize
from canarymesh.simulation.traffic import SimulatedTraffic, TrafficModel

HOST = "reviews.default.svc.cluster.local"
EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
SPEC = Canary.model_validate({
    "target": {"host": "reviews", "virtualService": "reviews", "stableSubset": "v1",
               "canarySubset": "v3"},
    "strategy": {"canary": {"steps": [{"setWeight": 20}, {"analysis": {"duration": "20s"}},
                                      {"setWeight": 50}, {"analysis": {"duration": "20s"}}]}},
    "analysis": {"metrics": [{"name": "request-success-rate"}], "history": "2m"},
})  # fmt: skip


def prometheus(model: TrafficModel, seed: int = 1) -> tuple[SimulatedTraffic, SimulatedPrometheus]:
    traffic = SimulatedTraffic(model, random.Random(seed))
    return traffic, SimulatedPrometheus(traffic, HOST, {"stable": "v1", "canary": "v3"}, EPOCH)


def at(seconds: float) -> datetime.datetime:
    return EPOCH + datetime.timedelta(seconds=seconds)


def test_the_same_seed_draws_the_same_traffic() -> None:
    one, _ = prometheus(TrafficModel(20, 0.1, 0.3))
    two, _ = prometheus(TrafficModel(20, 0.1, 0.3))
    one.route(0.5, 5)
    two.route(0.5, 5)
    one.generate_until(30)
    two.generate_until(30)
    assert [s.errors for s in one.seconds["canary"]] == [s.errors for s in two.seconds["canary"]]
    assert sum(s.requests for s in one.seconds["canary"][:5]) == 0  # routed from second 5 on
    assert sum(s.requests for s in one.seconds["canary"][5:]) > 0


def test_the_counters_answer_at_the_last_scrape_and_increase_extrapolates() -> None:
    traffic, prom = prometheus(TrafficModel(20))
    queries = counter_queries(HOST, "v1")
    series = prom.query(queries["request-counters"], at(10.7))
    codes = {s.label("response_code"): s.value for s in series}
    assert set(codes) == {"200", "503"}
    served = sum(s.requests for s in traffic.seconds["stable"][:10])
    assert sum(codes.values()) == served  # seconds 0..9, scraped at 10
    buckets = prom.query(queries["duration-counters"], at(10.7))
    assert max(s.value for s in buckets if s.label("le") == "+Inf") == served
    increase = window_queries(HOST, "v1", datetime.timedelta(seconds=5))["request-count"]
    (answer,) = prom.query(increase, at(10.0))
    raw = sum(s.requests for s in traffic.seconds["stable"][6:10])  # scrapes 6..10
    assert answer.value == pytest.approx(raw * 5 / 4)
    assert prom.query(increase, at(0.5)) == ()
    with pytest.raises(ValueError, match="cannot answer"):
        prom.query("up", at(5))


def test_a_failing_canary_is_rolled_back_and_a_healthy_one_promoted() -> None:
    bad = simulate_rollout(SPEC, TrafficModel(20, 0.005, 0.3, history=120), seed=3)
    assert bad.result == "rolled back" and bad.seconds < 20
    assert bad.reason.startswith("request-success-rate canary errors")
    assert bad.canary_failed > 0 and bad.excess_failed > 0
    good = simulate_rollout(SPEC, TrafficModel(20, history=120), seed=3)
    assert good.result == "promoted" and 40 <= good.seconds <= 60
    assert good == simulate_rollout(SPEC, TrafficModel(20, history=120), seed=3)
    assert START.tzinfo is not None


def test_a_summary_counts_decisions_times_and_failures() -> None:
    outcomes = run_many(SPEC, TrafficModel(20, 0.005, 0.3, history=120), runs=3, seed=2)
    summary = summarize(outcomes)
    assert (summary.runs, summary.rolled_back, summary.promoted) == (3, 3, 0)
    assert summary.share(summary.rolled_back) == 100.0
    assert summary.median_rollback_seconds <= summary.p90_seconds
    assert summary.mean_failed >= summary.mean_excess_failed > 0


def test_the_flagger_style_plan_is_flaggers_usual_setup() -> None:
    flagger = flagger_style(SPEC)
    assert flagger.analysis.judge == "threshold" and flagger.interval().total_seconds() == 60
    assert [s.set_weight for s in flagger.steps() if s.set_weight] == [10, 20, 30, 40, 50]
    assert flagger.analysis.failure_limit == 5

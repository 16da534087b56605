"""Benchmark of the canary judges: simulated rollouts through the real judges and the real
state machine, ours (statistical, default step plan) side by side with a Flagger-default
threshold judge (1 m interval, threshold 5, success rate >= 99%, p99 <= 500 ms, stepWeight 10
up to maxWeight 50).

Traffic is simulated request by request with a seeded RNG: ``--rps`` requests per second in all
(Poisson), split between the versions by the current weights; the stable fails 0.5% of requests
and answers in lognormal time (median 20 ms, sigma 0.5, so p99 ~64 ms), counted into Istio's
default histogram buckets. Scenarios: a healthy canary (same as the stable), +2% and +5%
absolute errors, and +50% latency (every duration x1.5, so p99 +50%).

A tiny in-process controller plays the loop: weights apply 1 s after they are set, metric
windows start when the weights are verified and last one analysis interval.

    .venv/bin/python bench/judge.py                # 200 rollouts per scenario and judge
    .venv/bin/python bench/judge.py --rollouts 20  # quick look
"""

from __future__ import annotations

import argparse
import bisect
import datetime
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass

from canarymesh.analysis.windows import Counts, Window
from canarymesh.api.canary import (
    AnalysisSpec,
    Canary,
    CanaryStrategy,
    MetricCheck,
    Strategy,
    Target,
    ThresholdRange,
)
from canarymesh.rollout.actions import FinalizeRoutes, ReconcileRoutes, SetWeights, Weights
from canarymesh.rollout.machine import Observation, advance
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState

ISTIO_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
APPLY_DELAY = datetime.timedelta(seconds=1)
TARGET = Target(host="reviews", virtual_service="reviews", stable_subset="v1", canary_subset="v3")
TIME_LIMIT = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Scenario:
    name: str
    extra_errors: float  # absolute, added to the stable's error rate
    latency_factor: float
    bad: bool  # a good judge rolls this one back


SCENARIOS = (
    Scenario("healthy", 0.0, 1.0, False),
    Scenario("+2% errors", 0.02, 1.0, True),
    Scenario("+5% errors", 0.05, 1.0, True),
    Scenario("+50% p99 latency", 0.0, 1.5, True),
)

OURS = Canary(target=TARGET)  # every default: statistical judge, 10/25/50% for 1 m each
FLAGGER = Canary(
    target=TARGET,
    strategy=Strategy(canary=CanaryStrategy(step_weight=10, max_weight=50)),
    analysis=AnalysisSpec(
        judge="threshold",
        interval="1m",
        failure_limit=5,
        metrics=(
            MetricCheck(name="request-success-rate", threshold_range=ThresholdRange(min=99.0)),
            MetricCheck(name="request-duration", threshold_range=ThresholdRange(max=500.0)),
        ),
    ),
)


@dataclass
class Traffic:
    rng: random.Random
    rps: float
    stable_errors: float = 0.005
    median_ms: float = 20.0
    sigma: float = 0.5

    def window(
        self, scenario: Scenario, canary_weight: float, seconds: float
    ) -> tuple[Counts, Counts]:
        total = _poisson(self.rng, self.rps * seconds)
        canary_n = sum(1 for _ in range(total) if self.rng.random() * 100 < canary_weight)
        canary = self._version(
            canary_n, self.stable_errors + scenario.extra_errors, scenario.latency_factor
        )
        stable = self._version(total - canary_n, self.stable_errors, 1.0)
        return canary, stable

    def _version(self, n: int, error_rate: float, factor: float) -> Counts:
        per_bucket = [0] * (len(ISTIO_BUCKETS) + 1)
        errors = 0
        mu = math.log(self.median_ms * factor)
        for _ in range(n):
            errors += self.rng.random() < error_rate
            latency = self.rng.lognormvariate(mu, self.sigma)
            per_bucket[bisect.bisect_left(ISTIO_BUCKETS, latency)] += 1
        cumulative, running = [], 0
        for bound, count in zip((*ISTIO_BUCKETS, math.inf), per_bucket, strict=True):
            running += count
            cumulative.append((float(bound), running))
        return Counts(n, errors, tuple(cumulative))


@dataclass
class Outcome:
    rolled_back: bool
    seconds: float
    canary_requests: int
    requests: int


def simulate(spec: Canary, scenario: Scenario, traffic: Traffic) -> Outcome:
    """One rollout from start to its terminal decision, with the loop played in-process."""
    now, interval = START, spec.interval()
    state = CanaryState.initial("reviews", spec.stable_subset(), now)
    applied: Weights | None = None
    applied_at = now
    window_start: datetime.datetime | None = None
    canary_seen = seen = 0
    while state.phase not in (Phase.SUCCEEDED, Phase.FAILED, Phase.ROLLING_BACK):
        if now - START > TIME_LIMIT:
            raise RuntimeError(f"rollout did not finish in {TIME_LIMIT}: {state.message}")
        verified = applied == state.weights and now >= applied_at + APPLY_DELAY
        windows: list[Window] = []
        if state.verified_at is not None:
            if window_start is None or window_start < state.verified_at:
                window_start = state.verified_at
            while window_start + interval <= now:
                canary, stable = traffic.window(
                    scenario, state.weights.canary, interval.total_seconds()
                )
                windows.append(Window(window_start, window_start + interval, canary, stable))
                canary_seen += canary.requests
                seen += canary.requests + stable.requests
                window_start += interval
        observation = Observation(spec, weights_verified=verified, windows=tuple(windows))
        decision = advance(state, observation, now)
        for action in decision.actions:
            if isinstance(action, SetWeights | ReconcileRoutes):
                if action.weights != applied:
                    applied, applied_at = action.weights, now
            elif isinstance(action, FinalizeRoutes):
                applied, applied_at = Weights(0, action.stable_subset), now
        state = decision.state
        step = decision.requeue_after
        if state.verified_at is not None and window_start is not None:
            step = min(step, max(window_start + interval - now, datetime.timedelta(seconds=1)))
        now += step
    rolled_back = state.phase in (Phase.FAILED, Phase.ROLLING_BACK)
    return Outcome(rolled_back, (now - START).total_seconds(), canary_seen, seen)


def _poisson(rng: random.Random, mean: float) -> int:
    # Normal approximation with continuity correction; means here are 100s to 1000s.
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


JUDGES = {"ours": ("ours: statistical", OURS), "flagger": ("Flagger-default threshold", FLAGGER)}


def run(
    rollouts: int, rps: float, seed: int, judges: list[str], scenarios: list[str]
) -> list[tuple[str, str, list[Outcome]]]:
    results = []
    for judge_name, spec in (JUDGES[j] for j in judges):
        for index, scenario in enumerate(SCENARIOS):
            if scenario.name not in scenarios:
                continue
            traffic = Traffic(random.Random(seed * 1000 + index), rps)
            outcomes = [simulate(spec, scenario, traffic) for _ in range(rollouts)]
            results.append((judge_name, scenario.name, outcomes))
    return results


def report(results: list[tuple[str, str, list[Outcome]]], rps: float) -> str:
    lines = [
        f"| judge | scenario | rolled back | time to decision: median (p90) "
        f"| median canary requests | median requests (at {rps:g} rps) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for judge_name, scenario_name, outcomes in results:
        scenario = next(s for s in SCENARIOS if s.name == scenario_name)
        back = sum(o.rolled_back for o in outcomes)
        share = 100.0 * back / len(outcomes)
        label = "false rollbacks" if not scenario.bad else "detected"
        seconds = statistics.median(o.seconds for o in outcomes)
        p90 = sorted(o.seconds for o in outcomes)[int(0.9 * (len(outcomes) - 1))]
        canary = statistics.median(o.canary_requests for o in outcomes)
        everyone = statistics.median(o.requests for o in outcomes)
        lines.append(
            f"| {judge_name} | {scenario_name} | {share:.1f}% ({label}, {back}/{len(outcomes)}) "
            f"| {seconds / 60:.1f} min ({p90 / 60:.1f}) | {canary:.0f} | {everyone:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollouts", type=int, default=200)
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--judge", action="append", choices=sorted(JUDGES))
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS])
    args = parser.parse_args(argv)
    began = time.perf_counter()
    judges = args.judge or list(JUDGES)
    scenarios = args.scenario or [s.name for s in SCENARIOS]
    results = run(args.rollouts, args.rps, args.seed, judges, scenarios)
    print(report(results, args.rps))
    print(
        f"\n{args.rollouts} rollouts per row, seed {args.seed}, "
        f"{time.perf_counter() - began:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Many simulated rollouts and what they add up to: how often each decision was taken, how long it
took, and what it cost in failed requests; and the Flagger-style threshold plan that every
simulation is compared with.

The Flagger-style plan is Flagger's usual setup expressed in our kind (the same state machine,
``judge: threshold``): a check every minute, ``stepWeight`` 10 up to ``maxWeight`` 50, five failed
checks roll back, success rate at least 99% and p99 at most 500 ms.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial

from canarymesh.api.canary import (
    AnalysisSpec,
    Canary,
    CanaryStrategy,
    MetricCheck,
    Strategy,
    ThresholdRange,
)
from canarymesh.simulation.rollouts import Outcome, simulate_rollout
from canarymesh.simulation.traffic import TrafficModel

__all__ = ["Summary", "flagger_style", "run_many", "summarize"]


def flagger_style(spec: Canary) -> Canary:
    """``spec``'s target judged the way a Flagger user's Canary usually is."""
    return Canary(
        target=spec.target,
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
        progress_deadline="30m",
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """``runs`` rollouts: how many were rolled back, promoted, left undecided (time limit);
    decision times in seconds (median, 90th percentile, over the decided ones); mean failed
    requests the canary served before the decision, and the mean of those beyond the stable's
    error rate."""

    runs: int
    rolled_back: int
    promoted: int
    undecided: int
    median_seconds: float
    p90_seconds: float
    rolled_back_within_30s: int
    mean_failed: float
    mean_excess_failed: float
    median_rollback_seconds: float
    median_promotion_seconds: float

    def share(self, count: int) -> float:
        return 100.0 * count / self.runs if self.runs else 0.0


def summarize(outcomes: Sequence[Outcome]) -> Summary:
    decided = sorted(o.seconds for o in outcomes if o.result != "undecided")
    back = [o for o in outcomes if o.result == "rolled back"]
    promoted = [o for o in outcomes if o.result == "promoted"]
    return Summary(
        runs=len(outcomes),
        rolled_back=len(back),
        promoted=len(promoted),
        undecided=len(outcomes) - len(back) - len(promoted),
        median_seconds=_median(decided),
        p90_seconds=decided[int(0.9 * (len(decided) - 1))] if decided else math.nan,
        rolled_back_within_30s=sum(1 for o in back if o.seconds <= 30),
        mean_failed=statistics.fmean(o.canary_failed for o in outcomes) if outcomes else 0.0,
        mean_excess_failed=(
            statistics.fmean(o.excess_failed for o in outcomes) if outcomes else 0.0
        ),
        median_rollback_seconds=_median([o.seconds for o in back]),
        median_promotion_seconds=_median([o.seconds for o in promoted]),
    )


def run_many(
    spec: Canary,
    model: TrafficModel,
    runs: int,
    seed: int = 1,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """``runs`` rollouts with seeds ``seed * 1_000_003 + i``; ``jobs`` processes share them."""
    seeds = [seed * 1_000_003 + index for index in range(runs)]
    one = partial(simulate_rollout, spec, model)
    if jobs <= 1:
        outcomes = []
        for done, value in enumerate(seeds, 1):
            outcomes.append(one(value))
            if progress is not None:
                progress(done)
        return outcomes
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, seeds, chunksize=max(1, runs // (jobs * 8))))
    if progress is not None:
        progress(runs)
    return results


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan

"""Benchmark of the canary judge: simulated rollouts through the real controller
(``Controller.observe`` against a Prometheus that answers the controller's own PromQL, then
``rollout.machine.advance``, once a second as the controller process does), ours side by side with
a Flagger-style threshold plan in the same script.

Ours is the shipped Canary (``canary-manifests/canary-reviews.yaml``, or ``--spec``) and, with
``--fixed``, the same Canary without adaptive mode. Its latency check allows reviews v3 three
times v1's latency (v3 calls ratings, v1 does not); the rows that simulate a canary doing the
same work as the stable ("+50% p99") judge latency with tolerance 1, the rows marked "v3" keep
the shipped tolerance and simulate a canary three times slower by design. The Flagger-style plan is
:func:`canarymesh.simulation.summary.flagger_style`: a check every minute, stepWeight 10 up to
maxWeight 50, five failed checks, success rate >= 99%, p99 <= 500 ms.

Traffic (:mod:`canarymesh.simulation.traffic`): Poisson requests at the row's rate, split by the
weights the router applied; the stable fails 0.5% of its requests (0.3% in the 3x row) and
answers in lognormal time (median 20 ms, sigma 0.5, p99 about 64 ms); ten minutes of the stable's
traffic precede each rollout. Rows with bursts: one replica of two, of the stable or the canary
(drawn per rollout), fails half its requests for 5 s, on average every 5 minutes. Rows with
spikes: on average every 2 minutes, for 10 s, both versions fail 10 times as often and are twice
as slow. Rows with a shifted level: from the rollout on, both versions fail twice (or three times)
as often as the stable's history says.

    .venv/bin/python bench/judge.py                  # every row, 400 rollouts each
    .venv/bin/python bench/judge.py --runs 100 --case "+5% errors, 20 req/s"
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from canarymesh.api.canary import Canary, MetricCheck
from canarymesh.simulation.summary import Summary, flagger_style, run_many, summarize
from canarymesh.simulation.traffic import Bursts, Spikes, TrafficModel

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "canary-manifests" / "canary-reviews.yaml"
BURSTS = Bursts(every=300.0, duration=5.0, failure=0.5, replicas=2, side="either")
SPIKES = Spikes(every=120.0, duration=10.0, errors=10.0, latency=2.0)


def rollback_speed(s: Summary) -> str:
    return (
        f"rolled back {s.share(s.rolled_back):.1f}%, median {s.median_rollback_seconds:.0f} s, "
        f"{s.share(s.rolled_back_within_30s):.0f}% within 30 s; "
        f"{s.mean_excess_failed:.1f} excess failed requests"
    )


def caught(s: Summary) -> str:
    text = f"caught {s.share(s.rolled_back):.1f}%, median {s.median_rollback_seconds:.0f} s"
    if s.promoted:
        text += f" (promoted {s.share(s.promoted):.1f}%)"
    return text


def promoted(s: Summary) -> str:
    return (
        f"promoted {s.share(s.promoted):.1f}%, median {s.median_promotion_seconds:.0f} s; "
        f"false rollbacks {s.share(s.rolled_back):.2f}%"
    )


def false_rollbacks(s: Summary) -> str:
    return f"false rollbacks {s.share(s.rolled_back):.2f}% ({s.rolled_back}/{s.runs})"


@dataclass(frozen=True)
class Case:
    name: str
    model: TrafficModel
    show: Callable[[Summary], str]
    latency: str = ""  # "same work": ours judges latency with tolerance 1; "v3": as shipped


CASES = (
    Case("+5% errors, 20 req/s", TrafficModel(20, 0.005, 0.055), rollback_speed),
    Case("+2% errors, 20 req/s", TrafficModel(20, 0.005, 0.025), caught),
    Case("+2% errors, 5 req/s", TrafficModel(5, 0.005, 0.025), caught),
    Case("healthy canary, 20 req/s", TrafficModel(20), promoted),
    Case("healthy canary, 5 req/s", TrafficModel(5), promoted),
    Case("healthy, one replica's bursts, 20 req/s", TrafficModel(20, bursts=BURSTS),
         false_rollbacks),
    Case("healthy, one replica's bursts, 5 req/s", TrafficModel(5, bursts=BURSTS),
         false_rollbacks),
    Case("healthy, shared spikes, 20 req/s", TrafficModel(20, spikes=SPIKES), false_rollbacks),
    Case("canary 0.9% vs stable 0.3% errors, 20 req/s", TrafficModel(20, 0.003, 0.009), caught),
    Case("healthy, the level doubles at the start, 20 req/s", TrafficModel(20, shift=2.0),
         false_rollbacks),
    Case("healthy, the level triples at the start, 20 req/s", TrafficModel(20, shift=3.0),
         false_rollbacks),
    Case("+50% p99 latency, 20 req/s", TrafficModel(20, canary_latency=1.5), caught, "same work"),
    Case("+50% p99 latency, 5 req/s", TrafficModel(5, canary_latency=1.5), caught, "same work"),
    Case("v3: 3x v1's latency by design, healthy, 20 req/s", TrafficModel(20, canary_latency=3.0),
         promoted, "v3"),
    Case("v3: and twice as slow as that, 20 req/s", TrafficModel(20, canary_latency=6.0), caught,
         "v3"),
)  # fmt: skip


def load_spec(path: Path) -> Canary:
    doc = next(d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "Canary")
    return Canary.model_validate(doc["spec"])


def for_case(spec: Canary, case: Case) -> tuple[Canary, str]:
    """``spec`` as the case judges it: latency with tolerance 1 for a canary that does the
    stable's work, as shipped otherwise."""
    if case.latency != "same work":
        return spec, ""
    others = tuple(m for m in spec.metric_checks() if m.name != "request-duration")
    metrics = (*others, MetricCheck(name="request-duration"))
    return spec.model_copy(
        update={"analysis": replace_metrics(spec, metrics)}
    ), " (latency tolerance 1)"


def replace_metrics(spec: Canary, metrics: tuple[MetricCheck, ...]) -> object:
    return spec.analysis.model_copy(update={"metrics": metrics})


def without_adaptive(spec: Canary) -> Canary | None:
    ramp = spec.strategy.canary
    if ramp is None or not getattr(ramp, "adaptive", False):
        return None
    strategy = spec.strategy.model_copy(
        update={"canary": ramp.model_copy(update={"adaptive": False})}
    )
    return spec.model_copy(update={"strategy": strategy})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=SHIPPED)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--case", action="append", choices=[c.name for c in CASES])
    parser.add_argument("--fixed", action="store_true", help="add a column: ours without adaptive")
    args = parser.parse_args(argv)
    ours = load_spec(args.spec)
    columns: list[tuple[str, Callable[[Case], tuple[Canary, str]]]] = [
        ("ours", lambda case: for_case(ours, case)),
    ]
    fixed = without_adaptive(ours)
    if args.fixed and fixed is not None:
        plain = fixed
        columns.append(("ours, fixed plan", lambda case: for_case(plain, case)))
    columns.append(("Flagger-style", lambda case: (flagger_style(ours), "")))
    began = time.perf_counter()
    print("| case | " + " | ".join(name for name, _ in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for case in CASES:
        if args.case and case.name not in args.case:
            continue
        cells = []
        for _, pick in columns:
            spec, note = pick(case)
            outcomes = run_many(spec, case.model, args.runs, args.seed, jobs=args.jobs)
            cells.append(case.show(summarize(outcomes)) + note)
        print(f"| {case.name} | " + " | ".join(cells) + " |", flush=True)
    spent = time.perf_counter() - began
    print(
        f"\n{args.runs} rollouts per cell, seed {args.seed}, {args.spec}, {spent:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

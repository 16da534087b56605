"""``canarymesh rollout simulate``: what a Canary would do at the traffic you expect, before you
run it. No mesh needed.

Plays the Canary (``-f``) many times against simulated traffic (:mod:`canarymesh.simulation`):
the real controller and the real state machine (``canarymesh.rollout.machine.advance``), a
Prometheus that answers their queries, ``--rps`` requests a second, the stable failing
``--error-rate`` of them and the canary ``--canary-error-rate``, optionally slower, with the
stable's history before the rollout. Prints how often the rollout was promoted or rolled back,
how long the decision took, and how many failed requests the canary served before it (a
rollout's real cost), side by side with a Flagger-style threshold plan on the same traffic; and
what the plan can and cannot see at that traffic.

    canarymesh rollout simulate -f canary.yaml --rps 20 --error-rate 0.5% \\
        --canary-error-rate 2.5% --runs 500
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from canarymesh.api.canary import Canary
from canarymesh.cli.canary_documents import canary_documents
from canarymesh.cli.common import handle_errors
from canarymesh.errors import ConfigError
from canarymesh.simulation.rollouts import simulate_rollout
from canarymesh.simulation.summary import Summary, flagger_style, run_many, summarize
from canarymesh.simulation.traffic import Bursts, Spikes, TrafficModel

__all__ = ["parse_share", "simulate_command"]


def parse_share(text: str) -> float:
    """``0.5%`` or ``0.005`` -> 0.005; a ConfigError for anything else, or outside 0..1."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError(f"{text!r} is not a rate (write 0.5% or 0.005)") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ConfigError(f"{text!r} is not a rate between 0 and 100%")
    return value


def _canary(path: Path) -> Canary:
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    docs, warnings = canary_documents(text, str(path))
    for line in warnings:
        click.echo(line, err=True)
    if len(docs) != 1:
        raise ConfigError(f"{path}: simulate one Canary at a time (found {len(docs)})")
    spec = Canary.model_validate(docs[0].get("spec") or {})
    custom = [c.name for c in spec.metric_checks() if c.query is not None]
    if custom:
        # The simulated Prometheus knows Istio's standard series only.
        click.echo(f"note: custom metrics are not simulated: {', '.join(custom)}", err=True)
        metrics = tuple(c for c in spec.metric_checks() if c.query is None)
        spec = spec.model_copy(
            update={"analysis": spec.analysis.model_copy(update={"metrics": metrics})}
        )
    return spec


@click.command("simulate")
@click.option(
    "-f",
    "--filename",
    "path",
    required=True,
    type=click.Path(path_type=Path),
    help="The Canary to simulate (ours or Flagger's; - for stdin).",
)
@click.option(
    "--rps",
    type=click.FloatRange(min=0.1, max=10_000),
    default=20.0,
    show_default=True,
    help="Requests per second to the service, in all.",
)
@click.option(
    "--error-rate",
    default="0.5%",
    show_default=True,
    help="The stable's share of failed (5xx) requests.",
)
@click.option(
    "--canary-error-rate",
    default=None,
    help="The canary's share of failed requests [default: the stable's].",
)
@click.option(
    "--latency",
    "median_ms",
    type=click.FloatRange(min=0.01),
    default=20.0,
    show_default=True,
    help="The stable's median latency in ms (lognormal, sigma 0.5).",
)
@click.option(
    "--canary-latency",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="The canary's durations are this many times the stable's.",
)
@click.option(
    "--canary-extra-ms",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="...plus this many ms (a version that does more work).",
)
@click.option(
    "--bursts",
    is_flag=True,
    help="One replica of either side fails half its requests for 5 s, every 5 min on average.",
)
@click.option(
    "--spikes",
    is_flag=True,
    help="Both versions fail 10x as often and are 2x slower for 10 s, every 2 min on average.",
)
@click.option(
    "--history",
    type=click.IntRange(min=0),
    default=None,
    help="Seconds of the stable's traffic before the rollout [default: the Canary's "
    "analysis.history].",
)
@click.option("--runs", type=click.IntRange(min=1, max=100_000), default=200, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes to run in [default: the number of CPUs].",
)
@click.option("--no-baseline", is_flag=True, help="Skip the Flagger-style comparison.")
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text")
@handle_errors
def simulate_command(
    path: Path,
    rps: float,
    error_rate: str,
    canary_error_rate: str | None,
    median_ms: float,
    canary_latency: float,
    canary_extra_ms: float,
    bursts: bool,
    spikes: bool,
    history: int | None,
    runs: int,
    seed: int,
    jobs: int | None,
    no_baseline: bool,
    output: str,
) -> None:
    """Simulate a Canary many times at a traffic you expect, beside a Flagger-style plan."""
    spec = _canary(path)
    stable = parse_share(error_rate)
    canary = parse_share(canary_error_rate) if canary_error_rate is not None else stable
    seconds = history if history is not None else int(spec.history().total_seconds())
    model = TrafficModel(
        rps=rps,
        stable_errors=stable,
        canary_errors=canary,
        median_ms=median_ms,
        canary_latency=canary_latency,
        canary_extra_ms=canary_extra_ms,
        bursts=Bursts() if bursts else None,
        spikes=Spikes() if spikes else None,
        history=seconds,
    )
    workers = jobs or os.cpu_count() or 1
    plans = [("this Canary", spec)]
    if not no_baseline:
        plans.append(("Flagger-style", flagger_style(spec)))
    if output == "text":
        click.echo(f"simulating {runs} rollouts of each plan at {rps:g} req/s...", err=True)
    results = []
    for name, plan in plans:
        summary = summarize(run_many(plan, model, runs, seed, jobs=workers))
        results.append((name, plan, summary))
    sight = simulate_rollout(spec, model, seed).warnings
    report = _report(model, results, sight)
    if output == "json":
        click.echo(json.dumps(report, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(report, sort_keys=False, width=100), nl=False)
    else:
        _print(model, results, sight)


def _report(
    model: TrafficModel, results: list[tuple[str, Canary, Summary]], warnings: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "traffic": {
            "rps": model.rps,
            "stableErrorRate": model.stable_errors,
            "canaryErrorRate": model.canary_errors,
            "medianMs": model.median_ms,
            "canaryLatency": model.canary_latency,
            "canaryExtraMs": model.canary_extra_ms,
            "bursts": model.bursts is not None,
            "spikes": model.spikes is not None,
            "historySeconds": model.history,
        },
        "plans": [
            {
                "plan": name,
                "runs": s.runs,
                "rolledBack": s.rolled_back,
                "promoted": s.promoted,
                "undecided": s.undecided,
                "medianSeconds": _finite(s.median_seconds),
                "p90Seconds": _finite(s.p90_seconds),
                "medianRollbackSeconds": _finite(s.median_rollback_seconds),
                "medianPromotionSeconds": _finite(s.median_promotion_seconds),
                "rolledBackWithin30s": s.rolled_back_within_30s,
                "meanFailedRequests": s.mean_failed,
                "meanExcessFailedRequests": s.mean_excess_failed,
            }
            for name, _, s in results
        ],
        "planWarnings": list(warnings),
    }


def _print(
    model: TrafficModel, results: list[tuple[str, Canary, Summary]], warnings: tuple[str, ...]
) -> None:
    console = Console()
    slower = ""
    if model.canary_latency != 1.0 or model.canary_extra_ms:
        slower = f", {model.canary_latency:g}x the stable's latency"
        slower += f" + {model.canary_extra_ms:g} ms" if model.canary_extra_ms else ""
    console.print(
        f"{model.rps:g} req/s; stable errors {100 * model.stable_errors:.3g}%, canary "
        f"{100 * model.canary_errors:.3g}%{slower}"
        f"{'; bursts' if model.bursts else ''}{'; spikes' if model.spikes else ''}; "
        f"{model.history}s of the stable's history"
    )
    table = Table(show_edge=False)
    table.add_column("")
    for name, _, _ in results:
        table.add_column(name, justify="right")
    rows: list[tuple[str, Callable[[Summary], str]]] = [
        ("rolled back", lambda s: f"{s.share(s.rolled_back):.1f}%"),
        ("promoted", lambda s: f"{s.share(s.promoted):.1f}%"),
        ("undecided (1 h)", lambda s: f"{s.share(s.undecided):.1f}%"),
        ("rolled back within 30 s", lambda s: f"{s.share(s.rolled_back_within_30s):.1f}%"),
        ("time to roll back (median)", lambda s: _secs(s.median_rollback_seconds)),
        ("time to promote (median)", lambda s: _secs(s.median_promotion_seconds)),
        ("time to decide (median / p90)",
         lambda s: f"{_secs(s.median_seconds)} / {_secs(s.p90_seconds)}"),
        ("failed requests before the decision (mean)", lambda s: f"{s.mean_failed:.1f}"),
        ("  of them beyond the stable's rate", lambda s: f"{s.mean_excess_failed:.1f}"),
    ]  # fmt: skip
    for label, cell in rows:
        table.add_row(label, *(cell(s) for _, _, s in results))
    console.print(table)
    for warning in warnings:
        console.print(f"plan warning: {warning}", style="yellow")


def _secs(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value

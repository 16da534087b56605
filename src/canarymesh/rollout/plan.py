"""A Canary spec expanded into the concrete steps a rollout walks through. Pure; called by
:mod:`canarymesh.rollout.machine` on every decision (the spec may have been edited) and by
:mod:`canarymesh.views` to draw the steps.

* ``canary``: its steps (or stepWeight up to maxWeight, or the default plan), as written.
* ``blueGreen``: 0% of the live traffic (the A/B match still reaches the canary, for the load
  generator and testers), analysis for ``analysisDuration``, then promotion switches at once.
* ``mirror``: ``percentage`` of the live requests copied to the canary, analysis, then switch.
* ``skipAnalysis`` drops the analysis steps (Flagger's field, for emergencies).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from canarymesh.api.canary import Canary, CanaryStep
from canarymesh.api.durations import parse_duration

__all__ = ["Step", "build_plan"]

StepKind = Literal["setWeight", "setMirror", "pause", "analysis"]


@dataclass(frozen=True, slots=True)
class Step:
    """``setWeight`` (value: percent), ``setMirror`` (value: percent), ``pause`` or
    ``analysis`` (duration; a pause without one waits for a person)."""

    kind: StepKind
    value: float = 0.0
    duration: datetime.timedelta | None = None

    def describe(self) -> str:
        if self.kind == "setWeight":
            return f"setWeight {self.value:g}%"
        if self.kind == "setMirror":
            return f"mirror {self.value:g}%"
        if self.duration is None:
            return f"{self.kind} (until resumed)"
        return f"{self.kind} {_short(self.duration)}"


def build_plan(spec: Canary) -> tuple[Step, ...]:
    interval = spec.interval()
    strategy = spec.strategy_name()
    if strategy == "blueGreen" and spec.strategy.blue_green is not None:
        duration = _parse(spec.strategy.blue_green.analysis_duration, interval)
        steps: tuple[Step, ...] = (Step("analysis", duration=duration),)
    elif strategy == "mirror" and spec.strategy.mirror is not None:
        mirror = spec.strategy.mirror
        duration = _parse(mirror.analysis_duration, interval)
        steps = (Step("setMirror", mirror.percentage), Step("analysis", duration=duration))
    else:
        steps = tuple(_expand(step, interval) for step in spec.steps())
    if spec.skip_analysis:
        steps = tuple(step for step in steps if step.kind != "analysis")
    return steps


def _expand(step: CanaryStep, interval: datetime.timedelta) -> Step:
    if step.set_weight is not None:
        return Step("setWeight", float(step.set_weight))
    if step.pause is not None:
        duration = step.pause.duration
        return Step("pause", duration=None if duration is None else _parse(duration, interval))
    duration = step.analysis.duration if step.analysis is not None else None
    return Step("analysis", duration=interval if duration is None else _parse(duration, interval))


def _parse(text: str, fallback: datetime.timedelta) -> datetime.timedelta:
    parsed = parse_duration(text)
    return parsed if parsed is not None and parsed > datetime.timedelta(0) else fallback


def _short(duration: datetime.timedelta) -> str:
    seconds = int(duration.total_seconds())
    minutes, rest = divmod(seconds, 60)
    if minutes and rest:
        return f"{minutes}m{rest}s"
    return f"{minutes}m" if minutes else f"{rest}s"

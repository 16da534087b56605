"""``canarymesh rollout get``'s screen: the pure :class:`~canarymesh.views.rollout.RolloutView`
drawn with rich (the rollout's head line, its weights, steps, metrics and decision log)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from canarymesh.views.rollout import RolloutView

__all__ = ["render"]

_COLORS = {"Succeeded": "green", "Failed": "red", "RollingBack": "red", "Paused": "yellow"}


def render(view: RolloutView) -> RenderableType:
    color = _COLORS.get(view.phase, "cyan")
    what = f"{view.strategy} of {view.host}: {view.stable_subset} -> {view.canary_subset}"
    if view.members:
        moved = ", ".join(f"{host} {stable} -> {canary}" for host, stable, canary in view.members)
        what = f"release group through {view.host}: {moved}"
    head = Text.assemble(
        (f"{view.name}", "bold"),
        f"  {what}  ",
        (view.phase, f"bold {color}"),
        f"  step {view.step}  judge {view.judge}",
    )
    split = "weights: canary" if not view.members else "sessions: in the slice"
    weights = (
        f"{split} {view.canary_weight}% / {'stable' if not view.members else 'others'} "
        f"{view.stable_weight}%"
        f"{f', mirror {view.mirror:g}%' if view.mirror else ''}"
        f"{', A/B match to canary' if view.ab_match else ''}"
        f"  ({'applied by every proxy' if view.weights_verified else 'waiting for the proxies'})"
    )
    parts: list[RenderableType] = [head, Text(weights), _steps(view), _metrics(view), _log(view)]
    return Group(*parts)


def _steps(view: RolloutView) -> Table:
    table = Table(title="steps", title_justify="left", show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("status")
    for row in view.steps:
        style = "bold reverse" if row.status == "current" else "dim" * (row.status != "done")
        table.add_row(str(row.number), row.description, row.status, style=style or None)
    return table


def _metrics(view: RolloutView) -> Table:
    table = Table(title="metrics", title_justify="left", show_edge=False)
    for column in ("metric", "verdict", "canary", "stable", "limit", "n", "p"):
        table.add_column(column)
    for m in view.metrics:
        table.add_row(m.metric, m.verdict, _num(m.canary), _num(m.stable), m.limit,
                      str(m.samples), _num(m.p_value))  # fmt: skip
    return table


def _log(view: RolloutView) -> Table:
    table = Table(title="decisions", title_justify="left", show_edge=False)
    table.add_column("time")
    table.add_column("phase")
    table.add_column("reason", overflow="fold")
    for line in view.log[-15:]:
        table.add_row(line.at, line.phase, line.reason)
    return table


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"

"""``canarymesh rollout get``'s (and ``status``') screen: the pure
:class:`~canarymesh.views.rollout.RolloutView` drawn with rich (the rollout's head line, its
weights, steps, what the plan can see at the stable's traffic, each metric's verdict with its
evidence, the decision log)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from canarymesh.views.rollout import RolloutView

__all__ = ["render"]

_COLORS = {"Succeeded": "green", "Failed": "red", "RollingBack": "red", "Paused": "yellow"}


def render(view: RolloutView) -> RenderableType:
    """The rollout as rich renderables."""
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
    parts: list[RenderableType] = [head, Text(weights), _steps(view)]
    if view.baseline or view.sight or view.warnings:
        parts.append(_sight(view))
    parts += [_metrics(view), *_settle(view), _log(view)]
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


def _sight(view: RolloutView) -> RenderableType:
    mode = "adaptive" if view.adaptive else "fixed"
    title = f"what the plan ({mode}) can see"
    if view.traffic_rps is not None:
        title += f" at {view.traffic_rps:.3g} req/s"
    table = Table(title=title, title_justify="left", show_edge=False)
    for column in ("metric", "stable bad", "effect", "smallest caught (90%) by step",
                   "catches effect", "median", "promote"):  # fmt: skip
        table.add_column(column)
    for row in view.sight:
        by_step = ", ".join(f"{step}: {_ratio(v)}" for step, v in row.smallest) or "-"
        table.add_row(row.metric, f"{row.bad_percent:.2g}%", f"{row.effect_size:g}x", by_step,
                      f"{100 * row.catch:.0f}%", _seconds(row.median_seconds),
                      _seconds(row.promote_seconds))  # fmt: skip
    lines: list[RenderableType] = [table]
    if view.baseline:
        lines.insert(0, Text(view.baseline, style="dim"))
    lines += [Text(f"warning: {w}", style="yellow") for w in view.warnings]
    return Group(*lines)


def _metrics(view: RolloutView) -> Table:
    table = Table(title="metrics", title_justify="left", show_edge=False)
    for column in ("metric", "verdict", "canary", "stable", "ratio (CI)", "limit", "n", "p"):
        table.add_column(column)
    for m in view.metrics:
        table.add_row(m.metric, m.verdict, _num(m.canary), _num(m.stable), m.ratio, m.limit,
                      str(m.samples), _num(m.p_value))  # fmt: skip
    return table


def _settle(view: RolloutView) -> list[RenderableType]:
    return [
        Text(f"{m.metric}: {m.explanation.settle} would settle it", style="dim")
        for m in view.metrics
        if m.explanation is not None and m.explanation.settle
    ]


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}x" if value >= 10 else f"{value:.2g}x"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}s" if value < 120 else f"{value / 60:.1f}m"


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

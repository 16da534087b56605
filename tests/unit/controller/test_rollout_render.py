"""``canarymesh rollout get`` renders the pure view: the current step highlighted, the weights,
each metric against its limit, the decision log with its reasons."""

from __future__ import annotations

import datetime
import io

from rich.console import Console

from canarymesh.analysis.verdict import MetricVerdict, VerdictPhase
from canarymesh.api.canary import Canary
from canarymesh.cli.rollout_render import render
from canarymesh.rollout.actions import Weights
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.views.rollout import rollout_view

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
SPEC = Canary.model_validate(
    {
        "target": {"host": "reviews", "virtualService": "reviews", "stableSubset": "v1",
                   "canarySubset": "v3"},
        "strategy": {"canary": {"steps": [{"setWeight": 10}, {"analysis": {"duration": "1m"}}]}},
        "analysis": {"judge": "threshold", "metrics": [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}}]},
    }
)  # fmt: skip


def test_the_view_shows_step_weights_metric_limit_and_reasons() -> None:
    state = (
        CanaryState.initial("reviews", "v1", NOW)
        .with_weights(Weights(10, "v1"))
        .with_verified(NOW)
        .with_step(1, NOW)
        .with_phase(Phase.PROGRESSING, "step 2/2 (analysis 1m)", NOW)
    )
    verdict = MetricVerdict("request-success-rate", VerdictPhase.SUCCESSFUL,
                            "request-success-rate canary 99.50% (n=200) within min 99%",
                            99.5, samples=200)  # fmt: skip
    state = state.with_analysis({}, (verdict,), NOW, failed=0, passed=1)
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None, force_terminal=False)
    console.print(render(rollout_view(state, SPEC)))
    text = out.getvalue()
    assert "Progressing" in text and "step 2/2" in text
    assert "canary 10% / stable 90%  (applied by every proxy)" in text
    assert "analysis 1m" in text and "current" in text
    assert "request-success-rate" in text and "99.5" in text and "min 99" in text
    assert "12:00:00" in text and "step 2/2 (analysis 1m)" in text


def test_status_shows_what_the_plan_can_see_and_each_verdict_s_evidence() -> None:
    from tests.unit.rollout.harness import Controller, spec

    statistical = spec(strategy={"canary": {"adaptive": True, "steps": [
        {"setWeight": 10}, {"analysis": {"duration": "1m"}}, {"setWeight": 50},
        {"analysis": {"duration": "1m"}}]}})  # fmt: skip
    controller = Controller(statistical)
    for _ in range(20):  # the harness' windows last 30 s: the first is judged at 32 s
        controller.tick()
        controller.clock.advance(2)
    view = rollout_view(controller.state(), statistical)
    out = io.StringIO()
    Console(file=out, width=140, color_system=None, force_terminal=False).print(render(view))
    text = out.getvalue()
    assert "stable before the rollout: 12000 requests in 600s (20.0 req/s), 0.50% errors" in text
    assert "what the plan (adaptive) can see at 20 req/s" in text
    assert "smallest caught (90%) by step" in text and "2: " in text and "4: " in text
    assert "ratio (CI)" in text and "p < 0.0075" in text and "p < 0.0025" in text
    assert "0x (0x-20x)" in text  # no canary error in 60 requests: at most 20x, always valid
    data = view.to_json()
    errors = next(m for m in data["metrics"] if m["metric"] == "request-success-rate")  # type: ignore[union-attr]
    assert errors["explanation"]["alpha"] == 0.0075  # type: ignore[index]
    assert data["plan"]["sight"][0]["metric"] == "request-success-rate"  # type: ignore[index]

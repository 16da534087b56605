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

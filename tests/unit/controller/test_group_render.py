"""``canarymesh rollout get`` for a release group: the members and their versions in the head
line, the slice's share of sessions, each part's verdict against its own limit; the JSON view
lists the members."""

from __future__ import annotations

import datetime
import io

from rich.console import Console

from canarymesh.analysis.verdict import MetricVerdict, VerdictPhase
from canarymesh.cli.rollout_render import render
from canarymesh.rollout.actions import Weights
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.views.rollout import rollout_view
from tests.unit.routing.group_golden import canary_of, load_case

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def test_a_group_shows_its_members_the_slice_and_each_part() -> None:
    data = load_case("slice-20")
    data["canary"]["analysis"] = {
        "judge": "threshold",
        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
    }
    spec = canary_of(data)
    state = (
        CanaryState.initial("reviews-ratings", "stable", NOW)
        .with_weights(Weights(20, "stable"))
        .with_verified(NOW)
        .with_phase(Phase.PROGRESSING, "step 2/2 (analysis 1m)", NOW)
    )
    reason = "release group member ratings: 50% < min 99%"
    verdict = MetricVerdict("ratings/request-success-rate", VerdictPhase.FAILED, reason, 50.0)
    state = state.with_analysis({}, (verdict,), NOW, failed=1, passed=0)
    view = rollout_view(state, spec)
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render(view))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "release group through productpage: reviews v2 -> v3, ratings v1 -> v2" in text
    assert "sessions: in the slice 20% / others 80%" in text
    assert "ratings/request-success-rate" in text and "min 99" in text
    assert view.to_json()["group"] == [
        {"host": "reviews", "stableSubset": "v2", "canarySubset": "v3"},
        {"host": "ratings", "stableSubset": "v1", "canarySubset": "v2"},
    ]

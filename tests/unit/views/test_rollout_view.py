"""The rollout view model: what ``rollout get`` and the dashboard both show."""

from __future__ import annotations

import json

from canarymesh.rollout.phases import Command, Phase
from canarymesh.views.rollout import rollout_view
from tests.unit.rollout.harness import Controller, failing, spec

SPEC = spec(analysis={"interval": "15s"})


def test_a_rollout_in_progress_shows_steps_weights_metrics_and_log() -> None:
    controller = Controller(SPEC)
    for _ in range(30):
        controller.tick()
        controller.clock.advance(3)
    state = controller.state()
    view = rollout_view(state, SPEC)
    assert (view.name, view.phase, view.strategy, view.judge) == (
        "reviews", "Progressing", "canary", "statistical",
    )  # fmt: skip
    assert (view.stable_subset, view.canary_subset, view.host) == ("v1", "v3", "reviews")
    assert view.canary_weight + view.stable_weight == 100
    assert [s.description for s in view.steps] == [
        "setWeight 10%", "analysis 1m", "setWeight 25%", "analysis 1m", "setWeight 50%",
        "analysis 2m",
    ]  # fmt: skip
    current = [s.number for s in view.steps if s.status == "current"]
    assert current == [state.step + 1]
    assert all(s.status == "done" for s in view.steps[: state.step])
    assert {m.metric for m in view.metrics} == {"request-success-rate", "request-duration"}
    assert all(m.limit == "p < 0.005" for m in view.metrics)
    assert view.log[0].phase == "Initializing"
    assert view.message == state.message
    assert view.failure_limit == 5


def test_json_is_what_the_dashboard_serves() -> None:
    controller = Controller(SPEC, traffic=failing)
    final = controller.run()
    data = rollout_view(final, SPEC).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["phase"] == "Failed"
    assert data["weights"] == {"canary": 0, "stable": 100, "mirror": 0.0, "abMatch": False,
                               "verified": True}  # fmt: skip
    assert data["message"].startswith("rolled back: request-success-rate canary errors")
    assert data["log"][-1]["phase"] == "Failed"


def test_steps_a_person_skipped_by_promoting_show_as_skipped() -> None:
    controller = Controller(SPEC)
    for _ in range(5):
        controller.tick()
        controller.clock.advance(1)
    decision = controller.tick(Command.PROMOTE)
    assert decision.state.phase is Phase.PROMOTING
    view = rollout_view(decision.state, SPEC)
    assert [s.status for s in view.steps][-1] == "skipped"

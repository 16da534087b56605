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
    # alpha 0.01 shared 3 to 1: errors are the sparser signal.
    limits = {m.metric: m.limit for m in view.metrics}
    assert limits == {"request-success-rate": "p < 0.0075", "request-duration": "p < 0.0025"}
    errors = next(m for m in view.metrics if m.metric == "request-success-rate")
    assert errors.explanation is not None and errors.explanation.canary_requests > 0
    assert errors.ratio.endswith(")") and "(" in errors.ratio
    # What the plan can see at the stable's 20 req/s, said before the first step.
    assert view.baseline.startswith("stable before the rollout: 12000 requests")
    assert [row.metric for row in view.sight] == ["request-success-rate", "request-duration"]
    assert [s for s, _ in view.sight[0].smallest] == ["2", "4", "6"]
    assert view.traffic_rps == 20.0
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
    errors = next(m for m in data["metrics"] if m["metric"] == "request-success-rate")
    assert errors["verdict"] == "Failed"
    assert errors["explanation"]["canary"] == {"requests": 60, "bad": 6}
    assert errors["explanation"]["pValue"] < errors["explanation"]["alpha"] == 0.0075
    assert data["plan"]["rps"] == 20.0 and len(data["plan"]["sight"]) == 2


def test_steps_a_person_skipped_by_promoting_show_as_skipped() -> None:
    controller = Controller(SPEC)
    for _ in range(5):
        controller.tick()
        controller.clock.advance(1)
    decision = controller.tick(Command.PROMOTE)
    assert decision.state.phase is Phase.PROMOTING
    view = rollout_view(decision.state, SPEC)
    assert [s.status for s in view.steps][-1] == "skipped"

"""Whole rollouts through the miniature controller of ``harness.py``: the fakes of the ports,
a fake clock, state persisted as JSON after every decision."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from canarymesh.analysis.windows import Counts
from canarymesh.rollout.actions import FinalizeRoutes, SetWeights, Weights
from canarymesh.rollout.machine import Observation, advance
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from tests.unit.rollout.harness import Controller, counts, failing, spec

DEFAULT = spec(analysis={"interval": "15s"})


def test_a_healthy_canary_is_promoted_and_becomes_the_stable() -> None:
    controller = Controller(DEFAULT)
    final = controller.run()
    assert final.phase is Phase.SUCCEEDED
    assert final.message == "promoted: v3 is the stable subset"
    assert controller.router.finalized == "v3"
    assert controller.router.weights == Weights(0, "v3")
    set_weights = [a.weights.canary for a in controller.executed if isinstance(a, SetWeights)]
    assert sorted(set(set_weights)) == [10, 25, 50, 100]
    assert set_weights == sorted(set_weights)  # the ramp only goes up
    # 1 + 1 + 2 minutes of analysis, each clock started after the weights were verified.
    elapsed = (controller.clock.now() - final.started_at).total_seconds()
    assert 240 <= elapsed <= 260


def test_a_failing_canary_is_rolled_back_early_and_all_traffic_returns() -> None:
    controller = Controller(DEFAULT, traffic=failing)
    final = controller.run()
    assert final.phase is Phase.FAILED
    assert final.message.startswith("rolled back: request-success-rate canary errors 10.")
    assert "< alpha 0.0075" in final.message
    assert controller.router.weights == Weights(0, "v1")
    assert not any(isinstance(a, FinalizeRoutes) for a in controller.executed)
    elapsed = (controller.clock.now() - final.started_at).total_seconds()
    assert elapsed < 120  # well before the 4 minutes a healthy rollout takes


def test_metrics_unreachable_holds_then_the_deadline_rolls_back() -> None:
    controller = Controller(spec(progressDeadline="3m", analysis={"interval": "15s"}))
    for _ in range(10):
        controller.tick()
        controller.clock.advance(1)
    assert controller.state().phase is Phase.PROGRESSING
    controller.metrics_online = False
    held = [controller.tick() for _ in range(3)]
    assert held[-1].reason.startswith("metrics source unreachable: holding at step 2/6")
    steps = {d.state.step for d in held}
    assert len(steps) == 1
    final = controller.run()
    assert final.phase is Phase.FAILED
    assert "progressDeadline 180s" in final.message


def test_a_controller_killed_mid_rollout_resumes_at_the_same_step() -> None:
    steady = Controller(DEFAULT)
    for _ in range(40):
        steady.tick()
        steady.clock.advance(3)
    saved = json.loads(steady.store.texts["reviews"])
    before = steady.state()
    assert before.phase is Phase.PROGRESSING and before.step > 1
    # A new controller process: only the stored state survives.
    restarted = Controller(DEFAULT, clock=steady.clock, store=steady.store)
    restarted.router = steady.router
    resumed = restarted.state()
    assert resumed == before
    assert resumed.to_dict() == saved
    decision = restarted.tick()
    assert decision.state.step >= before.step
    assert restarted.run().phase is Phase.SUCCEEDED


def test_state_round_trips_through_json_at_every_decision() -> None:
    controller = Controller(DEFAULT, traffic=failing)
    controller.run()
    for decision in controller.decisions:
        text = json.dumps(decision.state.to_dict())
        assert CanaryState.from_dict(json.loads(text)) == decision.state


def test_a_restart_after_the_rollback_decision_still_returns_traffic() -> None:
    controller = Controller(DEFAULT, traffic=failing)
    while controller.tick().state.phase is not Phase.ROLLING_BACK:
        controller.clock.advance(5)
    state = controller.state()
    assert state.weights == Weights(0, "v1")
    # The router lost the change (the process died before executing it): it is sent again.
    controller.router.weights = Weights(25, "v1")
    again = advance(state, Observation(DEFAULT, weights_verified=False), controller.clock.now())
    assert again.actions == (SetWeights(Weights(0, "v1")),)
    assert dataclasses.replace(again.state, history=()) == dataclasses.replace(state, history=())


def test_the_decision_log_of_a_rolled_back_canary_reads_with_its_numbers() -> None:
    final = Controller(DEFAULT, traffic=failing).run()
    log = [(h.at.strftime("%M:%S"), h.phase.value, h.reason) for h in final.history]
    verdict = (
        "request-success-rate canary errors 10.00% vs stable 0.37% (n=60/540, 12000 before "
        "the rollout), ratio 20x (99.25% CI 3x-60x), sequential p=6.5e-05 < alpha 0.0075"
    )
    assert log[0] == ("00:00", "Initializing", "plan: stable before the rollout: 12000 "
                      "requests in 600s (20.0 req/s), 0.50% errors")  # fmt: skip
    warning = "plan warning: request-success-rate: at 20 req/s this plan catches a 3x "
    assert log[1][2].startswith(warning + "regression only 71% of the time by its end")
    assert log[3:] == [
        ("00:00", "Initializing", "waiting for the managed routes to be reconciled"),
        ("00:01", "Progressing", "routes ready: starting step 1"),
        ("00:01", "Progressing", "step 1/6 (setWeight 10%): setting canary 10% / stable 90%"),
        ("00:02", "Progressing", "step 2/6 (analysis 1m)"),
        ("00:17", "Progressing", "step 2/6 (analysis 1m) holding: request-success-rate canary "
         "errors 10.00% vs stable 0.37% (n=30/270, 12000 before the rollout), ratio 20x (99.25% "
         "CI 0.75x-60x), sequential p=0.012: not enough canary requests yet (30 < 50); 20 more "
         "canary requests (~10s at 2.0 req/s) would settle it"),
        ("00:32", "RollingBack", f"{verdict}: rolling back"),
        ("00:33", "Failed", f"rolled back: {verdict}"),
]  # fmt: skip


ADAPTIVE = spec(
    strategy={"canary": {"adaptive": True, "steps": [
        {"setWeight": 10}, {"analysis": {"duration": "2m"}},
        {"setWeight": 25}, {"analysis": {"duration": "2m"}},
        {"setWeight": 50}, {"analysis": {"duration": "4m"}}]}},
    analysis={"interval": "2s", "metrics": [{"name": "request-success-rate"}]},
    progressDeadline="20m",
)  # fmt: skip


def _second_by_second(
    error_rate: float, rps: float = 20
) -> Callable[[int, float], tuple[Counts, Counts]]:
    """``rps`` split by the weight, the canary failing ``error_rate`` of its requests, the
    stable 0.5% (as whole requests spread over the seconds)."""
    seen = {"canary": 0.0, "stable": 0.0}
    sent = {"canary": 0.0, "stable": 0.0}  # fractional requests, so thin traffic still arrives

    def traffic(weight: int, seconds: float) -> tuple[Counts, Counts]:
        shares = {"canary": weight / 100, "stable": 1 - weight / 100}
        got, failed = [], []
        for side, rate in (("canary", error_rate), ("stable", 0.005)):
            before = sent[side]
            sent[side] += rps * seconds * shares[side]
            n = int(sent[side]) - int(before)
            before = seen[side]
            seen[side] += n * rate
            got.append(n)
            failed.append(int(seen[side]) - int(before))
        return counts(got[0], failed[0]), counts(got[1], failed[1])

    return traffic


def test_adaptive_mode_promotes_a_clean_canary_long_before_the_plan_ends() -> None:
    controller = Controller(ADAPTIVE, traffic=_second_by_second(0.0))
    final = controller.run()
    assert final.phase is Phase.SUCCEEDED
    elapsed = (controller.clock.now() - final.started_at).total_seconds()
    assert elapsed < 180  # the plan's steps would take 8 minutes
    gates = [h.reason for h in final.history if "gate cleared" in h.reason]
    assert len(gates) == 3 and "rules out 30x" in gates[0] and "rules out 3x" in gates[-1]
    weights = [a.weights.canary for a in controller.executed if isinstance(a, SetWeights)]
    assert max(w for w in weights if w < 100) == 50  # never above the plan's top weight


def test_adaptive_mode_never_lets_thin_traffic_time_out_a_canary_no_metric_found_worse() -> None:
    # 5 req/s, the canary at 1% errors against the stable's 0.5% (inside the 3x effect size):
    # the last gate does not clear and the evidence does not lean far enough to promote, so
    # holding until the 20-minute deadline rolled back a canary the judge never found worse.
    controller = Controller(ADAPTIVE, traffic=_second_by_second(0.01, rps=5))
    final = controller.run(limit=10000)
    assert final.phase is Phase.SUCCEEDED, final.message
    moved_on = [h.reason for h in final.history if "half the progress deadline" in h.reason]
    assert moved_on and "no metric against the canary" in moved_on[0]


def test_adaptive_mode_holds_a_suspicious_canary_past_its_steps_and_rolls_it_back() -> None:
    controller = Controller(ADAPTIVE, traffic=_second_by_second(0.02))
    final = controller.run(limit=5000)
    assert final.phase is Phase.FAILED
    assert "request-success-rate canary errors" in final.message
    assert any("adaptive" in h.reason or "holding" in h.reason for h in final.history)

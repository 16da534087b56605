"""Every phase transition of ``advance`` as a table: a state, an observation and a time in; the
phase, the actions and the reason out. A fake clock (plain datetimes), no I/O."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass

import pytest

from canarymesh.analysis.baseline import Baseline
from canarymesh.api.canary import Canary
from canarymesh.rollout.actions import (
    FinalizeRoutes,
    ReconcileRoutes,
    RunWebhook,
    SetWeights,
    StartLoad,
    StopLoad,
    Weights,
)
from canarymesh.rollout.machine import Observation, WebhookResult, advance
from canarymesh.rollout.phases import Command, Phase
from canarymesh.rollout.state import CanaryState
from tests.unit.rollout.harness import at, counts, kinds, spec, window

PLAN = {
    "strategy": {
        "canary": {
            "steps": [
                {"setWeight": 10},
                {"analysis": {"duration": "1m"}},
                {"pause": {}},
                {"setWeight": 50},
                {"pause": {"duration": "30s"}},
            ]
        }
    },
    "analysis": {"interval": "30s", "minRequests": 50},
    "webhooks": [
        {"name": "smoke", "type": "pre-rollout", "url": "http://t/smoke"},
        {"name": "tell", "type": "rollout", "url": "http://t/tell"},
        {"name": "undo", "type": "rollback", "url": "http://t/undo"},
        {"name": "done", "type": "post-rollout", "url": "http://t/done"},
    ],
    "loadGenerator": {"url": "http://reviews:9080/reviews/0", "rps": 20},
}
SPEC = spec(**PLAN)
THRESHOLD = spec(
    strategy=PLAN["strategy"],
    analysis={
        "judge": "threshold",
        "interval": "30s",
        "failureLimit": 2,
        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
    },
)
GATED = spec(
    strategy={"canary": {"steps": [{"setWeight": 50}]}},
    webhooks=[{"name": "ok", "type": "confirm-promotion", "url": "http://t/ok"}],
)

V1_AT_10 = Weights(10, "v1")
HEALTHY = window(0, 30, counts(60, 0), counts(540, 3))
SICK = window(0, 30, counts(60, 20), counts(540, 2))
# The stable's ten minutes before the rollout, as the controller measures them.
BASELINE = Baseline(600.0, counts(12000, 60))


def state(phase: Phase = Phase.PROGRESSING, **changes: object) -> CanaryState:
    base = CanaryState.initial("reviews", "v1", at(0))
    defaults: dict[str, object] = {
        "phase": phase,
        "weights": V1_AT_10,
        "verified_at": at(0),
        "step_started_at": at(0),
        "progress_at": at(0),
    }
    defaults.update(changes)
    return dataclasses.replace(base, **defaults)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    id: str
    before: CanaryState
    observation: Observation
    now: float
    phase: Phase
    actions: list[str]
    reason: str
    step: int | None = None


def obs(canary: Canary = SPEC, **fields: object) -> Observation:
    return Observation(canary, **fields)  # type: ignore[arg-type]


CASES = [
    Case("initializing: routes not reconciled yet",
         state(Phase.INITIALIZING, weights=Weights(0, "v1"), verified_at=None), obs(), 0,
         Phase.INITIALIZING, ["ReconcileRoutes", "RunWebhook"],
         "waiting for the managed routes to be reconciled and pre-rollout webhooks smoke and "
         "the stable's traffic before the rollout to be measured"),
    Case("initializing: routes ready and pre-rollout said yes", state(Phase.INITIALIZING,
         weights=Weights(0, "v1"), verified_at=None),
         obs(weights_verified=True, webhooks=(WebhookResult("smoke", True),),
             baseline=BASELINE), 1,
         Phase.PROGRESSING, ["StartLoad", "RunWebhook", "SetWeights"],
         "step 1/5 (setWeight 10%): setting canary 10% / stable 90%", step=0),
    Case("initializing: pre-rollout refused again, at the failure limit",
         state(Phase.INITIALIZING, weights=Weights(0, "v1"), failed_checks=4),
         obs(weights_verified=True, webhooks=(WebhookResult("smoke", False, "HTTP 500"),)), 1,
         Phase.ROLLING_BACK, ["SetWeights", "RunWebhook", "StopLoad"],
         "pre-rollout webhook smoke failed: HTTP 500 (failed checks 5 >= failureLimit 5): "
         "rolling back"),
    Case("setWeight: proxies have not applied it", state(weights=V1_AT_10, verified_at=None),
         obs(weights_verified=False), 1, Phase.PROGRESSING, ["SetWeights"],
         "waiting for the proxies to apply canary 10% / stable 90%", step=0),
    Case("setWeight: applied, the analysis clock starts", state(verified_at=None),
         obs(weights_verified=True), 2, Phase.PROGRESSING, [],
         "step 2/5 (analysis 1m)", step=1),
    Case("analysis: one healthy window, the minute is not over", state(step=1),
         obs(weights_verified=True, windows=(HEALTHY,)), 30, Phase.PROGRESSING, [],
         "step 2/5 (analysis 1m); last: request-success-rate canary errors 0.00% vs stable "
         "0.56% (n=60/540), ratio 0x (99.25% CI 0x-30x), sequential p=1 >= alpha 0.0075: no "
         "evidence the canary is worse", step=1),
    Case("analysis: a sick canary is rolled back at once, with the numbers", state(step=1),
         obs(weights_verified=True, windows=(SICK,)), 30, Phase.ROLLING_BACK,
         ["SetWeights", "RunWebhook", "StopLoad"],
         "request-success-rate canary errors 33.33% vs stable 0.37% (n=60/540), ratio 79x "
         "(99.25% CI 13x-inf), sequential p=3.9e-08 < alpha 0.0075: rolling back", step=1),
    Case("analysis: metrics unreachable holds even after the step's time",
         state(step=1), obs(weights_verified=True, metrics_online=False), 600,
         Phase.PROGRESSING, [], "metrics source unreachable: holding at step 2/5 (analysis 1m) "
         "(canary 10% / stable 90%); no promotion without metrics", step=1),
    Case("deadline: no progress for longer than progressDeadline", state(step=1),
         obs(weights_verified=True), 601, Phase.ROLLING_BACK,
         ["SetWeights", "RunWebhook", "StopLoad"],
         "no progress for 601s (progressDeadline 600s) at step 2/5 (analysis 1m), last: : "
         "rolling back", step=1),
    Case("pause without duration waits for a person", state(step=2), obs(weights_verified=True),
         5, Phase.PAUSED, [], "step 3/5 (pause (until resumed)): waiting for rollout resume or "
         "promote", step=2),
    Case("resume passes the manual pause", state(Phase.PAUSED, step=2),
         obs(weights_verified=True, command=Command.RESUME), 5, Phase.PROGRESSING,
         ["RunWebhook", "SetWeights"], "step 4/5 (setWeight 50%): setting canary 50% / stable "
         "50%", step=3),
    Case("timed pause: not yet", state(step=4, weights=Weights(50, "v1")),
         obs(weights_verified=True), 29, Phase.PROGRESSING, [], "step 5/5 (pause 30s)", step=4),
    Case("timed pause over: last step done, promoting", state(step=4, weights=Weights(50, "v1")),
         obs(weights_verified=True), 30, Phase.PROMOTING, ["SetWeights"],
         "promoting: every request to the canary: setting canary 100% / stable 0%", step=5),
    Case("pause command", state(step=1), obs(weights_verified=True, command=Command.PAUSE), 5,
         Phase.PAUSED, [], "paused by user", step=1),
    Case("abort command rolls back at once", state(step=1),
         obs(weights_verified=True, command=Command.ABORT), 5, Phase.ROLLING_BACK,
         ["SetWeights", "RunWebhook", "StopLoad"], "aborted by user", step=1),
    Case("promote command skips the rest", state(step=1),
         obs(weights_verified=True, command=Command.PROMOTE), 5, Phase.PROMOTING,
         ["SetWeights"], "promoting: every request to the canary: setting canary 100% / "
         "stable 0%", step=1),
    Case("promoting: 100% applied, the routes name the canary as stable",
         state(Phase.PROMOTING, step=5, weights=Weights(100, "v1"), verified_at=None),
         obs(weights_verified=True), 40, Phase.PROMOTING, ["FinalizeRoutes"],
         "promoting: the managed routes now name v3 as stable", step=5),
    Case("promoting: finalized routes applied", state(Phase.PROMOTING, step=5,
         weights=Weights(0, "v3"), verified_at=None, promotion_stage=1),
         obs(weights_verified=True), 41, Phase.SUCCEEDED, ["RunWebhook", "StopLoad"],
         "promoted: v3 is the stable subset", step=5),
    Case("rolling back: proxies not there yet", state(Phase.ROLLING_BACK, weights=Weights(0, "v1"),
         verified_at=None, message="x: rolling back"), obs(weights_verified=False), 41,
         Phase.ROLLING_BACK, ["SetWeights"], "x: rolling back"),
    Case("rolling back: applied, failed", state(Phase.ROLLING_BACK, weights=Weights(0, "v1"),
         verified_at=None, message="x: rolling back"), obs(weights_verified=True), 41,
         Phase.FAILED, [], "rolled back: x"),
    Case("rolling back: promote is ignored", state(Phase.ROLLING_BACK, weights=Weights(0, "v1"),
         verified_at=None, message="x: rolling back"),
         obs(weights_verified=False, command=Command.PROMOTE), 41, Phase.ROLLING_BACK,
         ["SetWeights"], "x: rolling back"),
    Case("terminal phases ignore everything", state(Phase.SUCCEEDED, message="promoted"),
         obs(weights_verified=True, command=Command.ABORT), 41, Phase.SUCCEEDED, [], "promoted"),
    Case("confirm-promotion gate: no answer yet", state(step=1, weights=Weights(50, "v1")),
         obs(GATED, weights_verified=True), 41, Phase.PROGRESSING, ["RunWebhook"],
         "all 1 steps passed; waiting for confirm-promotion webhook ok", step=1),
    Case("confirm-promotion gate: approved", state(step=1, weights=Weights(50, "v1")),
         obs(GATED, weights_verified=True, webhooks=(WebhookResult("ok", True),)), 41,
         Phase.PROMOTING, ["SetWeights"], "promoting: every request to the canary: setting "
         "canary 100% / stable 0%", step=1),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_transition(case: Case) -> None:
    decision = advance(case.before, case.observation, at(case.now))
    assert decision.state.phase is case.phase
    assert kinds(decision) == case.actions
    assert decision.reason == case.reason
    if case.step is not None:
        assert decision.state.step == case.step


def test_every_phase_appears_in_the_table() -> None:
    seen = {c.before.phase for c in CASES} | {c.phase for c in CASES}
    assert seen == set(Phase)


def test_a_refused_pre_rollout_webhook_is_asked_again_an_interval_later() -> None:
    before = state(Phase.INITIALIZING, weights=Weights(0, "v1"))
    refused = (WebhookResult("smoke", False, "HTTP 500"),)
    decision = advance(
        before, obs(weights_verified=True, webhooks=refused, baseline=BASELINE), at(1)
    )
    assert decision.state.phase is Phase.INITIALIZING and decision.state.failed_checks == 1
    assert decision.reason == (
        "pre-rollout webhook smoke failed: HTTP 500; waiting for the managed routes to be "
        "reconciled and pre-rollout webhooks smoke"
    )
    assert decision.actions[-1] == RunWebhook("smoke", "pre-rollout")
    assert decision.requeue_after == datetime.timedelta(seconds=30)


def test_rollback_sends_every_request_to_the_stable_in_the_same_decision() -> None:
    decision = advance(state(step=1, weights=Weights(50, "v1", match=True)),
                       obs(weights_verified=True, windows=(SICK,)), at(30))  # fmt: skip
    assert decision.actions[0] == SetWeights(Weights(0, "v1"))
    assert RunWebhook("undo", "rollback") in decision.actions
    assert decision.state.weights == Weights(0, "v1")


def test_windows_that_straddle_a_weight_change_are_discarded() -> None:
    before = state(step=1, verified_at=at(10), step_started_at=at(10))
    straddling = window(0, 30, counts(60, 30), counts(540, 0))
    decision = advance(before, obs(weights_verified=True, windows=(straddling,)), at(31))
    assert decision.state.phase is Phase.PROGRESSING
    assert decision.state.tests == ()
    assert decision.state.analysed_until is None
    assert decision.reason == (
        "step 2/5 (analysis 1m) (1 window(s) not judged: measured before the weights applied)"
    )


def test_failed_rollout_webhooks_are_failed_checks() -> None:
    refused = (WebhookResult("tell", False, "HTTP 503"),)
    one = advance(state(step=1, failed_checks=3), obs(weights_verified=True, webhooks=refused),
                  at(5))  # fmt: skip
    assert one.state.phase is Phase.PROGRESSING and one.state.failed_checks == 4
    two = advance(one.state, obs(weights_verified=True, webhooks=refused), at(6))
    assert two.state.phase is Phase.ROLLING_BACK
    assert two.reason == (
        "rollout webhook tell failed: HTTP 503 (failed checks 5 >= failureLimit 5): rolling back"
    )


def test_a_promotion_the_proxies_never_apply_rolls_back_at_the_deadline() -> None:
    promoting = state(Phase.PROMOTING, step=5, weights=Weights(100, "v1"), verified_at=None,
                      progress_at=at(100))  # fmt: skip
    waiting = advance(promoting, obs(weights_verified=False), at(650))
    assert waiting.state.phase is Phase.PROMOTING
    late = advance(promoting, obs(weights_verified=False), at(701))
    assert late.state.phase is Phase.ROLLING_BACK
    assert late.actions[0] == SetWeights(Weights(0, "v1"))


def test_a_window_is_judged_once() -> None:
    first = advance(state(step=1), obs(weights_verified=True, windows=(HEALTHY,)), at(30))
    again = advance(first.state, obs(weights_verified=True, windows=(HEALTHY,)), at(35))
    test = again.state.test_of("request-success-rate")
    assert test is not None and test.evidence.canary_requests == 60


def test_analysis_passes_after_its_duration_with_enough_requests() -> None:
    second = window(30, 60, counts(60, 0), counts(540, 3))
    one = advance(state(step=1), obs(weights_verified=True, windows=(HEALTHY,)), at(30))
    two = advance(one.state, obs(weights_verified=True, windows=(second,)), at(60))
    assert two.state.step == 2  # the manual pause after the analysis step
    assert two.state.phase is Phase.PAUSED


def test_no_data_holds_without_passing_or_failing() -> None:
    empty = window(0, 30, counts(0), counts(600, 3))
    decision = advance(state(step=1), obs(weights_verified=True, windows=(empty,)), at(120))
    assert decision.state.phase is Phase.PROGRESSING and decision.state.step == 1
    assert decision.state.failed_checks == 0
    assert decision.reason == (
        "step 2/5 (analysis 1m) holding: request-success-rate: no requests reached the canary "
        "in the last 30s; probably it is not receiving traffic"
    )


def test_threshold_judge_counts_failed_checks_up_to_the_limit() -> None:
    bad = window(0, 30, counts(100, 2), counts(900, 0))
    worse = window(30, 60, counts(100, 5), counts(900, 0))
    one = advance(state(step=1), obs(THRESHOLD, weights_verified=True, windows=(bad,)), at(30))
    assert one.state.phase is Phase.PROGRESSING and one.state.failed_checks == 1
    assert one.reason.startswith("step 2/5 (analysis 1m) holding: request-success-rate canary")
    two = advance(one.state, obs(THRESHOLD, weights_verified=True, windows=(worse,)), at(60))
    assert two.state.phase is Phase.ROLLING_BACK
    assert two.reason == (
        "request-success-rate canary 95.00% (n=100) < min 99% "
        "(failed checks 2 >= failureLimit 2): rolling back"
    )


def test_a_user_pause_stops_the_deadline_and_resume_restarts_it() -> None:
    paused = advance(state(step=1), obs(command=Command.PAUSE, weights_verified=True), at(5))
    later = advance(paused.state, obs(weights_verified=True), at(3600))
    assert later.state.phase is Phase.PAUSED
    resumed = advance(later.state, obs(command=Command.RESUME, weights_verified=True), at(3601))
    assert resumed.state.phase is Phase.PROGRESSING
    assert resumed.state.progress_at == at(3601)


def test_initial_weights_carry_the_ab_match_and_blue_green_keeps_the_canary_at_zero() -> None:
    tester = {"headers": {"x-canary": {"exact": "1"}}}
    blue_green = spec(strategy={"blueGreen": {"analysisDuration": "1m", "match": [tester]}})
    first = advance(CanaryState.initial("reviews", "v1", at(0)), obs(blue_green), at(0))
    assert first.actions == (ReconcileRoutes(Weights(0, "v1", match=True)),)
    ready = advance(first.state, obs(blue_green, weights_verified=True, baseline=BASELINE), at(1))
    assert ready.state.phase is Phase.PROGRESSING
    assert ready.state.weights == Weights(0, "v1", match=True)
    assert ready.reason == "step 1/1 (analysis 1m)"


def test_mirror_strategy_sets_a_mirror_percentage_without_live_weight() -> None:
    mirrored = spec(strategy={"mirror": {"percentage": 50, "analysisDuration": "1m"}})
    start = state(weights=Weights(0, "v1"), step=0)
    decision = advance(start, obs(mirrored, weights_verified=True), at(1))
    assert decision.actions == (SetWeights(Weights(0, "v1", mirror=50.0)),)


def test_skip_analysis_promotes_after_the_weights() -> None:
    skipping = spec(skipAnalysis=True, strategy={"canary": {"steps": [{"setWeight": 20},
                    {"analysis": {"duration": "5m"}}]}})  # fmt: skip
    decision = advance(state(step=0, weights=Weights(20, "v1")), obs(skipping), at(1))
    assert decision.state.phase is Phase.PROMOTING
    assert decision.actions == (SetWeights(Weights(100, "v1")),)


def test_post_rollout_and_load_generator_actions_on_success() -> None:
    done = state(Phase.PROMOTING, step=5, weights=Weights(0, "v3"), promotion_stage=1)
    decision = advance(done, obs(weights_verified=True), at(50))
    assert decision.actions == (RunWebhook("done", "post-rollout"), StopLoad())


def test_start_load_comes_with_the_first_step() -> None:
    ready = state(Phase.INITIALIZING, weights=Weights(0, "v1"))
    smoke = (WebhookResult("smoke", True),)
    waiting = advance(ready, obs(weights_verified=True, webhooks=smoke), at(1))
    assert waiting.state.phase is Phase.INITIALIZING  # the stable's history comes first
    assert StartLoad() not in waiting.actions
    decision = advance(ready, obs(weights_verified=True, webhooks=smoke, baseline=BASELINE), at(1))
    assert StartLoad() in decision.actions
    assert FinalizeRoutes("v3") not in decision.actions


def test_history_records_each_new_reason_once() -> None:
    one = advance(state(step=4, weights=Weights(50, "v1")), obs(weights_verified=True), at(10))
    two = advance(one.state, obs(weights_verified=True), at(20))
    assert [h.reason for h in two.state.history] == ["step 5/5 (pause 30s)"]
    assert two.state.history[0].at == at(10)
    assert two.requeue_after == datetime.timedelta(seconds=30)

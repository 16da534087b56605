"""Whole release group rollouts through the miniature controller of ``harness.py``: each window
carries the ingress's end-to-end comparison and one per member; the group is promoted or rolled
back as one, and the decision says which part decided it."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace

import pytest

from canarymesh.analysis.verdict import VerdictPhase
from canarymesh.analysis.windows import Window
from canarymesh.api.canary import Canary
from canarymesh.rollout.actions import FinalizeRoutes, Weights
from canarymesh.rollout.judging import judge_windows, sequential_alpha
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from tests.unit.rollout.harness import Controller, Traffic, at, failing, healthy

GROUP = Canary.model_validate(
    {
        "target": {"host": "productpage", "virtualService": "bookinfo"},
        "group": {
            "members": [
                {"host": "reviews", "virtualService": "reviews", "stableSubset": "v2",
                 "canarySubset": "v3"},
                {"host": "ratings", "virtualService": "ratings", "stableSubset": "v1",
                 "canarySubset": "v2"},
            ]
        },
        "analysis": {"interval": "15s", "metrics": [{"name": "request-success-rate"}]},
    }
)  # fmt: skip


@dataclass
class GroupController(Controller):
    """The harness's controller with a release group's windows: ``members`` gives each member's
    traffic (the ingress uses ``traffic``)."""

    members: dict[str, Traffic] = field(default_factory=dict)

    def _windows(self, state: CanaryState) -> tuple[Window, ...]:
        seconds = self.canary.interval().total_seconds()
        scoped = []
        for window in super()._windows(state):
            scopes = tuple(
                (host, Window(window.start, window.end, *self.members.get(host, healthy)(
                    state.weights.canary, seconds)))
                for host in ("reviews", "ratings")
            )  # fmt: skip
            scoped.append(replace(window, scopes=scopes))
        return tuple(scoped)


def test_a_healthy_group_is_promoted_with_every_member() -> None:
    controller = GroupController(GROUP)
    final = controller.run()
    assert final.phase is Phase.SUCCEEDED
    assert final.message == "promoted together: reviews v3, ratings v2 are the stable subsets"
    assert controller.router.finalized == "canary"  # the group's slice becomes everyone's
    keys = {metric for metric, _ in final.tests}
    assert keys == {f"{part}/request-success-rate" for part in ("ingress", "reviews", "ratings")}


def test_only_the_downstream_member_failing_rolls_the_whole_group_back() -> None:
    # The ingress end to end and reviews look healthy: Bookinfo's reviews hides a failing
    # ratings behind a page without stars; only ratings' own comparison shows it.
    controller = GroupController(GROUP, members={"ratings": failing})
    final = controller.run()
    assert final.phase is Phase.FAILED
    assert final.message.startswith(
        "rolled back: release group member ratings: request-success-rate canary errors"
    )
    assert controller.router.weights == Weights(0, "stable")  # the slice closed for all
    assert not any(isinstance(a, FinalizeRoutes) for a in controller.executed)


def test_the_ingress_end_to_end_comparison_can_decide_too() -> None:
    final = GroupController(GROUP, traffic=failing).run()
    assert final.phase is Phase.FAILED
    assert "release group ingress (end to end): request-success-rate" in final.message


def test_the_false_alarm_budget_is_shared_by_every_part() -> None:
    # Bonferroni over one metric and three parts (the ingress and two members).
    assert sequential_alpha(GROUP) == pytest.approx(GROUP.analysis.alpha / 3)
    assert sequential_alpha(GROUP, "ratings/request-success-rate") == pytest.approx(
        GROUP.analysis.alpha / 3
    )


def test_each_part_keeps_its_own_evidence_and_names_its_verdicts() -> None:
    state = CanaryState.initial("g", "stable", at(0))
    state = replace(state, verified_at=at(0))
    good = healthy(20, 15)
    bad = failing(20, 15)
    window = Window(at(0), at(15), *good,
                    scopes=(("reviews", Window(at(0), at(15), *good)),
                            ("ratings", Window(at(0), at(15), *bad))))  # fmt: skip
    judged = judge_windows(state, GROUP, (window,))
    names = [v.metric for v in judged.state.verdicts]
    assert names == ["ingress/request-success-rate", "reviews/request-success-rate",
                     "ratings/request-success-rate"]  # fmt: skip
    ratings = judged.state.test_of("ratings/request-success-rate")
    reviews = judged.state.test_of("reviews/request-success-rate")
    assert ratings is not None and reviews is not None
    assert ratings.evidence.canary_bad > reviews.evidence.canary_bad
    phases = {v.metric: v.phase for v in judged.state.verdicts}
    assert phases["reviews/request-success-rate"] is not VerdictPhase.FAILED
    assert judged.state.analysed_until == at(15) and datetime.timedelta(0) < GROUP.interval()


def test_the_plan_is_assessed_once_for_the_slice_not_once_per_part() -> None:
    controller = GroupController(GROUP)
    for _ in range(5):
        controller.tick()
        controller.clock.advance(1)
    state = controller.state()
    assert state.assessment is not None
    assert [m.metric for m in state.assessment.metrics] == ["request-success-rate"]
    assert len(state.tests) == 3  # yet every part has its own test

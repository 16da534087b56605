"""CanaryState: frozen, with_* transitions, persisted as a dict that reads back equal."""

from __future__ import annotations

import dataclasses

import pytest

from canarymesh.analysis import statistical
from canarymesh.analysis.baseline import Baseline
from canarymesh.analysis.planning import MetricPlan, Segment, assess
from canarymesh.analysis.verdict import VerdictPhase
from canarymesh.analysis.windows import Window
from canarymesh.api.canary import MetricCheck
from canarymesh.rollout.actions import Weights
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import HISTORY_LIMIT, CanaryState
from tests.unit.rollout.harness import at, counts

BASELINE = Baseline(600.0, counts(12000, 60, slow=240))


def full_state() -> CanaryState:
    state = CanaryState.initial("reviews", "v1", at(0))
    checks = (MetricCheck(name="request-success-rate"), MetricCheck(name="request-duration"))
    tests = {c.name: statistical.start(c, BASELINE) for c in checks}
    window = Window(at(3), at(4), counts(20, 2, slow=1), counts(180, 1, slow=2))
    tests = {name: statistical.observe(test, window) for name, test in tests.items()}
    verdict = statistical.verdict(
        tests["request-success-rate"], alpha=0.0075, min_requests=50, idle_limit=30
    )
    plan = MetricPlan("request-success-rate", 0.005, 1.0, 3.0, 3.0, 0.0075)
    assessment = assess([Segment(10, 60, 1)], 20.0, [plan], power=0.97, min_requests=50,
                        adaptive=True)  # fmt: skip
    state = state.with_baseline(BASELINE, assessment, tuple(sorted(tests.items())))
    state = state.with_weights(Weights(25, "v1", mirror=12.5, match=True)).with_verified(at(3))
    state = state.with_analysis(tests, (verdict,), at(4), failed=1, passed=0, checked=at(4))
    return state.with_phase(Phase.PAUSED, "paused by user", at(40)).with_paused(True)


def test_state_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        full_state().step = 3  # type: ignore[misc]


def test_to_dict_and_back_is_the_same_state() -> None:
    state = full_state()
    assert state.verdicts[0].phase is VerdictPhase.INCONCLUSIVE
    assert state.verdicts[0].explanation is not None
    data = state.to_dict()
    assert data["version"] == 2
    assert data["phase"] == "Paused"
    assert data["weights"] == {"canary": 25, "stableSubset": "v1", "mirror": 12.5, "match": True}
    assert data["verifiedAt"] == "2026-01-01T12:00:03+00:00"
    assert data["baseline"]["requests"] == 12000
    assert data["verdicts"][0]["explanation"]["canary"] == {"requests": 20, "bad": 2}
    assert set(data["tests"]) == {"request-success-rate", "request-duration"}
    assert CanaryState.from_dict(data) == state


def test_a_version_1_state_is_read_with_its_evidence_dropped() -> None:
    data = full_state().to_dict()
    old = {key: value for key, value in data.items()
           if key not in ("tests", "baseline", "assessment", "checkedUntil")}  # fmt: skip
    old.update(version=1, evidence={"request-success-rate": {"logRatios": [0.0] * 5}})
    state = CanaryState.from_dict(old)
    assert state.tests == () and state.baseline is None and state.phase is Phase.PAUSED
    assert state.verdicts == full_state().verdicts


def test_bad_stored_state_is_a_clear_error() -> None:
    data = full_state().to_dict()
    with pytest.raises(ValueError, match="version 7 is not supported"):
        CanaryState.from_dict({**data, "version": 7})
    broken = {**data, "tests": {"request-success-rate": {"metric": "x"}}}
    with pytest.raises(ValueError, match="metric test is malformed"):
        CanaryState.from_dict(broken)
    del data["weights"]
    with pytest.raises(ValueError, match="incomplete or malformed: KeyError\\('weights'\\)"):
        CanaryState.from_dict(data)


def test_new_weights_are_pending_until_verified() -> None:
    state = full_state().with_weights(Weights(50, "v1"))
    assert state.verified_at is None and state.step_started_at is None
    verified = state.with_verified(at(60))
    assert verified.verified_at == verified.step_started_at == verified.progress_at == at(60)


def test_history_is_bounded_and_repeats_are_not_logged() -> None:
    state = CanaryState.initial("reviews", "v1", at(0))
    for i in range(HISTORY_LIMIT + 5):
        reason = f"step {i}: {'holding' if i % 2 else 'judging'}"
        state = state.with_message(reason, at(i)).with_message(reason, at(i))
    assert len(state.history) == HISTORY_LIMIT
    assert state.history[-1].reason == f"step {HISTORY_LIMIT + 4}: judging"


def test_new_numbers_alone_change_the_message_not_the_log() -> None:
    state = CanaryState.initial("reviews", "v1", at(0))
    state = state.with_message("step 2/6: errors 0.50% (n=10/90), p=0.31", at(1))
    state = state.with_message("step 2/6: errors 0.48% (n=21/180), p=0.27", at(2))
    assert state.message.endswith("p=0.27") and len(state.history) == 1
    state = state.with_message("step 2/6: errors 4.00% (n=25/200), watching longer", at(3))
    state = state.with_message("step 3/6: errors 4.00% (n=25/200), watching longer", at(4))
    assert [h.reason[:8] for h in state.history] == ["step 2/6", "step 2/6", "step 3/6"]


def test_analysis_moves_the_judged_and_checked_marks() -> None:
    state = full_state()
    assert state.analysed_until == at(4) and state.checked_until == at(4)
    later = state.with_analysis(dict(state.tests), state.verdicts, at(5), failed=0, passed=1)
    assert later.analysed_until == at(5) and later.checked_until == at(4)
    assert later.failed_checks == 1 and later.passed_checks == 1

"""CanaryState: frozen, with_* transitions, persisted as a dict that reads back equal."""

from __future__ import annotations

import dataclasses

import pytest

from canarymesh.analysis.statistical import Evidence
from canarymesh.analysis.verdict import MetricVerdict, VerdictPhase
from canarymesh.rollout.actions import Weights
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import HISTORY_LIMIT, CanaryState
from tests.unit.rollout.harness import at


def full_state() -> CanaryState:
    state = CanaryState.initial("reviews", "v1", at(0))
    state = state.with_weights(Weights(25, "v1", mirror=12.5, match=True)).with_verified(at(3))
    state = state.with_analysis(
        {"request-success-rate": Evidence((0.1, 0.2, 0.3, 0.4, 0.5), 10, 1, 90, 0, 0.7)},
        (MetricVerdict("request-success-rate", VerdictPhase.INCONCLUSIVE, "few", 10.0, 0.0),),
        at(33),
        failed=1,
        passed=0,
    )  # fmt: skip
    return state.with_phase(Phase.PAUSED, "paused by user", at(40)).with_paused(True)


def test_state_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        full_state().step = 3  # type: ignore[misc]


def test_to_dict_and_back_is_the_same_state() -> None:
    state = full_state()
    data = state.to_dict()
    assert data["phase"] == "Paused"
    assert data["weights"] == {"canary": 25, "stableSubset": "v1", "mirror": 12.5, "match": True}
    assert data["verifiedAt"] == "2026-01-01T12:00:03+00:00"
    assert CanaryState.from_dict(data) == state


def test_bad_stored_state_is_a_clear_error() -> None:
    data = full_state().to_dict()
    with pytest.raises(ValueError, match="version 7 is not supported"):
        CanaryState.from_dict({**data, "version": 7})
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
        state = state.with_message(f"reason {i}", at(i)).with_message(f"reason {i}", at(i))
    assert len(state.history) == HISTORY_LIMIT
    assert state.history[-1].reason == f"reason {HISTORY_LIMIT + 4}"

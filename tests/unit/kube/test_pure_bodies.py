"""The pure rules of the cluster runtime that the adapter tests reach only in part: the Lease
rule, the Event body, the rollout keys."""

from __future__ import annotations

import datetime

import pytest

from canarymesh.errors import ConfigError
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.runtime.kube.lease import micro_time, next_lease
from canarymesh.runtime.kube.rollout_store import split_key
from canarymesh.runtime.kube.status import event_body, status_body

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def lease(holder: str, renewed: datetime.datetime, transitions: int = 0) -> dict[str, object]:
    return {"spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                     "acquireTime": "2026-01-01T11:00:00.000000Z",
                     "leaseTransitions": transitions}}  # fmt: skip


def test_no_lease_is_created_with_us_as_holder() -> None:
    step = next_lease(None, "a", T0, 15)
    assert step.action == "create"
    assert step.spec["holderIdentity"] == "a" and step.spec["leaseTransitions"] == 0


def test_our_lease_is_renewed_keeping_its_acquire_time() -> None:
    step = next_lease(lease("a", T0), "a", T0 + datetime.timedelta(seconds=5), 15)
    assert step.action == "replace"
    # A zero fraction becomes one microsecond: see test_micro_times_keep_six_digits.
    assert step.spec["acquireTime"] == "2026-01-01T11:00:00.000001Z"
    assert step.spec["renewTime"] == "2026-01-01T12:00:05.000001Z"


def test_micro_times_keep_six_digits_through_the_clients_model() -> None:
    from kubernetes import client

    exact = T0.replace(microsecond=250)
    assert micro_time(exact) == "2026-01-01T12:00:00.000250Z"
    body = {"metadata": {"name": "l"}, "spec": {"renewTime": micro_time(T0)}}
    lease = client.V1Lease.from_dict(body)
    sent = client.ApiClient().sanitize_for_serialization(lease)  # type: ignore[no-untyped-call]
    assert sent["spec"]["renewTime"] == "2026-01-01T12:00:00.000001+00:00"


def test_a_live_lease_of_another_holder_is_waited_for() -> None:
    assert next_lease(lease("b", T0), "a", T0 + datetime.timedelta(seconds=14), 15).action == "wait"


def test_an_expired_or_released_lease_is_taken_with_one_more_transition() -> None:
    expired = next_lease(lease("b", T0, 3), "a", T0 + datetime.timedelta(seconds=15), 15)
    assert (expired.action, expired.spec["leaseTransitions"]) == ("replace", 4)
    released = next_lease(lease("", T0, 3), "a", T0, 15)
    assert released.action == "replace" and released.spec["holderIdentity"] == "a"


def test_no_decision_no_event_and_warnings_for_rollbacks() -> None:
    fresh = CanaryState.initial("reviews", "v1", T0)
    assert event_body("webapps", "reviews", "u", fresh, "c-0") is None
    failed = fresh.with_phase(Phase.FAILED, "rolled back: deadline 10m passed", T0)
    event = event_body("webapps", "reviews", "u", failed, "c-0")
    assert event is not None
    assert (event["type"], event["reason"], event["note"]) == (
        "Warning", "Failed", "rolled back: deadline 10m passed")  # fmt: skip
    assert event["metadata"]["name"] == "reviews.20260101120000000000.1"


def test_status_of_a_succeeded_rollout() -> None:
    state = CanaryState.initial("reviews", "v1", T0).with_phase(Phase.SUCCEEDED, "promoted", T0)
    status = status_body("webapps", "reviews", {"rolloutId": "r", "state": state.to_dict()})
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["status"]["conditions"]}
    assert conditions["Promoted"] == ("True", "Succeeded")
    assert conditions["Progressing"] == ("False", "Succeeded")
    assert status["status"]["rolloutState"]["rolloutId"] == "r"


@pytest.mark.parametrize("key", ["reviews", "/reviews", "webapps/"])
def test_a_rollout_key_names_namespace_and_name(key: str) -> None:
    with pytest.raises(ConfigError, match="namespace/name"):
        split_key(key)

"""The Canary's status and the Events the controller writes, as plain bodies. Pure; called by
:class:`canarymesh.runtime.kube.rollout_store.KubeStateStore`, tested in ``tests/unit/kube``.

The status says what ``kubectl get canaries`` and ``kubectl describe`` show (phase, current
weight, step, the last decision with its reason, conditions in the usual Kubernetes shape) and
holds ``rolloutState``, the rollout's resumable state, so a new leader resumes at the same step.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from canarymesh.api.canary import API_VERSION
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState

__all__ = ["REPORTING_CONTROLLER", "conditions", "event_body", "status_body"]

REPORTING_CONTROLLER = "canarymesh.io/controller"
_WARNING_PHASES = {Phase.ROLLING_BACK, Phase.FAILED}


def status_body(namespace: str, name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The server-side-apply body of the ``status`` subresource for the controller's record
    of a rollout (``{"rolloutId": …, "state": CanaryState.to_dict()}``)."""
    parsed = CanaryState.from_dict(dict(record["state"]))
    last = parsed.history[-1] if parsed.history else None
    status: dict[str, Any] = {
        "phase": parsed.phase.value,
        "canaryWeight": parsed.weights.canary,
        "stableSubset": parsed.weights.stable_subset,
        "step": parsed.step,
        "failedChecks": parsed.failed_checks,
        "message": parsed.message,
        "conditions": conditions(parsed),
        "rolloutState": dict(record),
    }
    if last is not None:
        status["lastDecision"] = {"reason": last.reason, "at": _rfc3339(last.at)}
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "status": status,
    }


def conditions(state: CanaryState) -> list[dict[str, Any]]:
    """``Progressing`` (still moving), ``Promoted`` and ``WeightsVerified``, each with its
    reason; transition times are those of the decision that set them."""
    at = _rfc3339(state.history[-1].at if state.history else state.started_at)
    moving = state.phase in {Phase.INITIALIZING, Phase.PROGRESSING, Phase.PROMOTING}
    verified = state.verified_at is not None
    return [
        _condition("Progressing", moving, state.phase.value, state.message, at),
        _condition(
            "Promoted", state.phase is Phase.SUCCEEDED, state.phase.value, state.message, at
        ),
        _condition(
            "WeightsVerified",
            verified,
            "ProxiesApplied" if verified else "Pending",
            f"every proxy applied {state.weights.describe()}"
            if verified
            else f"waiting for the proxies to apply {state.weights.describe()}",
            _rfc3339(state.verified_at) if state.verified_at else at,
        ),
    ]


def _condition(kind: str, ok: bool, reason: str, message: str, at: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": at,
    }


def event_body(
    namespace: str,
    name: str,
    uid: str,
    state: CanaryState,
    instance: str,
    index: int = -1,
) -> dict[str, Any] | None:
    """An ``events.k8s.io/v1`` Event for the rollout's decision at ``index`` of its history
    (the latest by default), or None without one.

    The name is derived from the decision's time and position so that re-saving the same state
    (a retry) makes the same Event, which the API server then refuses as a duplicate.
    """
    if not state.history:
        return None
    position = index % len(state.history)
    entry = state.history[position]
    stamp = entry.at.astimezone(datetime.UTC).strftime("%Y%m%d%H%M%S%f")
    event_type = "Warning" if entry.phase in _WARNING_PHASES else "Normal"
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{stamp}.{position + 1}", "namespace": namespace},
        "eventTime": _micro(entry.at),
        "type": event_type,
        "reason": entry.phase.value,
        "action": "Decide",
        "note": entry.reason[:1024],
        "regarding": {
            "apiVersion": API_VERSION,
            "kind": "Canary",
            "name": name,
            "namespace": namespace,
            "uid": uid,
        },
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance,
    }


def _rfc3339(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro(at: datetime.datetime) -> str:
    # A zero fraction would be dropped on the way through the client's model (see
    # canarymesh.runtime.kube.lease.micro_time); one microsecond keeps it.
    at = at.astimezone(datetime.UTC)
    return at.replace(microsecond=at.microsecond or 1).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

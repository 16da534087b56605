"""The controller's :class:`~canarymesh.ports.StateStore` on a cluster: each rollout's record
lives in its Canary's ``status`` (phase, weight, step, last decision, conditions, and the
resumable ``rolloutState``), written by server-side apply of the status subresource, plus one
``events.k8s.io/v1`` Event per decision that changed something. Shell; keys are
``namespace/name`` as the controller loop uses them.

A new leader reads the status back and resumes at the same step: the status is the only state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canarymesh.errors import ConfigError
from canarymesh.rollout.state import CanaryState
from canarymesh.runtime.kube import status
from canarymesh.runtime.kube.client import CANARY, KubeApi, NotFound

__all__ = ["KubeStateStore", "split_key"]


def split_key(key: str) -> tuple[str, str]:
    namespace, sep, name = key.partition("/")
    if not sep or not namespace or not name:
        raise ConfigError(f"a rollout key is namespace/name, not {key!r}")
    return namespace, name


class KubeStateStore:
    def __init__(self, api: KubeApi, instance: str) -> None:
        self.api, self.instance = api, instance
        # The newest decision already reported per key, so a re-save makes no second Event.
        self._reported: dict[str, tuple[int, str]] = {}

    def load(self, name: str) -> Mapping[str, Any] | None:
        namespace, canary = split_key(name)
        try:
            obj = self.api.get(CANARY, namespace, canary)
        except NotFound:
            return None
        record = obj.get("status", {}).get("rolloutState")
        if not isinstance(record, dict) or "state" not in record:
            return None
        self._reported[name] = _newest(CanaryState.from_dict(dict(record["state"])))
        return record

    def save(self, name: str, state: Mapping[str, Any]) -> None:
        namespace, canary = split_key(name)
        self.api.apply(CANARY, status.status_body(namespace, canary, state), status=True)
        parsed = CanaryState.from_dict(dict(state["state"]))
        newest = _newest(parsed)
        if parsed.history and self._reported.get(name) != newest:
            uid = str(self.api.get(CANARY, namespace, canary)["metadata"].get("uid", ""))
            # One Event per new history entry (a decision may log several: the plan's warnings).
            for index in _new_entries(parsed, self._reported.get(name)):
                event = status.event_body(namespace, canary, uid, parsed, self.instance, index)
                if event is not None:
                    self.api.create_event(event)
        self._reported[name] = newest


def _new_entries(state: CanaryState, reported: tuple[int, str] | None) -> range:
    """Positions of the history entries logged since ``reported`` (all of a rollout never
    reported; the last entry alone when the reported one is no longer in the history)."""
    last = len(state.history)
    if reported is None:
        return range(last)
    for index in range(last - 1, -1, -1):
        entry = state.history[index]
        if entry.at.isoformat() + entry.reason == reported[1]:
            return range(index + 1, last)
    return range(last - 1, last)


def _newest(state: CanaryState) -> tuple[int, str]:
    last = state.history[-1] if state.history else None
    return (len(state.history), last.at.isoformat() + last.reason if last else "")

"""The ports of the canary controller, and the adapters both runtimes share.

This module holds the small Protocols the shell implements and the pure core never sees. Each
has five methods or fewer (Flagger's router has four, its metrics provider two). They are
implemented by the local mesh (:mod:`canarymesh.runtime.local`), by Kubernetes
(:mod:`canarymesh.runtime.kube`) and by the in-memory fakes of ``tests/fakes.py``; the controller
loop calls them to execute a :class:`~canarymesh.rollout.machine.Decision` and to build the next
:class:`~canarymesh.rollout.machine.Observation`.

The adapters that are the same on both runtimes live beside it, once: the Prometheus query
client and the ``MetricsSource`` over it (:mod:`.prometheus`), the system clock (:mod:`.clock`)
and the built-in load generator (:mod:`.load`).

Errors follow :mod:`canarymesh.errors`: a ``TemporaryError`` means try again later (the loop
holds), a ``ConfigError`` means the spec names something that does not exist.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from canarymesh.api.canary import Canary
from canarymesh.rollout.actions import Weights
from canarymesh.rollout.state import CanaryState

__all__ = ["Clock", "MetricsSource", "Sample", "StateStore", "TrafficRouter", "state_of"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant query: its labels (sorted pairs) and its value at the query
    time. ``timestamp`` is Prometheus' evaluation time, when known; it takes no part in ``==``,
    so a sample compares by what it measured."""

    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp: float | None = field(default=None, compare=False)

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)


class TrafficRouter(Protocol):
    """Moves traffic between the stable and canary subsets of a Canary's target."""

    def reconcile(self, canary: Canary, weights: Weights) -> None:
        """Make the managed routes ready (both subsets, A/B match, session affinity)."""

    def set_weights(self, canary: Canary, weights: Weights) -> None:
        """Apply ``weights`` to the managed routes only."""

    def get_weights(self, canary: Canary) -> Weights:
        """The weights the managed routes hold now."""

    def verify_weights(self, canary: Canary, weights: Weights) -> bool:
        """True once every affected proxy applied ``weights`` (not just the config store)."""

    def finalize(self, canary: Canary, stable_subset: str) -> None:
        """Point the managed routes at ``stable_subset`` alone (after a promotion)."""


class MetricsSource(Protocol):
    """A Prometheus-compatible query endpoint."""

    def query(self, promql: str, at: datetime.datetime) -> tuple[Sample, ...]:
        """The instant query ``promql`` evaluated at ``at``; TemporaryError when unreachable."""

    def is_online(self) -> bool:
        """Whether the source answers at all (checked before each analysis)."""


class Clock(Protocol):
    def now(self) -> datetime.datetime:
        """An aware datetime (UTC)."""

    def sleep(self, seconds: float) -> None: ...


class StateStore(Protocol):
    """Where each rollout's state (``CanaryState.to_dict()``) survives the controller."""

    def load(self, name: str) -> Mapping[str, Any] | None:
        """The state saved under ``name``, or None when there is none."""

    def save(self, name: str, state: Mapping[str, Any]) -> None: ...


def state_of(record: Mapping[str, Any] | None) -> CanaryState | None:
    """The rollout state in a record a :class:`StateStore` returned (``{"rolloutId",
    "namespace", "state"}``, written by the controller loop), or None when there is none."""
    if record is None:
        return None
    return CanaryState.from_dict(dict(record["state"]))

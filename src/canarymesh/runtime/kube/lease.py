"""Leader election with a ``coordination.k8s.io/v1`` Lease, so two controller replicas never act
at once. Shell (:class:`LeaderElector`) around a pure rule (:func:`next_lease`); the in-cluster
entry point calls :meth:`LeaderElector.try_acquire` before every pass of the loop.

Safety comes from the API server, not from clocks: every write replaces the Lease *at the
resourceVersion that was read*, so of two replicas racing for an expired Lease exactly one
write succeeds (the other gets 409 Conflict and stays a follower). A leader that cannot renew
for ``duration`` stops acting by itself (``is_leader`` turns false) before another replica may
take over, as client-go's leader election does.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from canarymesh.errors import TemporaryError
from canarymesh.runtime.kube.client import KubeApi

__all__ = ["LeaderElector", "LeaseStep", "micro_time", "next_lease"]


@dataclass(frozen=True, slots=True)
class LeaseStep:
    """What to do with the Lease: write ``spec`` (create or replace), or wait as a follower."""

    action: Literal["create", "replace", "wait"]
    spec: dict[str, Any]


def next_lease(
    lease: Mapping[str, Any] | None, identity: str, now: datetime.datetime, duration: int
) -> LeaseStep:
    """Pure: renew our own Lease, take an expired or released one, or wait for its holder."""
    stamp = micro_time(now)
    if lease is None:
        spec = _spec(identity, duration, stamp, stamp, transitions=0)
        return LeaseStep("create", spec)
    spec = dict(lease.get("spec") or {})
    holder = spec.get("holderIdentity")
    transitions = int(spec.get("leaseTransitions") or 0)
    if holder == identity:
        acquired = micro_time(_parse(spec.get("acquireTime")) or now)
        return LeaseStep("replace", _spec(identity, duration, acquired, stamp, transitions))
    renewed = _parse(spec.get("renewTime"))
    held_for = int(spec.get("leaseDurationSeconds") or duration)
    if holder and renewed is not None and now < renewed + datetime.timedelta(seconds=held_for):
        return LeaseStep("wait", spec)
    return LeaseStep("replace", _spec(identity, duration, stamp, stamp, transitions + 1))


def _spec(
    identity: str, duration: int, acquired: str, renewed: str, transitions: int
) -> dict[str, Any]:
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": duration,
        "acquireTime": acquired,
        "renewTime": renewed,
        "leaseTransitions": transitions,
    }


def micro_time(at: datetime.datetime) -> str:
    """A Kubernetes MicroTime. The client turns it into a datetime and back with
    ``isoformat()``, which drops a zero fraction, and the API server's RFC3339Micro parser then
    refuses it; a zero fraction becomes one microsecond, which changes no decision."""
    at = at.astimezone(datetime.UTC)
    return at.replace(microsecond=at.microsecond or 1).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: object) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


class LeaderElector:
    """One replica's view of the Lease ``namespace/name``."""

    def __init__(
        self, api: KubeApi, namespace: str, name: str, identity: str, duration: int = 15
    ) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        self.identity, self.duration = identity, duration
        self._held_until: datetime.datetime | None = None

    def try_acquire(self, now: datetime.datetime) -> bool:
        """Acquire or renew; True while this replica leads. Never raises on a lost race."""
        try:
            lease = self.api.get_lease(self.namespace, self.name)
            step = next_lease(lease, self.identity, now, self.duration)
            if step.action != "wait":
                metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
                if lease is not None:
                    metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": metadata,
                    "spec": step.spec,
                }
                self.api.write_lease(self.namespace, body, create=step.action == "create")
                self._held_until = now + datetime.timedelta(seconds=self.duration)
        except TemporaryError:
            pass  # a lost race (409) or an unreachable API server: lead only while the lease holds
        return self.is_leader(now)

    def is_leader(self, now: datetime.datetime) -> bool:
        return self._held_until is not None and now < self._held_until

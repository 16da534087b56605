"""What each proxy holds compared with what the control plane wants: the data of ``proxy-status``.

:class:`canarymesh.runtime.local.ads.AdsServer` builds these records from the ACKs and NACKs Envoy
sends; the CLI renders them. The states follow ``istioctl proxy-status`` (SYNCED, NOT SENT, STALE,
IGNORED) plus NACKED, which Istio folds into STALE but which a user most needs to see, with
Envoy's reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from canarymesh.runtime.local.codec import PUSH_ORDER, WILDCARD_TYPES, short_type

__all__ = ["NodeStatus", "SyncState", "TypeStatus"]


class SyncState(enum.Enum):
    SYNCED = "SYNCED"  # the proxy ACKed the version the control plane holds
    NOT_SENT = "NOT SENT"  # nothing of this type reached the proxy yet
    STALE = "STALE"  # sent, not answered yet (or an older version is all the proxy holds)
    NACKED = "NACKED"  # the proxy rejected the version the control plane holds
    IGNORED = "IGNORED"  # endpoints, routes or secrets the proxy has not asked for


@dataclass(frozen=True, slots=True)
class TypeStatus:
    """One resource type on one proxy; versions are per-type content hashes."""

    type_url: str
    wanted: str | None
    sent: str | None
    acked: str | None
    nacked: str | None
    error: str | None
    # Clusters and listeners are always wanted; the other types only once asked for by name.
    subscribed: bool = True

    @property
    def type_name(self) -> str:
        return short_type(self.type_url)

    @property
    def state(self) -> SyncState:
        if not self.subscribed and self.type_url not in WILDCARD_TYPES:
            return SyncState.IGNORED
        if self.wanted is not None and self.nacked == self.wanted:
            return SyncState.NACKED
        if self.sent is None:
            return SyncState.NOT_SENT
        if self.acked == self.wanted:
            return SyncState.SYNCED
        return SyncState.STALE


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A proxy (Envoy node id): its snapshot version, whether it is connected, each type."""

    node_id: str
    snapshot_version: str | None
    connected: bool
    types: tuple[TypeStatus, ...]

    @property
    def synced(self) -> bool:
        """Connected and every type ACKed at the wanted version."""
        done = (SyncState.SYNCED, SyncState.IGNORED)
        return self.connected and all(t.state in done for t in self.types)

    @property
    def settled(self) -> bool:
        """Connected and nothing in flight: every type is SYNCED, NACKED or IGNORED."""
        done = (SyncState.SYNCED, SyncState.NACKED, SyncState.IGNORED)
        return self.connected and all(t.state in done for t in self.types)

    @property
    def errors(self) -> dict[str, str]:
        """Envoy's rejection message per type name, for types NACKed at the wanted version."""
        return {
            t.type_name: t.error or ""
            for t in self.types
            if t.state is SyncState.NACKED and t.error is not None
        }

    def type(self, type_url: str) -> TypeStatus:
        for status in self.types:
            if status.type_url == type_url:
                return status
        raise KeyError(f"{self.node_id} has no status for {type_url}")


def order_key(type_url: str) -> tuple[int, str]:
    """Sort types in push order, unknown ones after, by name."""
    rank = PUSH_ORDER.index(type_url) if type_url in PUSH_ORDER else len(PUSH_ORDER)
    return rank, type_url

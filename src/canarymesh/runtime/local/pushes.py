"""What each proxy is sent: its snapshot regenerated when the mesh or the ready pods change.

Owned by the reconciler. As in Istio, only ready pods are endpoints: every snapshot comes from
the mesh without the pods that are not ready, and a change of that set regenerates every proxy.
A routing-only change regenerates just the proxies it can touch (``mesh.index``), and a change of
VirtualServices only rebuilds their hosts' virtual hosts (``xds.generate``'s shortcut); the ADS
server then sends only the types whose content changed.
"""

from __future__ import annotations

from dataclasses import replace

from canarymesh.mesh.index import MeshIndex
from canarymesh.mesh.model import MeshSnapshot
from canarymesh.runtime.local.ads import AdsServer
from canarymesh.xds.generate import generate, update_virtual_services
from canarymesh.xds.snapshot import XdsSnapshot

__all__ = ["PushCheckpoint", "Pusher"]

# What a push changes besides the snapshots: the index it built and the pods it made endpoints.
PushCheckpoint = tuple[MeshIndex | None, frozenset[str] | None]


class Pusher:
    def __init__(self, ads: AdsServer) -> None:
        self.ads = ads
        self.snapshots: dict[str, XdsSnapshot] = {}
        self._index: MeshIndex | None = None
        # The ready pods the last push made endpoints of (None before the first push).
        self.endpoint_pods: frozenset[str] | None = None

    def push(
        self,
        mesh: MeshSnapshot,
        ready: frozenset[str],
        only: frozenset[str] | None = None,
        vs_hosts: frozenset[str] | None = None,
    ) -> list[str]:
        """Regenerate the snapshots of ``only`` (None: every proxy) and push those that changed;
        with ``vs_hosts``, only those hosts' virtual hosts are rebuilt."""
        if ready != self.endpoint_pods:
            only = vs_hosts = None
        self.endpoint_pods = ready
        serving = replace(
            mesh, proxies=tuple(p for p in mesh.proxies if p.kind == "gateway" or p.id in ready)
        )
        incremental = vs_hosts is not None and self._index is not None
        index = (
            self._index.with_virtual_services(serving)
            if vs_hosts is not None and self._index is not None
            else MeshIndex.of(serving)
        )
        self._index = index
        pushed = []
        for proxy in mesh.proxies:
            if only is not None and proxy.id not in only and proxy.id in self.snapshots:
                continue
            previous = self.snapshots.get(proxy.id)
            if incremental and vs_hosts is not None and previous is not None:
                snapshot = update_virtual_services(previous, serving, proxy, index, vs_hosts)
            else:
                snapshot = generate(serving, proxy, index)
            if previous is not None and previous.version == snapshot.version:
                continue
            self.ads.set_snapshot(proxy.id, snapshot)
            self.snapshots[proxy.id] = snapshot
            pushed.append(proxy.id)
        return pushed

    def checkpoint(self) -> PushCheckpoint:
        return self._index, self.endpoint_pods

    def restore(
        self, checkpoint: PushCheckpoint, snapshots: dict[str, XdsSnapshot], pushed: list[str]
    ) -> None:
        """Back to ``snapshots``: the proxies in ``pushed`` are sent their previous config."""
        self._index, self.endpoint_pods = checkpoint
        self.snapshots = dict(snapshots)
        for proxy_id in pushed:
            previous = snapshots.get(proxy_id)
            if previous is not None:
                self.ads.set_snapshot(proxy_id, previous)
            else:
                self.ads.remove_node(proxy_id)

    def forget(self, proxy_id: str) -> None:
        self.ads.remove_node(proxy_id)
        self.snapshots.pop(proxy_id, None)

"""Workload certificates: the local CA's SPIFFE certificate for each proxy, kept per proxy id.

The reconciler asks :meth:`Identities.attach` for every proxy of a planned mesh; a proxy keeps its
certificate while it runs (so a config change never re-keys it) and a new pod gets its own, with
its access-log token (:mod:`~canarymesh.runtime.local.credentials`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from canarymesh.mesh.model import ProxyNode, WorkloadIdentity
from canarymesh.runtime.local.ca import LocalCA, spiffe_id
from canarymesh.runtime.local.credentials import ALS_PURPOSE, MeshCredentials

__all__ = ["Identities"]


class Identities:
    def __init__(self, ca: LocalCA, credentials: MeshCredentials | None = None) -> None:
        self.ca = ca
        self.credentials = credentials
        self._by_proxy: dict[str, WorkloadIdentity] = {}

    def attach(self, proxy: ProxyNode) -> ProxyNode:
        """``proxy`` with its identity, issued now if it has none yet."""
        identity = self._by_proxy.get(proxy.id)
        if identity is None:
            cert = self.ca.issue(
                spiffe_id(proxy.namespace, proxy.service_account), dt.datetime.now(dt.UTC)
            )
            token = self.credentials.token(ALS_PURPOSE, proxy.id) if self.credentials else ""
            identity = WorkloadIdentity(cert.chain_pem, cert.key_pem, self.ca.root_pem, token)
            self._by_proxy[proxy.id] = identity
        return replace(proxy, identity=identity)

    def forget(self, proxy_id: str) -> None:
        self._by_proxy.pop(proxy_id, None)

"""The applied documents as typed resources, and which proxies a change of them can touch.

The reconciler's planning half (nothing here starts or pushes anything). Each document is typed
and validated on its own (its checks do not depend on the others), so the previous apply's
results are reused: re-typing the whole store on each apply cost more than everything else an
apply does. A change is *pending* until the reconciler realises it (:meth:`Desired.commit`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import cast

from pydantic import BaseModel

from canarymesh.api.istio_networking import VirtualService
from canarymesh.api.loader import load_text
from canarymesh.api.objects import Resource
from canarymesh.errors import ConfigError
from canarymesh.mesh.index import affected_proxies
from canarymesh.mesh.model import Config, MeshSnapshot, resolve_host
from canarymesh.runtime.local.store import Document, Key

__all__ = ["ROUTING_KINDS", "Desired", "Typed"]

# Istio config kinds whose change ``affected_proxies`` can narrow down to some proxies.
ROUTING_KINDS = frozenset(
    {"VirtualService", "DestinationRule", "PeerAuthentication", "AuthorizationPolicy"}
)
Typed = dict[Key, tuple[Document, Resource[BaseModel]]]


class Desired:
    def __init__(self) -> None:
        self._loaded: Typed = {}
        self._pending: Typed = {}

    def typed(self, documents: Mapping[Key, Document]) -> tuple[Resource[BaseModel], ...]:
        """The api package's resources for ``documents``; only new or changed ones are loaded."""
        fresh = {k: d for k, d in documents.items() if self._loaded.get(k, (None,))[0] != d}
        typed: dict[tuple[str, str, str, str], Resource[BaseModel]] = {}
        if fresh:
            text = "\n---\n".join(json.dumps(d) for d in fresh.values())
            loaded = load_text(text, "<applied resources>")
            if loaded.diagnostics.has_errors:
                raise ConfigError("\n".join(loaded.diagnostics.lines()))
            typed = {
                (r.api_version, r.kind, r.namespace_or(""), r.name): r for r in loaded.resources
            }
        cache = {k: v for k, v in self._loaded.items() if k in documents and k not in fresh}
        for key, document in fresh.items():
            meta = document.get("metadata")
            namespace = str(meta.get("namespace") or "") if isinstance(meta, dict) else ""
            api_version, kind = str(document.get("apiVersion")), str(document.get("kind"))
            found = typed.get((api_version, kind, namespace, key[2]))
            if found is not None:
                cache[key] = (document, found)
        self._pending = cache
        return tuple(resource for _, resource in cache.values())

    def commit(self) -> None:
        self._loaded = self._pending

    def checkpoint(self) -> Typed:
        return self._loaded

    def restore(self, loaded: Typed) -> None:
        self._loaded = self._pending = loaded

    def scope(
        self, before_mesh: MeshSnapshot | None, mesh: MeshSnapshot
    ) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """Proxies a pure routing/policy change touches (``mesh.index.affected_proxies``), and
        for a change of VirtualServices only, their hosts; (None, None): everything.

        Anything else (workloads, services, gateways' own resources, proxies or ports that
        changed) regenerates every proxy; the ADS server still pushes only what differs.
        """
        if before_mesh is None or before_mesh.proxies != mesh.proxies:
            return None, None
        before, after = self._loaded, self._pending
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        found: set[str] = set()
        hosts: set[str] | None = set()
        for key in changed:
            for entry in (before.get(key), after.get(key)):
                if entry is None:
                    continue
                resource = entry[1]
                if resource.kind not in ROUTING_KINDS or "istio.io" not in resource.api_version:
                    return None, None
                namespace = resource.namespace_or("default")
                config = cast(
                    Config[object], Config(resource.kind, resource.name, namespace, resource.spec)
                )
                found.update(p.id for p in affected_proxies(mesh, config))
                spec = resource.spec
                if hosts is not None and isinstance(spec, VirtualService):
                    hosts.update(resolve_host(h, namespace) for h in spec.hosts)
                else:
                    hosts = None
        return frozenset(found), (frozenset(hosts) if hosts is not None else None)

"""Config canaries on the local mesh: which pods take the changed config, and what is applied.

A ``Canary`` with ``spec.config`` (:class:`canarymesh.api.canary.ConfigChange`) names changed
VirtualService, DestinationRule and AuthorizationPolicy documents. While it runs, the controller
sets its share (each step's ``setWeight``, in percent) through the control plane, which keeps it
here (``config-canaries.json``, so a restart keeps it) and, on every reconcile:

* rewrites the applied documents with :func:`canarymesh.routing.config_split.split_documents`;
* labels pods ``canarymesh.io/config-canary``: for routing changes, that share of the target's
  client sidecars (those the telemetry saw calling it, else every sidecar) ``canary`` and the
  other clients ``stable``; for a policy, the same split of the workloads it selects.

Promotion applies the changed documents as the config everyone takes; an abort or rollback just
drops the share, so every pod goes back to the current config.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from canarymesh.mesh.model import MeshSnapshot, ProxyNode, labels_match, resolve_host
from canarymesh.routing.config_split import (
    CANARY,
    LABEL,
    STABLE,
    Document,
    choose_pods,
    document_key,
    split_documents,
)
from canarymesh.runtime.local.store import Key, key_of

__all__ = ["ConfigCanaries", "config_change_of"]

Callers = Callable[[str], set[str]]


def config_change_of(document: Mapping[str, Any]) -> list[Document] | None:
    """The changed documents of a config canary (namespaced as the Canary), or None."""
    if document.get("kind") != "Canary" or not str(document.get("apiVersion", "")).startswith(
        "canarymesh.io/"
    ):
        return None
    spec = document.get("spec")
    config = spec.get("config") if isinstance(spec, dict) else None
    if not isinstance(config, dict):
        return None
    namespace = (document.get("metadata") or {}).get("namespace") or "default"
    found = []
    for resource in config.get("resources") or []:
        if isinstance(resource, dict):
            meta = dict(resource.get("metadata") or {})
            meta.setdefault("namespace", namespace)
            found.append({**resource, "metadata": meta})
    return found


class ConfigCanaries:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.shares: dict[str, float] = {}
        if path is not None and path.exists():
            try:
                saved = json.loads(path.read_text())
            except ValueError:
                saved = {}
            self.shares = {str(k): float(v) for k, v in saved.items()}

    def set_share(self, key: str, percent: float | None) -> None:
        if percent is None:
            self.shares.pop(key, None)
        else:
            self.shares[key] = max(0.0, min(100.0, percent))
        if self.path is not None:
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps(self.shares, sort_keys=True))
            os.replace(tmp, self.path)

    def active(
        self, documents: Mapping[Key, Document]
    ) -> list[tuple[str, Document, list[Document], float]]:
        """(key, Canary, changed documents, share) of every config canary with a share."""
        found = []
        for document in documents.values():
            changed = config_change_of(document)
            if changed is None:
                continue
            meta = document.get("metadata") or {}
            key = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
            if key in self.shares:
                found.append((key, document, changed, self.shares[key]))
        return found

    def rewrite(self, documents: Mapping[Key, Document]) -> dict[Key, Document]:
        """``documents`` with every running config canary's split in place of what it changes."""
        out = dict(documents)
        for _, _, changed, _ in self.active(documents):
            current = {document_key(doc): doc for doc in out.values()}
            split, replaced = split_documents(current, changed)
            for key in [k for k, doc in out.items() if document_key(doc) in replaced]:
                del out[key]
            for doc in split:
                out[key_of(doc)] = doc
        return out

    def label(
        self, documents: Mapping[Key, Document], mesh: MeshSnapshot, callers: Callers
    ) -> tuple[MeshSnapshot, dict[str, tuple[str, str]]]:
        """``mesh`` with the chosen pods labelled (their labels decide which config they run),
        and the (config canary, set) of every pod a running config canary split."""
        extra: dict[str, dict[str, str]] = {}
        members: dict[str, tuple[str, str]] = {}
        sidecars = [p for p in mesh.proxies if p.kind == "sidecar"]
        for key, canary, changed, share in self.active(documents):
            namespace = key.split("/", 1)[0]
            spec = canary.get("spec") or {}
            target = spec.get("target") or {}
            routing = [d for d in changed if d.get("kind") != "AuthorizationPolicy"]
            if routing:
                host = resolve_host(str(target.get("host", "")), namespace)
                clients = sorted(callers(host) & {p.id for p in sidecars}) or sorted(
                    p.id for p in sidecars
                )
                chosen = set(choose_pods(clients, share, key))
                for proxy_id in clients:
                    # Only the canary label selects anything; "stable" names the other set.
                    side = CANARY if proxy_id in chosen else STABLE
                    extra.setdefault(proxy_id, {})[LABEL] = side
                    members[proxy_id] = (key, side)
            for policy in (d for d in changed if d.get("kind") == "AuthorizationPolicy"):
                selected = _selected_by(policy, sidecars)
                chosen = set(choose_pods(selected, share, key))
                for proxy_id in selected:
                    side = CANARY if proxy_id in chosen else STABLE
                    extra.setdefault(proxy_id, {})[LABEL] = side
                    members[proxy_id] = (key, side)
        if not extra:
            return mesh, members
        proxies = tuple(_labelled(p, extra.get(p.id)) for p in mesh.proxies)
        return replace(mesh, proxies=proxies), members


def _selected_by(policy: Document, sidecars: list[ProxyNode]) -> list[str]:
    meta = policy.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    selector = ((policy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return sorted(
        p.id
        for p in sidecars
        if p.namespace == namespace and labels_match(dict(selector), p.label_map)
    )


def _labelled(proxy: ProxyNode, extra: dict[str, str] | None) -> ProxyNode:
    if not extra:
        return proxy
    return replace(proxy, labels=tuple(sorted({**proxy.label_map, **extra}.items())))

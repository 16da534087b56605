"""The config view: applied resources, ``analyze`` findings, proxy status. Pure.

Called by the dashboard's ``/api/config`` with the documents the control plane holds, the
diagnostics of :func:`canarymesh.api.analyze.analyze` over them and the rows of
``/v1/proxy-status`` (the same data ``canarymesh get`` and ``proxy-status`` print).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from canarymesh.api.diagnostics import Diagnostic

__all__ = ["ConfigView", "FindingRow", "ProxyRow", "ResourceRow", "config_view"]


@dataclass(frozen=True, slots=True)
class ResourceRow:
    kind: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class FindingRow:
    code: str
    level: str
    resource: str
    field: str
    reason: str
    istio_code: str = ""  # Istio's code for the same finding (IST0101...), if it has one


@dataclass(frozen=True, slots=True)
class ProxyRow:
    name: str
    namespace: str
    connected: bool
    synced: bool
    # xDS type (CDS, LDS, ...) -> ACKED / NACKED / STALE ...
    types: Mapping[str, str]
    # xDS type -> Envoy's error text for a rejected config
    errors: Mapping[str, str]
    status: str


@dataclass(frozen=True, slots=True)
class ConfigView:
    resources: tuple[ResourceRow, ...]
    findings: tuple[FindingRow, ...]
    proxies: tuple[ProxyRow, ...]
    nacked: int


def _resource(document: Mapping[str, object]) -> ResourceRow:
    meta = cast(Mapping[str, object], document.get("metadata") or {})
    return ResourceRow(
        kind=str(document.get("kind", "?")),
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name", "?")),
    )


def _proxy(row: Mapping[str, object]) -> ProxyRow:
    types = {str(k): str(v) for k, v in cast(Mapping[str, object], row.get("types", {})).items()}
    errors = {str(k): str(v) for k, v in cast(Mapping[str, object], row.get("errors", {})).items()}
    connected = bool(row.get("connected"))
    if not connected:
        status = "DISCONNECTED"
    elif errors or any(v == "NACKED" for v in types.values()):
        status = "NACKED"
    else:
        status = "SYNCED" if row.get("synced") else "STALE"
    return ProxyRow(
        str(row.get("name", "?")),
        str(row.get("namespace", "")),
        connected,
        bool(row.get("synced")),
        types,
        errors,
        status,
    )


def config_view(
    documents: Sequence[Mapping[str, object]],
    diagnostics: Sequence[Diagnostic],
    proxies: Sequence[Mapping[str, object]],
) -> ConfigView:
    resources = sorted(
        (_resource(d) for d in documents), key=lambda r: (r.kind, r.namespace, r.name)
    )
    findings = tuple(
        FindingRow(d.code, d.level, d.resource or "", d.field or "", d.reason, d.istio_code or "")
        for d in diagnostics
    )
    rows = tuple(_proxy(p) for p in proxies)
    return ConfigView(
        tuple(resources), findings, rows, sum(1 for r in rows if r.status == "NACKED")
    )

"""A config canary: a changed VirtualService, DestinationRule or AuthorizationPolicy that only a
fraction of the sidecars receive, written as ordinary Istio config so both runtimes run it.

Pure. The pods chosen for the canary carry the label :data:`LABEL` = ``canary`` (the others,
where a policy needs it, ``stable``); :func:`split_documents` turns the current documents and
the candidate ones into what is applied meanwhile:

* a **VirtualService**: the candidate's rules first, each also matching ``sourceLabels``
  ``{LABEL: canary}``, then the current rules. Only the canary's clients take the new rules;
  Istio ignores ``sourceLabels`` at gateways, so gateways keep the current ones. A canary pod
  that matches none of the candidate's rules gets a 404, as it would from the candidate alone.
* a **DestinationRule**: the current one, plus the candidate as ``<name>-config-canary`` with a
  ``workloadSelector`` on the label (Istio applies a selected rule before the namespace's).
* an **AuthorizationPolicy**: the current one selects ``{LABEL: stable}`` pods too, the
  candidate (``<name>-config-canary``) ``{LABEL: canary}`` pods: each pod runs exactly one.

Anything else, or a VirtualService bound only to gateways (no sidecar takes it), is refused.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from canarymesh.errors import ConfigError

__all__ = [
    "CANARY",
    "KINDS",
    "LABEL",
    "STABLE",
    "SUFFIX",
    "Document",
    "choose_pods",
    "document_key",
    "split_documents",
]

LABEL = "canarymesh.io/config-canary"
CANARY = "canary"
STABLE = "stable"
SUFFIX = "-config-canary"
KINDS = ("VirtualService", "DestinationRule", "AuthorizationPolicy")
Document = dict[str, Any]
_ROUTE_KINDS = ("http", "tcp", "tls")


def document_key(doc: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = doc.get("metadata") or {}
    return (str(doc.get("kind")), str(meta.get("namespace") or "default"), str(meta.get("name")))


def split_documents(
    current: Mapping[tuple[str, str, str], Document], candidates: Sequence[Document]
) -> tuple[list[Document], set[tuple[str, str, str]]]:
    """(the documents to apply in the candidates' place, the current ones they replace)."""
    out: list[Document] = []
    replaced: set[tuple[str, str, str]] = set()
    for candidate in candidates:
        key = document_key(candidate)
        kind = key[0]
        if kind not in KINDS:
            raise ConfigError(
                f"{kind} {key[1]}/{key[2]}: a config canary changes {', '.join(KINDS)} only"
            )
        old = current.get(key)
        if old is not None:
            replaced.add(key)
        if kind == "VirtualService":
            out.append(_split_virtual_service(old, candidate))
        elif kind == "DestinationRule":
            if old is not None:
                out.append(copy.deepcopy(old))
            out.append(_selected(candidate, "workloadSelector", CANARY))
        else:
            if old is not None:
                out.append(_with_selector(old, "selector", STABLE))
            out.append(_selected(candidate, "selector", CANARY))
    return out, replaced


def _split_virtual_service(old: Document | None, candidate: Document) -> Document:
    spec = candidate.get("spec") or {}
    name = f"{candidate['metadata'].get('namespace', 'default')}/{candidate['metadata']['name']}"
    gateways = spec.get("gateways") or ["mesh"]
    if "mesh" not in gateways:
        raise ConfigError(
            f"VirtualService {name}: bound to gateways only ({', '.join(gateways)}); a config"
            " canary is taken by a fraction of the sidecars, so its rules must bind to mesh"
        )
    merged = copy.deepcopy(old) if old is not None else copy.deepcopy(candidate)
    merged_spec = merged.setdefault("spec", {})
    hosts = list(spec.get("hosts") or [])
    if old is not None and sorted(old.get("spec", {}).get("hosts") or []) != sorted(hosts):
        raise ConfigError(
            f"VirtualService {name}: a config canary keeps the hosts"
            f" ({', '.join(old['spec'].get('hosts') or [])}); changing them is a new object"
        )
    for kind in _ROUTE_KINDS:
        rules = [_canary_rule(rule, kind) for rule in spec.get(kind) or []]
        if kind == "http" and rules and all(rule.get("match") for rule in spec.get(kind) or []):
            # Whatever the candidate does not route, the canary's clients do not get either.
            rules.append(
                {
                    "name": f"unrouted{SUFFIX}",
                    "match": [{"sourceLabels": {LABEL: CANARY}}],
                    "directResponse": {"status": 404},
                }
            )
        if old is None:
            kept = _default_rules(kind, hosts) if rules else []
        else:
            kept = copy.deepcopy(old.get("spec", {}).get(kind) or [])
        if rules or kept:
            merged_spec[kind] = rules + kept
    return merged


def _default_rules(kind: str, hosts: Sequence[str]) -> list[Document]:
    """Where a new VirtualService's host went before it existed: its service, unchanged."""
    if kind != "http" or len(hosts) != 1:
        return []
    return [{"route": [{"destination": {"host": hosts[0]}}]}]


def _canary_rule(rule: Document, kind: str) -> Document:
    out = copy.deepcopy(rule)
    if out.get("name"):
        out["name"] = f"{out['name']}{SUFFIX}"
    matches = out.get("match") or [{}]
    out["match"] = [
        {**match, "sourceLabels": {**(match.get("sourceLabels") or {}), LABEL: CANARY}}
        for match in matches
    ]
    return out


def _selected(doc: Document, field: str, value: str) -> Document:
    out = _with_selector(doc, field, value)
    out["metadata"] = {**out["metadata"], "name": f"{out['metadata']['name']}{SUFFIX}"}
    return out


def _with_selector(doc: Document, field: str, value: str) -> Document:
    out = copy.deepcopy(doc)
    spec = out.setdefault("spec", {})
    selector = spec.get(field) or {}
    labels = {**(selector.get("matchLabels") or {}), LABEL: value}
    spec[field] = {**selector, "matchLabels": labels}
    return out


def choose_pods(candidates: Sequence[str], percent: float, seed: str) -> list[str]:
    """The first ``percent`` of ``candidates`` in an order fixed by ``seed`` (at least one when
    ``percent`` > 0): a larger percent keeps every pod a smaller one chose."""
    if percent <= 0 or not candidates:
        return []
    ordered = sorted(candidates, key=lambda c: hashlib.sha256(f"{seed}/{c}".encode()).hexdigest())
    count = min(len(ordered), max(1, math.ceil(percent * len(ordered) / 100 - 1e-9)))
    return ordered[:count]

"""``canarymesh apply --canary 10% -f new-routing.yaml``: apply changed routing or policy as a
config canary instead of to every sidecar at once.

The files' VirtualService, DestinationRule and AuthorizationPolicy documents become the
``spec.config.resources`` of a ``Canary`` named ``<first document>-config``; the controller
moves the target's client sidecars to them step by step (the first step is the percent given,
then 25% and 50%), judges the requests of the sidecars on the changed config against those on
the current one, and promotes (the documents become the applied config) or rolls back (every
sidecar back on the current config). Pure: builds the Canary document.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from canarymesh.api.canary import API_GROUP
from canarymesh.api.validate_config_canary import CONFIG_KINDS
from canarymesh.api.yamldocs import parse_documents
from canarymesh.errors import ConfigError
from canarymesh.mesh.model import resolve_host
from canarymesh.runtime.local.api_models import DocumentText

__all__ = ["config_canary_document", "parse_percent"]

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")
# After the first step: the default plan's later weights, each judged for a minute.
_LATER_WEIGHTS = (25, 50)
_STEP_ANALYSIS = "1m"


def parse_percent(text: str) -> int:
    """``10%`` (or ``10``) as 10; a ConfigError unless it is a whole number in 1..99."""
    found = _PERCENT.match(text)
    value = float(found.group(1)) if found else -1.0
    if not found or value != int(value) or not 1 <= value <= 99:
        raise ConfigError(f"--canary {text!r}: give a whole percent between 1% and 99%")
    return int(value)


def config_canary_document(
    texts: Sequence[DocumentText],
    percent: int,
    namespace: str | None = None,
    host: str | None = None,
) -> dict[str, Any]:
    """The Canary that rolls the documents of ``texts`` out as a config canary."""
    documents: list[dict[str, Any]] = []
    for text in texts:
        parsed, problems = parse_documents(text.text)
        if problems:
            raise ConfigError(f"{text.source}: not YAML a config canary can read")
        for doc in parsed:
            if not isinstance(doc.data, dict):
                raise ConfigError(f"{text.source}:{doc.line}: a document is not a mapping")
            documents.append(_placed(doc.data, text, namespace, doc.line))
    if not documents:
        raise ConfigError("--canary: the files hold no document to roll out")
    namespaces = {d["metadata"]["namespace"] for d in documents}
    if len(namespaces) > 1:
        raise ConfigError(
            f"--canary: the documents are in {len(namespaces)} namespaces"
            f" ({', '.join(sorted(namespaces))}); a config canary changes one namespace"
        )
    (ns,) = namespaces
    target = host or _target_host(documents)
    weights = [percent, *(w for w in _LATER_WEIGHTS if w > percent)]
    steps: list[dict[str, Any]] = []
    for weight in weights:
        steps += [{"setWeight": weight}, {"analysis": {"duration": _STEP_ANALYSIS}}]
    return {
        "apiVersion": f"{API_GROUP}/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": f"{documents[0]['metadata']['name']}-config", "namespace": ns},
        "spec": {
            "target": {"host": target},
            "config": {"resources": documents},
            "strategy": {"canary": {"steps": steps}},
        },
    }


def _placed(
    data: dict[str, Any], text: DocumentText, namespace: str | None, line: int
) -> dict[str, Any]:
    kind = data.get("kind")
    meta = data.get("metadata")
    if kind not in CONFIG_KINDS or not isinstance(meta, dict) or not meta.get("name"):
        raise ConfigError(
            f"{text.source}:{line}: {kind or 'a document without kind'}: --canary rolls out"
            f" {', '.join(CONFIG_KINDS)} documents (with metadata.name) only"
        )
    return {
        **data,
        "metadata": {**meta, "namespace": meta.get("namespace") or namespace or "default"},
    }


def _target_host(documents: Sequence[dict[str, Any]]) -> str:
    """The one service the changed routing is about (its clients take the canary)."""
    hosts: set[str] = set()
    for doc in documents:
        found = doc.get("spec")
        spec: dict[str, Any] = found if isinstance(found, dict) else {}
        namespace = doc["metadata"]["namespace"]
        if doc["kind"] == "VirtualService":
            hosts.update(resolve_host(str(h), namespace) for h in spec.get("hosts") or [])
        elif doc["kind"] == "DestinationRule" and spec.get("host"):
            hosts.add(resolve_host(str(spec["host"]), namespace))
    if len(hosts) != 1:
        found = ", ".join(sorted(hosts)) or "none (a policy)"
        raise ConfigError(
            f"--canary: the documents route {found}: name the service to judge with --host"
        )
    return hosts.pop()

"""The applied resources of one local mesh, kept as the documents the user wrote.

The control plane (``daemon``) holds one :class:`Store`; ``apply`` and ``delete`` plan a change with
:meth:`Store.plan_apply` / :meth:`Store.plan_delete` (pure: nothing changes until
:meth:`Store.commit`), and the store is saved to ``<state_dir>/store.json`` on every commit so that
``get -o yaml`` shows what was applied. The api package turns the documents back into typed
resources (:func:`yaml_text` feeds ``loader.load_text``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from canarymesh.api.loader import load_text, parse_text
from canarymesh.api.object_limits import object_problems
from canarymesh.api.objects import CLUSTER_SCOPED_KINDS
from canarymesh.errors import ConfigError

__all__ = [
    "Change",
    "Document",
    "Key",
    "Store",
    "display_name",
    "key_of",
    "split_documents",
    "yaml_text",
]

Document = dict[str, object]
# (kind qualified by its API group as kubectl prints it, namespace, name): an Istio Gateway
# (``gateway.networking.istio.io``) and a Gateway API one never share a key. Namespace is ""
# for cluster-scoped kinds.
Key = tuple[str, str, str]
Outcome = Literal["created", "configured", "unchanged", "deleted", "not found"]


@dataclass(frozen=True, slots=True)
class Change:
    """What one document does to the store, printed like kubectl (``service/details created``)."""

    key: Key
    outcome: Outcome

    @property
    def line(self) -> str:
        return f"{self.key[0]}/{self.key[2]} {self.outcome}"


def display_name(kind: str, api_version: str) -> str:
    """kubectl's ``<resource>.<group>``: ``deployment.apps``, ``service`` (core group)."""
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    return kind.lower() + (f".{group}" if group else "")


def split_documents(text: str, source: str, namespace: str | None = None) -> list[Document]:
    """The objects in a YAML stream (``List`` kinds expanded), each with its namespace filled.

    Read by the api package's reader (sizes, UTF-8, nesting, alias expansion: a request from a
    hostile local process is held to the same limits as the CLI's input), never by
    ``yaml.load_all``, which would build an alias bomb for the store to serialise.
    """
    loaded, problems = parse_text(text, source)
    if problems.has_errors:
        raise ConfigError("\n".join(problems.lines()))
    documents: list[Document] = []
    try:
        for document in loaded:
            if not isinstance(document, dict):
                raise ConfigError(f"{source}: a document is not a mapping")
            kind = str(document.get("kind", ""))
            items = document.get("items") if kind.endswith("List") else None
            for item in items if isinstance(items, list) else [document]:
                if isinstance(item, dict):
                    if object_problems(item):  # sizes, NaN: what JSON and etcd cannot hold
                        raise ConfigError(f"{source}: an object breaks a limit")
                    documents.append(_with_namespace(item, namespace))
    except ConfigError as err:
        # Say it as validate would (code, line, object, field); only ever on this bad path.
        found = load_text(text, source).diagnostics
        raise ConfigError("\n".join(found.lines()) if found.has_errors else str(err)) from None
    return documents


def _with_namespace(document: Document, namespace: str | None) -> Document:
    kind = str(document.get("kind", ""))
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        raise ConfigError(f"a {kind or 'document'} has no metadata")
    metadata = dict(metadata)
    if kind in CLUSTER_SCOPED_KINDS:
        metadata.pop("namespace", None)
    else:
        metadata["namespace"] = metadata.get("namespace") or namespace or "default"
    return {**document, "metadata": metadata}


def key_of(document: Mapping[str, object]) -> Key:
    metadata = document.get("metadata")
    meta = metadata if isinstance(metadata, dict) else {}
    kind = display_name(str(document.get("kind", "")), str(document.get("apiVersion", "")))
    return kind, str(meta.get("namespace") or ""), str(meta.get("name"))


class Store:
    """Documents by key, persisted as JSON in the state directory."""

    def __init__(self, path: Path, documents: Mapping[Key, Document] | None = None) -> None:
        self.path = path
        self.documents: dict[Key, Document] = dict(documents or {})

    @classmethod
    def load(cls, path: Path) -> Store:
        if not path.exists():
            return cls(path)
        stored = json.loads(path.read_text())
        return cls(path, {key_of(d): d for d in stored})

    def plan_apply(self, documents: Sequence[Document]) -> tuple[dict[Key, Document], list[Change]]:
        """The documents after applying ``documents`` (later ones win), and a change per input."""
        after = dict(self.documents)
        changes = []
        for document in documents:
            key = key_of(document)
            before = after.get(key)
            outcome: Outcome = (
                "created" if before is None else "unchanged" if before == document else "configured"
            )
            after[key] = document
            changes.append(Change(key, outcome))
        return after, changes

    def plan_delete(
        self, documents: Sequence[Document]
    ) -> tuple[dict[Key, Document], list[Change]]:
        after = dict(self.documents)
        changes = []
        for document in documents:
            key = key_of(document)
            outcome: Outcome = "deleted" if after.pop(key, None) is not None else "not found"
            changes.append(Change(key, outcome))
        return after, changes

    def commit(self, documents: Mapping[Key, Document]) -> None:
        self.documents = dict(documents)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(list(self.documents.values()), indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def select(
        self, kinds: Iterable[str], namespace: str | None, name: str | None
    ) -> list[Document]:
        """Documents of ``kinds`` (qualified, as keys are) in ``namespace`` (None: all)."""
        wanted = set(kinds)
        return [
            d
            for (kind, ns, n), d in sorted(self.documents.items())
            if kind in wanted and (namespace is None or ns in (namespace, "")) and name in (None, n)
        ]


def yaml_text(documents: Iterable[Document]) -> str:
    """One YAML stream of ``documents``, for ``loader.load_text``."""
    return yaml.safe_dump_all(list(documents), sort_keys=False)

"""The envelope every loaded manifest gets: :class:`ObjectMeta` plus :class:`Resource`.

Pure. Built by :mod:`canarymesh.api.loader`; read by the mesh model, apply and analysis. A
``Resource`` holds the typed spec (one of the models in ``istio_networking``, ``istio_security``,
``gateway_api``, ``kube`` or ``canary``) and where it came from, so every later message can name
the file and line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

from pydantic import BaseModel, Field

from canarymesh.api.base import KubeModel, Labels, Str
from canarymesh.api.source import UNKNOWN_SOURCE, Source

__all__ = [
    "CLUSTER_SCOPED_KINDS",
    "FieldPath",
    "ObjectMeta",
    "Resource",
    "ResourceKey",
    "raw_label",
    "select",
]

# A path into a document as YAML keys and list indexes: ("spec", "http", 0, "route", 1, "weight").
FieldPath = tuple[str | int, ...]
# (kind, namespace, name); namespace is "" for cluster-scoped kinds.
ResourceKey = tuple[str, str, str]

# Kinds that live outside namespaces (only Namespace is typed; the others appear in labels of
# diagnostics about skipped kinds).
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "ClusterIssuer",
    "CustomResourceDefinition", "StorageClass", "PriorityClass", "GatewayClass", "APIService",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
})  # fmt: skip

SpecT = TypeVar("SpecT", bound=BaseModel, covariant=True)
SelectedT = TypeVar("SelectedT", bound=BaseModel)


class ObjectMeta(KubeModel):
    """Kubernetes ``metadata``: the fields we use; others (uid, generateName...) are kept."""

    name: Str
    namespace: Str | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resource(Generic[SpecT]):
    """One manifest: ``apiVersion``/``kind``/``metadata`` around a typed ``spec``.

    For kinds without a ``spec`` key (Secret, ConfigMap, ServiceAccount) the spec model holds
    the top-level fields instead (``data``, ``type``...), so every kind has the same shape.
    ``field_lines`` maps a :data:`FieldPath` (YAML names) to the 1-based line where it was
    written; it lets validation point at ``weight: -5`` rather than at the document.
    """

    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: SpecT
    source: Source = UNKNOWN_SOURCE
    field_lines: Mapping[FieldPath, int] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    @property
    def name(self) -> str:
        return self.metadata.name

    def namespace_or(self, default: str) -> str:
        """The namespace written in metadata, or ``default`` (apply's ``-n``, else "default")."""
        return self.metadata.namespace or default

    @property
    def namespaced(self) -> bool:
        return self.kind not in CLUSTER_SCOPED_KINDS

    @property
    def key(self) -> ResourceKey:
        """Identity as ``kubectl`` sees it: ("VirtualService", "default", "reviews")."""
        namespace = self.namespace_or("default") if self.namespaced else ""
        return (self.kind, namespace, self.metadata.name)

    @property
    def display_name(self) -> str:
        """``default/reviews`` (or ``bookinfo`` for a cluster-scoped kind), as in diagnostics."""
        if not self.namespaced:
            return self.metadata.name
        return f"{self.namespace_or('default')}/{self.metadata.name}"

    def line_of(self, path: FieldPath) -> int:
        """The line of ``path``, or of its nearest written ancestor, or of the document."""
        for end in range(len(path), 0, -1):
            line = self.field_lines.get(path[:end])
            if line is not None:
                return line
        return self.source.line

    def with_namespace(self, namespace: str) -> Resource[SpecT]:
        """A copy placed in ``namespace`` when metadata names none (what ``apply -n`` does)."""
        if self.metadata.namespace is not None or not self.namespaced:
            return self
        metadata = self.metadata.model_copy(update={"namespace": namespace})
        return dataclasses.replace(self, metadata=metadata)


def raw_label(data: Mapping[str, object]) -> str | None:
    """``VirtualService default/reviews``, as diagnostics name an object, read from a document
    that may not fit any schema; None without a kind and a name."""
    kind, metadata = data.get("kind"), data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(kind, str) or not isinstance(name, str):
        return None
    if kind in CLUSTER_SCOPED_KINDS:
        return f"{kind} {name}"
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    return f"{kind} {namespace if isinstance(namespace, str) else 'default'}/{name}"


def select(
    resources: Iterable[Resource[BaseModel]], spec_type: type[SelectedT]
) -> list[Resource[SelectedT]]:
    """The resources whose spec is a ``spec_type``, in input order (typed for mypy)."""
    selected: list[Resource[SelectedT]] = []
    for resource in resources:
        if isinstance(resource.spec, spec_type):
            selected.append(cast("Resource[SelectedT]", resource))
    return selected

"""What the controller loop is wired to (:class:`Wiring`): the ports of :mod:`canarymesh.ports`
plus its own few, the Canaries to run, the manual-command inbox, webhooks, the load generator,
where decisions are reported (its metrics and the notifier, :class:`DecisionSinks`), and where
the notifier reads its providers. Small Protocols, so the loop runs the same against the local
mesh (:mod:`canarymesh.controller.local`), a cluster (:mod:`canarymesh.controller.kube`), and
the in-memory doubles of the unit tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from canarymesh.analysis.measure import ConfigCounters
from canarymesh.api.canary import Canary, Webhook
from canarymesh.api.notifications import AlertProviderSpec
from canarymesh.ports import Clock, MetricsSource, StateStore, TrafficRouter
from canarymesh.rollout.machine import Decision, WebhookResult
from canarymesh.rollout.state import CanaryState

__all__ = [
    "CanaryItem",
    "CanarySource",
    "CommandInbox",
    "DecisionSink",
    "DecisionSinks",
    "LoadControl",
    "ProviderItem",
    "ProviderSource",
    "WebhookCaller",
    "Wiring",
    "canary_item",
    "provider_items",
]

log = logging.getLogger("canarymesh.controller")


@dataclass(frozen=True, slots=True)
class CanaryItem:
    """One Canary as the controller sees it: ``rollout_id`` changes when a new rollout starts
    (``rollout start`` sets it), ``versions`` maps each subset to its pods' ``version``."""

    namespace: str
    name: str
    rollout_id: str
    canary: Canary
    versions: tuple[tuple[str, str], ...] = ()
    # A config canary's: where its two sets of sidecars are counted (None: a version canary).
    config: ConfigCounters | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def version_of(self, subset: str) -> str:
        return dict(self.versions).get(subset, subset)

    def member_version(self, host: str, subset: str) -> str:
        """A release group member's subset's ``version`` (``versions`` keys them
        ``<short host>/<subset>``)."""
        return dict(self.versions).get(f"{host.split('.', 1)[0]}/{subset}", subset)


def canary_item(
    namespace: str,
    name: str,
    rollout_id: str,
    canary: Canary,
    versions: tuple[tuple[str, str], ...],
    runtime: Literal["local", "cluster"],
) -> CanaryItem:
    """The item of one Canary; a config canary's requests are read where ``runtime`` counts
    them, at the clients' sidecars unless it changes authorization policies only (those run at
    the servers')."""
    config = None
    if canary.config is not None:
        kinds = {str(doc.get("kind")) for doc in canary.config.resources}
        reporter: Literal["source", "destination"] = (
            "destination" if kinds == {"AuthorizationPolicy"} else "source"
        )
        config = ConfigCounters(runtime, f"{namespace}/{name}", reporter)
    return CanaryItem(namespace, name, rollout_id, canary, versions, config)


class CanarySource(Protocol):
    def list(self) -> tuple[CanaryItem, ...]:
        """Every Canary applied now (one that cannot be read is left out and logged)."""


class CommandInbox(Protocol):
    def take_command(self, name: str) -> str | None:
        """The pending manual command of the rollout ``name`` (removed), or None."""


class WebhookCaller(Protocol):
    def call(self, item: CanaryItem, hook: Webhook, phase: str) -> WebhookResult: ...


class LoadControl(Protocol):
    def start(self, item: CanaryItem) -> None: ...

    def stop(self, key: str) -> None: ...


class DecisionSink(Protocol):
    """Where each decision is reported: the controller's metrics and its log."""

    def record(self, item: CanaryItem, before: CanaryState, decision: Decision) -> None: ...


class DecisionSinks:
    """Several sinks as one (the controller's metrics, then the notifier), each called in
    order; a sink must not raise (the notifier catches its own errors)."""

    def __init__(self, *sinks: DecisionSink) -> None:
        self.sinks = sinks

    def record(self, item: CanaryItem, before: CanaryState, decision: Decision) -> None:
        for sink in self.sinks:
            sink.record(item, before, decision)


@dataclass(frozen=True, slots=True)
class ProviderItem:
    """One applied AlertProvider."""

    namespace: str
    name: str
    spec: AlertProviderSpec


def provider_items(documents: Iterable[Mapping[str, Any]]) -> tuple[ProviderItem, ...]:
    """The AlertProviders among stored documents, as either runtime lists them; one that cannot
    be read is left out and logged (the others still notify)."""
    items = []
    for doc in documents:
        meta = doc.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name"))
        try:
            spec = AlertProviderSpec.model_validate(doc.get("spec") or {})
        except ValidationError as err:
            log.error("AlertProvider %s/%s cannot be read: %s", namespace, name, err)
            continue
        items.append(ProviderItem(namespace, name, spec))
    return tuple(items)


class ProviderSource(Protocol):
    """Where the notifier reads AlertProviders and Secrets (called off the loop's thread)."""

    def providers(self) -> tuple[ProviderItem, ...]:
        """Every AlertProvider of the mesh (one that cannot be read is left out and logged)."""

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """The decoded data of a Secret, or None when it does not exist."""


@dataclass(frozen=True, slots=True)
class Wiring:
    """Everything the loop talks to; ``router_for`` builds the router of one Canary."""

    canaries: CanarySource
    router_for: Callable[[CanaryItem], TrafficRouter]
    metrics: MetricsSource
    store: StateStore
    clock: Clock
    inbox: CommandInbox
    webhooks: WebhookCaller
    load: LoadControl
    sink: DecisionSink

"""Who hears about a rollout: the ``AlertProvider`` kind (``canarymesh.io/v1alpha1``, named
after Flagger's) and a Canary's ``notifications``. Pure input schema; checked by
:mod:`canarymesh.api.validate_notifications`, delivered by :mod:`canarymesh.controller.notify`.

A provider is a receiver kind and where it is::

    apiVersion: canarymesh.io/v1alpha1
    kind: AlertProvider
    metadata: {name: team-slack, namespace: default}
    spec:
      type: slack                  # slack | msteams | discord | webhook | alertmanager
      secretRef: {name: team-slack}  # the Secret's `address` key holds the URL
      channel: "#deploys"          # slack only (legacy incoming webhooks honour it)
      meshWide: {events: [rolledBack]}   # also: every Canary of the mesh, these events

A Canary subscribes with ``providerRef`` (an AlertProvider, by default in its own namespace) or
an inline ``provider`` of the same shape, for some ``events`` (default: all of them)::

    notifications:
      - providerRef: {name: team-slack}
        events: [started, promoted, rolledBack]

Webhook URLs are credentials (whoever holds a Slack, Teams or Discord URL can post to the
channel), so for those kinds and for ``webhook`` the URL comes from the Secret, never from the
spec; the generic webhook's HMAC key is the Secret's ``hmacKey``. Only ``alertmanager`` (an
API endpoint, not a credential) may name its ``address`` inline.
"""

from __future__ import annotations

from typing import Literal

from canarymesh.api.base import Duration, IstioModel, Str, Strs

__all__ = [
    "EVENTS",
    "INLINE_ADDRESS_TYPES",
    "PROVIDER_TYPES",
    "SECRET_ADDRESS_KEY",
    "SECRET_HMAC_KEY",
    "AlertProviderSpec",
    "EventName",
    "MeshWide",
    "Notification",
    "ProviderRef",
    "ProviderType",
    "SecretRef",
]

EventName = Literal["started", "step", "paused", "promoted", "rolledBack"]
# In the order a rollout meets them.
EVENTS: tuple[EventName, ...] = ("started", "step", "paused", "promoted", "rolledBack")
ProviderType = Literal["slack", "msteams", "discord", "webhook", "alertmanager"]
PROVIDER_TYPES: tuple[ProviderType, ...] = (
    "slack", "msteams", "discord", "webhook", "alertmanager",
)  # fmt: skip
# The kinds whose address is not a credential and may be written in the spec.
INLINE_ADDRESS_TYPES: frozenset[str] = frozenset({"alertmanager"})
# Keys of the referenced Secret (``address`` as in Flagger's AlertProvider Secret).
SECRET_ADDRESS_KEY = "address"
SECRET_HMAC_KEY = "hmacKey"


class SecretRef(IstioModel):
    """A Secret in the namespace of the resource that names it."""

    name: Str


class ProviderRef(IstioModel):
    """An AlertProvider; ``namespace`` defaults to the Canary's."""

    name: Str
    namespace: Str | None = None


class MeshWide(IstioModel):
    """Notify about every Canary of the mesh (or of ``namespaces``) for ``events`` (default:
    all), without the Canaries naming the provider."""

    events: tuple[EventName, ...] = ()
    namespaces: Strs = ()


class AlertProviderSpec(IstioModel):
    """A receiver: its kind, where it is (``secretRef``'s ``address``, or ``address`` for
    alertmanager), the per-request ``timeout``, and Slack/Discord's ``channel``/``username``."""

    type: ProviderType
    secret_ref: SecretRef | None = None
    address: Str | None = None
    channel: Str | None = None
    username: Str | None = None
    timeout: Duration = "5s"
    mesh_wide: MeshWide | None = None


class Notification(IstioModel):
    """One subscription of a Canary: an AlertProvider by reference or inline, for ``events``
    (empty: every event)."""

    provider_ref: ProviderRef | None = None
    provider: AlertProviderSpec | None = None
    events: tuple[EventName, ...] = ()

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events

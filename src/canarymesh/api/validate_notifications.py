"""Validation of notification settings: an ``AlertProvider``'s spec and a Canary's
``notifications``. Pure; called by :mod:`canarymesh.api.validate` (AlertProvider) and
:mod:`canarymesh.api.validate_canary` (the Canary's list). Code CM0610.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from canarymesh.api.notifications import (
    INLINE_ADDRESS_TYPES,
    SECRET_ADDRESS_KEY,
    AlertProviderSpec,
    Notification,
)
from canarymesh.api.objects import FieldPath
from canarymesh.api.reporter import Reporter
from canarymesh.api.validate_common import check_duration

__all__ = ["validate_alert_provider", "validate_notifications"]


def validate_alert_provider(report: Reporter, spec: AlertProviderSpec) -> None:
    _check_provider(report, ("spec",), spec, mesh_wide_allowed=True)


def validate_notifications(
    report: Reporter, path: FieldPath, notifications: tuple[Notification, ...]
) -> None:
    for index, entry in enumerate(notifications):
        here = (*path, index)
        if (entry.provider_ref is None) == (entry.provider is None):
            report("CM0610", here, problem="set exactly one of providerRef and provider")
        if entry.provider is not None:
            _check_provider(report, (*here, "provider"), entry.provider, mesh_wide_allowed=False)
        if len(set(entry.events)) != len(entry.events):
            report("CM0610", (*here, "events"), list(entry.events),
                   problem="an event is named twice")  # fmt: skip


def _check_provider(
    report: Reporter, path: FieldPath, spec: AlertProviderSpec, *, mesh_wide_allowed: bool
) -> None:
    check_duration(report, (*path, "timeout"), spec.timeout)
    if spec.address is not None:
        if spec.type not in INLINE_ADDRESS_TYPES:
            report("CM0610", (*path, "address"), problem=(
                f"a {spec.type} URL is a credential: put it in the Secret named by secretRef, "
                f"under the key {SECRET_ADDRESS_KEY}"))  # fmt: skip
        elif not _is_http_url(spec.address):
            report("CM0610", (*path, "address"), spec.address, problem="must be an http(s) URL")
    if spec.secret_ref is None and (spec.address is None or spec.type not in INLINE_ADDRESS_TYPES):
        report("CM0610", path, problem=(
            f"a {spec.type} provider needs secretRef (a Secret whose {SECRET_ADDRESS_KEY} "
            "key holds the URL)"))  # fmt: skip
    if spec.channel is not None and spec.type != "slack":
        report("CM0610", (*path, "channel"), spec.channel, problem="only slack has a channel")
    if spec.username is not None and spec.type not in ("slack", "discord"):
        report("CM0610", (*path, "username"), spec.username,
               problem="only slack and discord take a username")  # fmt: skip
    if spec.mesh_wide is not None:
        if not mesh_wide_allowed:
            report("CM0610", (*path, "meshWide"),
                   problem="meshWide belongs on an AlertProvider, not in a Canary")  # fmt: skip
        elif len(set(spec.mesh_wide.events)) != len(spec.mesh_wide.events):
            report("CM0610", (*path, "meshWide", "events"), list(spec.mesh_wide.events),
                   problem="an event is named twice")  # fmt: skip


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)

"""Headers the Bookinfo services copy from an incoming request onto their outgoing calls.

The list is the compatibility contract with Istio's images (``bookinfo-spec.md`` §4.2): tracing
only joins spans into one trace, and the ``end-user`` routes only fire, because of these headers.
One is our own addition: ``x-canarymesh-group``, which the ingress sets on a release group's
sessions, so every service of such a request reaches its canary version.
"""

from __future__ import annotations

from collections.abc import Mapping

# details and reviews forward exactly these (bookinfo-spec §4.2), in this order.
FORWARDED_HEADERS: tuple[str, ...] = (
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "sw8",
    "end-user",
    # Ours, not Istio's: a release group's session slice (canarymesh.routing.release_group).
    "x-canarymesh-group",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
)


def forward_headers(incoming: Mapping[str, str]) -> dict[str, str]:
    """The subset of ``incoming`` (a case-insensitive mapping) that is forwarded downstream."""
    return {name: incoming[name] for name in FORWARDED_HEADERS if name in incoming}

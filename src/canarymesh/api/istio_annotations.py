"""Istio's annotations: which kinds each applies to, which are deprecated, and how the sidecar
injector checks the values of some. Pure data and small checks; used by analysis
(``canarymesh analyze``, CM1023-CM1026).

The table follows istio/api's annotation/annotations.yaml of Istio 1.31 (names, resource types,
deprecation); the value checks follow the injector's (pkg/kube/inject/validate.go).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "ALWAYS_IGNORED",
    "ANNOTATIONS",
    "Annotation",
    "check_value",
    "is_istio_annotation",
]


@dataclass(frozen=True, slots=True)
class Annotation:
    name: str
    kinds: tuple[str, ...]  # ("Any",) for every kind
    deprecated: bool = False
    instead: str = ""  # what replaces a deprecated one, as a phrase


POD = ("Pod",)
SERVICE = ("Service",)
_TABLE: tuple[Annotation, ...] = (
    Annotation("alpha.istio.io/canonical-serviceaccounts", SERVICE, True),
    Annotation("alpha.istio.io/kubernetes-serviceaccounts", SERVICE, True),
    Annotation("ambient.istio.io/bypass-inbound-capture", POD),
    Annotation("ambient.istio.io/dns-capture", POD),
    Annotation("ambient.istio.io/redirection", POD),
    Annotation("ambient.istio.io/waypoint-inbound-binding", ("GatewayClass", "Gateway")),
    Annotation("galley.istio.io/analyze-suppress", ("Any",)),
    Annotation("gateway.istio.io/controller-version", ("Any",)),
    Annotation("gateway.istio.io/name-override", ("Gateway",)),
    Annotation("gateway.istio.io/service-account", ("Gateway",)),
    Annotation("inject.istio.io/templates", POD),
    Annotation("istio.io/autoRegistrationGroup", ("WorkloadEntry",)),
    Annotation("istio.io/connectedAt", ("WorkloadEntry",)),
    Annotation("istio.io/disconnectedAt", ("WorkloadEntry",)),
    Annotation("istio.io/dry-run", ("AuthorizationPolicy",)),
    Annotation("istio.io/reroute-virtual-interfaces", POD),
    Annotation("istio.io/rev", POD),
    Annotation("istio.io/use-waypoint-canary-weight", ("Service", "ServiceEntry", "Namespace")),
    Annotation("istio.io/workloadController", ("WorkloadEntry",)),
    Annotation("kubernetes.io/ingress.class", ("Ingress",)),
    Annotation("networking.istio.io/exportTo", SERVICE),
    Annotation("networking.istio.io/service-type", ("Gateway",)),
    Annotation(
        "networking.istio.io/traffic-distribution", ("Namespace", "Service", "ServiceEntry")
    ),
    Annotation("prometheus.istio.io/merge-metrics", POD),
    Annotation("proxy.istio.io/config", POD),
    Annotation("proxy.istio.io/overrides", POD),
    Annotation("readiness.status.sidecar.istio.io/applicationPorts", POD),
    Annotation("readiness.status.sidecar.istio.io/failureThreshold", POD),
    Annotation("readiness.status.sidecar.istio.io/initialDelaySeconds", POD),
    Annotation("readiness.status.sidecar.istio.io/periodSeconds", POD),
    Annotation("sidecar.istio.io/agentLogLevel", POD),
    Annotation("sidecar.istio.io/bootstrapOverride", POD),
    Annotation("sidecar.istio.io/componentLogLevel", POD),
    Annotation("sidecar.istio.io/discoveryAddress", POD, True),
    Annotation("sidecar.istio.io/extraStatTags", POD, True),
    Annotation(
        "sidecar.istio.io/inject", POD, True, ' in favor of the "sidecar.istio.io/inject" label'
    ),
    Annotation("sidecar.istio.io/interceptionMode", POD),
    Annotation("sidecar.istio.io/logLevel", POD),
    Annotation("sidecar.istio.io/nativeSidecar", POD),
    Annotation("sidecar.istio.io/proxyCPU", POD),
    Annotation("sidecar.istio.io/proxyCPULimit", POD),
    Annotation("sidecar.istio.io/proxyImage", POD),
    Annotation("sidecar.istio.io/proxyImageType", POD),
    Annotation("sidecar.istio.io/proxyMemory", POD),
    Annotation("sidecar.istio.io/proxyMemoryLimit", POD),
    Annotation("sidecar.istio.io/rewriteAppHTTPProbers", POD),
    Annotation("sidecar.istio.io/statsCompression", POD, True),
    Annotation("sidecar.istio.io/statsEvictionInterval", POD),
    Annotation("sidecar.istio.io/statsFlushInterval", POD),
    Annotation("sidecar.istio.io/statsHistogramBins", POD),
    Annotation("sidecar.istio.io/statsHistogramBuckets", POD),
    Annotation("sidecar.istio.io/statsInclusionPrefixes", POD, True),
    Annotation("sidecar.istio.io/statsInclusionRegexps", POD, True),
    Annotation("sidecar.istio.io/statsInclusionSuffixes", POD, True),
    Annotation("sidecar.istio.io/status", POD),
    Annotation("sidecar.istio.io/userVolume", POD),
    Annotation("sidecar.istio.io/userVolumeMount", POD),
    Annotation("status.sidecar.istio.io/port", POD),
    Annotation("topology.istio.io/controlPlaneClusters", ("Namespace",)),
    Annotation("traffic.istio.io/nodeSelector", SERVICE),
    Annotation("traffic.sidecar.istio.io/excludeInboundPorts", POD),
    Annotation("traffic.sidecar.istio.io/excludeInterfaces", POD),
    Annotation("traffic.sidecar.istio.io/excludeOutboundIPRanges", POD),
    Annotation("traffic.sidecar.istio.io/excludeOutboundPorts", POD),
    Annotation("traffic.sidecar.istio.io/includeInboundPorts", POD),
    Annotation("traffic.sidecar.istio.io/includeOutboundIPRanges", POD),
    Annotation("traffic.sidecar.istio.io/includeOutboundPorts", POD),
    Annotation("traffic.sidecar.istio.io/kubevirtInterfaces", POD, True),
)
ANNOTATIONS = {a.name: a for a in _TABLE}
# Set by Istio itself (injector, gateway controller, revision labelling): never reported.
ALWAYS_IGNORED = frozenset({
    "sidecar.istio.io/status", "gateway.istio.io/controller-version", "istio.io/rev",
})  # fmt: skip

Check = Callable[[str], str | None]  # the problem with a value, or None
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i?|[munk])?$")


def is_istio_annotation(name: str) -> bool:
    """An annotation Istio owns: in a ``*istio.io`` domain, or the ingress class."""
    domain, slash, _ = name.rpartition("/")
    return name == "kubernetes.io/ingress.class" or bool(slash and domain.endswith("istio.io"))


def uint32(value: str) -> str | None:
    return None if value.isdigit() and int(value) < 2**32 else "must be an unsigned 32-bit integer"


def port(value: str) -> str | None:
    return None if value.isdigit() and 0 < int(value) < 65536 else "must be a port (1-65535)"


def ports(value: str) -> str | None:
    if value.strip() == "*" or not value.strip():
        return None
    bad = [p for p in value.split(",") if port(p.strip()) is not None]
    return f"{bad[0].strip()!r} is not a port" if bad else None


def ip_ranges(value: str) -> str | None:
    if value.strip() in ("*", ""):
        return None
    for cidr in value.split(","):
        try:
            ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            return f"{cidr.strip()!r} is not an IP range (CIDR)"
    return None


def one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def quantity(value: str) -> str | None:
    return None if QUANTITY.match(value) else "must be a Kubernetes quantity (100m, 128Mi)"


CHECKS: dict[str, Check] = {
    "sidecar.istio.io/interceptionMode": one_of("REDIRECT", "TPROXY", "NONE"),
    "status.sidecar.istio.io/port": port,
    "readiness.status.sidecar.istio.io/initialDelaySeconds": uint32,
    "readiness.status.sidecar.istio.io/periodSeconds": uint32,
    "readiness.status.sidecar.istio.io/failureThreshold": uint32,
    "traffic.sidecar.istio.io/includeOutboundIPRanges": ip_ranges,
    "traffic.sidecar.istio.io/excludeOutboundIPRanges": ip_ranges,
    "traffic.sidecar.istio.io/includeInboundPorts": ports,
    "traffic.sidecar.istio.io/excludeInboundPorts": ports,
    "traffic.sidecar.istio.io/excludeOutboundPorts": ports,
    "prometheus.istio.io/merge-metrics": one_of("true", "false"),
    "sidecar.istio.io/proxyCPU": quantity,
    "sidecar.istio.io/proxyMemory": quantity,
    "sidecar.istio.io/proxyCPULimit": quantity,
    "sidecar.istio.io/proxyMemoryLimit": quantity,
}


def check_value(name: str, value: str) -> str | None:
    check = CHECKS.get(name)
    return check(value) if check is not None else None

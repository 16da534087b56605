"""The kinds Canary Mesh understands: API group, served versions, spec model. Pure; used by the
loader to pick a schema, and by tests to walk every kind.

A kind outside this table is either *unknown* (its API group is one we know, so a missing kind
is a typo: an error) or *unsupported* (a real kind we do not implement locally, or another
project's CRD: a warning, and the document is skipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from canarymesh.api import canary, gateway_api, istio_networking, istio_security, kube

__all__ = ["KINDS", "KNOWN_UNSUPPORTED", "TRAFFIC_GROUPS", "KindInfo", "split_api_version"]

_ISTIO_NETWORKING_VERSIONS = ("v1alpha3", "v1beta1", "v1")
_ISTIO_SECURITY_VERSIONS = ("v1beta1", "v1")
_GATEWAY_API_VERSIONS = ("v1beta1", "v1")


@dataclass(frozen=True, slots=True)
class KindInfo:
    """One supported kind. ``body`` says where its fields live: under ``spec``, or at the top
    level of the document (Secret ``data``, ConfigMap ``data``, ServiceAccount)."""

    group: str
    kind: str
    versions: tuple[str, ...]
    model: type[BaseModel]
    body: Literal["spec", "top"] = "spec"
    strict_top_level: bool = False
    # False for kinds the local mesh does not run (a bare Pod, a Node): loaded for analysis,
    # and apply notes that they are skipped (CM0012).
    local_mesh: bool = True

    def api_version_of(self, data: dict[str, object]) -> str:
        """The apiVersion a document of this kind was written with (validated by the loader)."""
        return str(data["apiVersion"])

    def api_versions(self) -> tuple[str, ...]:
        return tuple(f"{self.group}/{v}" if self.group else v for v in self.versions)


def _istio(group: str, kind: str, versions: tuple[str, ...], model: type[BaseModel]) -> KindInfo:
    return KindInfo(group, kind, versions, model, strict_top_level=True)


KINDS: tuple[KindInfo, ...] = (
    KindInfo("", "Namespace", ("v1",), kube.Namespace),
    KindInfo("", "Service", ("v1",), kube.Service),
    KindInfo("", "ServiceAccount", ("v1",), kube.ServiceAccount, body="top"),
    KindInfo("", "Secret", ("v1",), kube.Secret, body="top"),
    KindInfo("", "ConfigMap", ("v1",), kube.ConfigMap, body="top"),
    KindInfo("apps", "Deployment", ("v1",), kube.Deployment),
    KindInfo("", "Pod", ("v1",), kube.Pod, local_mesh=False),
    KindInfo("", "Node", ("v1",), kube.Node, local_mesh=False),
    _istio("networking.istio.io", "VirtualService", _ISTIO_NETWORKING_VERSIONS,
           istio_networking.VirtualService),
    _istio("networking.istio.io", "DestinationRule", _ISTIO_NETWORKING_VERSIONS,
           istio_networking.DestinationRule),
    _istio("networking.istio.io", "Gateway", _ISTIO_NETWORKING_VERSIONS, istio_networking.Gateway),
    _istio("networking.istio.io", "ServiceEntry", _ISTIO_NETWORKING_VERSIONS,
           istio_networking.ServiceEntry),
    _istio("networking.istio.io", "Sidecar", _ISTIO_NETWORKING_VERSIONS, istio_networking.Sidecar),
    _istio("security.istio.io", "PeerAuthentication", _ISTIO_SECURITY_VERSIONS,
           istio_security.PeerAuthentication),
    _istio("security.istio.io", "AuthorizationPolicy", _ISTIO_SECURITY_VERSIONS,
           istio_security.AuthorizationPolicy),
    _istio("security.istio.io", "RequestAuthentication", _ISTIO_SECURITY_VERSIONS,
           istio_security.RequestAuthentication),
    _istio("gateway.networking.k8s.io", "Gateway", _GATEWAY_API_VERSIONS, gateway_api.Gateway),
    _istio("gateway.networking.k8s.io", "HTTPRoute", _GATEWAY_API_VERSIONS, gateway_api.HTTPRoute),
    _istio(canary.API_GROUP, "Canary", ("v1alpha1",), canary.Canary),
)  # fmt: skip

# Real kinds of the groups above that the local mesh does not implement.
KNOWN_UNSUPPORTED: dict[str, frozenset[str]] = {
    "": frozenset({
        "ReplicationController", "Endpoints", "PersistentVolumeClaim", "PersistentVolume",
        "LimitRange", "ResourceQuota", "Event", "PodTemplate", "Binding",
    }),
    "apps": frozenset({"StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision"}),
    "networking.istio.io": frozenset({
        "EnvoyFilter", "WorkloadEntry", "WorkloadGroup", "ProxyConfig",
    }),
    "security.istio.io": frozenset(),
    "telemetry.istio.io": frozenset({"Telemetry"}),
    "extensions.istio.io": frozenset({"WasmPlugin", "TrafficExtension"}),
    "gateway.networking.k8s.io": frozenset({
        "GatewayClass", "GRPCRoute", "TCPRoute", "TLSRoute", "UDPRoute", "ReferenceGrant",
        "BackendTLSPolicy",
    }),
    canary.API_GROUP: frozenset(),
}  # fmt: skip

# API groups whose kinds change how traffic flows: skipping one of them locally deserves a
# warning; any other kind (RBAC, monitoring, cert-manager) is only noted.
TRAFFIC_GROUPS = frozenset({
    "networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io",
    "gateway.networking.k8s.io", "networking.k8s.io",
})  # fmt: skip

_BY_GROUP_KIND = {(info.group, info.kind): info for info in KINDS}


def split_api_version(api_version: str) -> tuple[str, str]:
    """``networking.istio.io/v1`` -> (group, version); core ``v1`` -> ("", "v1")."""
    group, _, version = api_version.rpartition("/")
    return group, version


def lookup(group: str, kind: str) -> KindInfo | None:
    return _BY_GROUP_KIND.get((group, kind))

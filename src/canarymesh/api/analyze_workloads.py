"""Analysis of Kubernetes objects as Istio reads them: Service port names (protocol selection),
Istio annotations on Namespaces, Services, Pods and Deployments, ServiceAccounts of
Deployments. Pure; called by :func:`canarymesh.api.analyze.analyze`.

Mirrors Istio's service.PortNameAnalyzer (CM1007, CM1028) and annotations.K8sAnalyzer
(CM1023-CM1026).
"""

from __future__ import annotations

from canarymesh.api import kube
from canarymesh.api.analyze_index import AnalysisIndex, AnyResource, namespace_of
from canarymesh.api.diagnostics import Diagnostic
from canarymesh.api.istio_annotations import (
    ALWAYS_IGNORED,
    ANNOTATIONS,
    check_value,
    is_istio_annotation,
)
from canarymesh.api.objects import FieldPath, Resource
from canarymesh.api.reporter import Reporter

__all__ = ["check_annotations", "check_port_names", "check_service_account"]

SPEC: FieldPath = ("spec",)
PROTOCOLS = (
    "http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "mongo", "mysql", "redis", "udp",
    "http_proxy",
)  # fmt: skip
# Ports Istio treats as TCP whatever their name (SMTP, DNS, MySQL, MongoDB).
WELL_KNOWN_PORTS = frozenset({25, 53, 3306, 27017})
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
# Kubernetes' standard appProtocol names.
APP_PROTOCOLS = frozenset({"kubernetes.io/h2c", "kubernetes.io/ws", "kubernetes.io/wss"})
ANNOTATED_KINDS = frozenset({"Namespace", "Service", "Pod", "Deployment"})
# Services Istio's gateway controllers create for Gateway API gateways and waypoints.
MANAGED_GATEWAYS = frozenset({
    "istio.io-gateway-controller", "istio.io-mesh-controller", "istio.io-eastwest-controller",
})  # fmt: skip


def port_protocol_known(port: kube.ServicePort) -> bool:
    """Istio's ConvertProtocol: appProtocol, else the name's prefix; UDP and well-known ports
    need no name."""
    if port.protocol == "UDP":
        return True
    name = port.app_protocol if port.app_protocol else (port.name or "")
    if name in APP_PROTOCOLS or name.lower().startswith("grpc-web"):
        return True
    return name.split("-", 1)[0].lower() in PROTOCOLS or port.port in WELL_KNOWN_PORTS


def check_port_names(resource: Resource[kube.Service]) -> list[Diagnostic]:
    """Ports Istio cannot tell the protocol of carry plain TCP (no HTTP routing, no L7
    telemetry). The control plane's Services (label ``istio``), the gateways Istio manages and
    system namespaces are left alone, as istioctl analyze does."""
    report = Reporter(resource)
    labels = resource.metadata.labels
    if "istio" in labels or labels.get("release") == "istio":
        return []
    if labels.get("gateway.istio.io/managed") in MANAGED_GATEWAYS:
        return []
    if namespace_of(resource) in SYSTEM_NAMESPACES:
        return []
    external = resource.spec.type == "ExternalName"
    for i, port in enumerate(resource.spec.ports):
        path = (*SPEC, "ports", i, "name")
        if external and (port.name == "tcp" or not port_protocol_known(port)):
            report("CM1028", path, port.name, name=port.name or "(unnamed)")
        elif not port_protocol_known(port):
            report("CM1007", path, port.name, name=port.name or "(unnamed)")
    return report.found


def check_annotations(resource: AnyResource) -> list[Diagnostic]:
    """Istio annotations on the object's own metadata (a Deployment's, not its template's:
    an annotation meant for its pods is misplaced there)."""
    if resource.kind not in ANNOTATED_KINDS:
        return []
    report = Reporter(resource)
    for name, value in sorted(resource.metadata.annotations.items()):
        if not is_istio_annotation(name) or name in ALWAYS_IGNORED:
            continue
        path = ("metadata", "annotations", name)
        known = ANNOTATIONS.get(name)
        if known is None:
            report("CM1023", path, annotation=name)
            continue
        if known.deprecated and not (
            name == "sidecar.istio.io/inject" and name in resource.metadata.labels
        ):
            report("CM1024", path, annotation=name, instead=known.instead)
        if "Any" in known.kinds:
            continue
        if resource.kind not in known.kinds:
            report("CM1025", path, annotation=name, kinds=", ".join(known.kinds),
                   kind=resource.kind)  # fmt: skip
            continue
        problem = check_value(name, value)
        if problem is not None:
            report("CM1026", path, value, annotation=name, problem=problem)
    return report.found


def check_service_account(
    index: AnalysisIndex, resource: Resource[kube.Deployment]
) -> list[Diagnostic]:
    report = Reporter(resource)
    name = resource.spec.template.spec.service_account_name
    accounts = {(namespace_of(a), a.name) for a in index.accounts}
    if index.accounts and name and (namespace_of(resource), name) not in accounts:
        path = (*SPEC, "template", "spec", "serviceAccountName")
        report("CM1011", path, name, name=name)
    return report.found

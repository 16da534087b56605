"""Analysis of Istio Gateways: the workload a selector picks, the ports its Service exposes,
and servers that two Gateways both claim. Pure; called by
:func:`canarymesh.api.analyze.analyze`.

Mirrors Istio's gateway.IngressGatewayPortAnalyzer (CM1004, CM1019) and
ConflictingGatewayAnalyzer (CM1020). Unlike the reference checks, a selector is checked even
when the input holds no workload: the mesh's own ingress gateway is always there, so a
selector that matches neither it nor the input's pods is most likely a typo.
"""

from __future__ import annotations

from collections.abc import Mapping

from canarymesh.api import istio_networking
from canarymesh.api.analyze_index import AnalysisIndex, Workload
from canarymesh.api.diagnostics import Diagnostic
from canarymesh.api.objects import FieldPath, Resource
from canarymesh.api.reporter import Reporter

__all__ = ["check_conflicting_gateways", "check_gateway_workloads"]

SPEC: FieldPath = ("spec",)
# On a cluster Istio's demo profile also runs an egress gateway; Bookinfo's egress samples use it.
EGRESS_LABELS = {"istio": "egressgateway"}
GatewayResource = Resource[istio_networking.Gateway]


def selector_text(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def check_gateway_workloads(index: AnalysisIndex, resource: GatewayResource) -> list[Diagnostic]:
    """The selector picks a workload, and every server port is one its Service exposes."""
    report = Reporter(resource)
    selector = resource.spec.selector
    if selector == EGRESS_LABELS:
        return []
    workloads = index.selected(selector, None)
    if not workloads:
        report("CM1004", (*SPEC, "selector"), selector=selector_text(selector))
        return report.found
    ports = exposed_ports(index, workloads)
    for i, server in enumerate(resource.spec.servers):
        number = server.port.number if server.port is not None else None
        if number is not None and number not in ports:
            report("CM1019", (*SPEC, "servers", i, "port", "number"), number, port=number,
                   selector=selector_text(selector))  # fmt: skip
    return report.found


def exposed_ports(index: AnalysisIndex, workloads: list[Workload]) -> set[int]:
    """Ports a client can reach the workloads on: the target ports of the TCP ports of the
    Services that select them, and those Services' own ports (a server on the Service's port
    80 behind targetPort 8080 counts, as in istioctl analyze)."""
    ports: set[int] = set()
    for workload in workloads:
        for entry in index.hosts:
            if not entry.service or entry.namespace != workload.namespace or not entry.selector:
                continue
            if workload.selected_by(entry.selector):
                ports.update(entry.ports)
                ports.update(entry.target_ports.values())
    return ports


def check_conflicting_gateways(index: AnalysisIndex) -> list[Diagnostic]:
    """Two Gateways on one workload serving one host on one port (and bind): only one of them
    gets the requests. Each Gateway involved is reported for each such server."""
    found: list[Diagnostic] = []
    for resource in index.gateways:
        report = Reporter(resource)
        for i, server in enumerate(resource.spec.servers):
            others = sorted(
                other.display_name
                for other in index.gateways
                if other is not resource
                and share_workload(index, resource.spec.selector, other.spec.selector)
                and any(claims_same(server, o) for o in other.spec.servers)
            )
            if others:
                number = server.port.number if server.port is not None else 0
                report("CM1020", (*SPEC, "servers", i), port=number,
                       hosts=",".join(server.hosts), selector=selector_text(resource.spec.selector),
                       others=",".join(others))  # fmt: skip
        found.extend(report.found)
    return found


def share_workload(index: AnalysisIndex, a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    if a == b:
        return True
    return any(w.selected_by(a) and w.selected_by(b) for w in index.workloads)


def claims_same(server: istio_networking.Server, other: istio_networking.Server) -> bool:
    port = server.port.number if server.port is not None else None
    other_port = other.port.number if other.port is not None else None
    if port != other_port or (server.bind or "") != (other.bind or ""):
        return False
    return bool(set(server.hosts) & set(other.hosts))

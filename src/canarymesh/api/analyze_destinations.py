"""Analysis of DestinationRules: the host they apply to, the pods their subsets select, TLS
origination that checks no certificate, and mTLS that contradicts a STRICT PeerAuthentication.
Pure; called by :func:`canarymesh.api.analyze.analyze`.

Mirrors Istio's destinationrule.SubsetSelectPodAnalyzer (CM1010, CM1015) and
CaCertificateAnalyzer (CM1021, CM1022).
"""

from __future__ import annotations

from collections.abc import Iterator

from canarymesh.api import istio_networking, istio_security, kube
from canarymesh.api.analyze_index import ROOT_NAMESPACE, AnalysisIndex, HostEntry, namespace_of
from canarymesh.api.diagnostics import Diagnostic
from canarymesh.api.objects import FieldPath, Resource, select
from canarymesh.api.reporter import Reporter

__all__ = ["check_destination_rule"]

SPEC: FieldPath = ("spec",)
ORIGINATION_MODES = ("SIMPLE", "MUTUAL")
RuleResource = Resource[istio_networking.DestinationRule]


def check_destination_rule(index: AnalysisIndex, resource: RuleResource) -> list[Diagnostic]:
    report = Reporter(resource)
    rule = resource.spec
    check_ca_certificates(report, rule)
    if not rule.host:
        return report.found
    namespace = namespace_of(resource)
    entry = index.lookup(rule.host, namespace, rule.export_to)
    if entry is None:
        if index.services:
            report("CM1010", (*SPEC, "host"), rule.host, host=rule.host)
        return report.found
    check_subsets(index, report, rule, entry)
    if entry.service:
        service = next((s for s in index.services if s is entry.resource), None)
        policy = strict_policy(index, service) if service is not None else None
        if policy is not None:
            for path, tls in client_tls(rule):
                if tls.mode == "DISABLE":
                    report("CM1008", (*path, "mode"), "DISABLE", host=rule.host, policy=policy)
    return report.found


def check_subsets(
    index: AnalysisIndex,
    report: Reporter,
    rule: istio_networking.DestinationRule,
    entry: HostEntry,
) -> None:
    """Each subset must select a pod of the host: the Service's selector with the subset's
    labels. A ServiceEntry without workloadSelector selects endpoints, not pods: skipped."""
    if not entry.service and not entry.selector:
        return
    for i, subset in enumerate(rule.subsets):
        labels = {**entry.selector, **subset.labels}
        if not index.selected(labels, entry.namespace):
            shown = ",".join(f"{k}={v}" for k, v in sorted(subset.labels.items())) or "none"
            report("CM1015", (*SPEC, "subsets", i, "name"), subset.name, subset=subset.name,
                   host=rule.host, labels=shown)  # fmt: skip


def check_ca_certificates(report: Reporter, rule: istio_networking.DestinationRule) -> None:
    """SIMPLE/MUTUAL without caCertificates, at the rule's top level and on each port (as
    Istio's analyzer: not in subsets; a credentialName on a rule with a workload selector, which
    an egress gateway reads, is fine)."""
    policy = rule.traffic_policy
    if policy is None:
        return
    selected = rule.workload_selector is not None
    tls = policy.tls
    if tls is not None and unverified(tls, selected):
        report("CM1021", (*SPEC, "trafficPolicy", "tls", "mode"), tls.mode, mode=tls.mode,
               host=rule.host)  # fmt: skip
    for i, port_policy in enumerate(policy.port_level_settings):
        tls = port_policy.tls
        if tls is not None and unverified(tls, selected):
            number = port_policy.port.number if port_policy.port is not None else None
            path = (*SPEC, "trafficPolicy", "portLevelSettings", i, "tls", "mode")
            report("CM1022", path, tls.mode, mode=tls.mode, port=number, host=rule.host)


def unverified(tls: istio_networking.ClientTLSSettings, selected: bool) -> bool:
    if tls.mode not in ORIGINATION_MODES or tls.ca_certificates:
        return False
    return not (tls.credential_name and selected)


def client_tls(
    rule: istio_networking.DestinationRule,
) -> Iterator[tuple[FieldPath, istio_networking.ClientTLSSettings]]:
    policies: list[tuple[FieldPath, istio_networking.TrafficPolicy | None]] = [
        ((*SPEC, "trafficPolicy"), rule.traffic_policy)
    ]
    policies += [((*SPEC, "subsets", i, "trafficPolicy"), s.traffic_policy)
                 for i, s in enumerate(rule.subsets)]  # fmt: skip
    for path, policy in policies:
        if policy is None:
            continue
        if policy.tls is not None:
            yield (*path, "tls"), policy.tls
        for i, port_policy in enumerate(policy.port_level_settings):
            if port_policy.tls is not None:
                yield (*path, "portLevelSettings", i, "tls"), port_policy.tls


def strict_policy(index: AnalysisIndex, service: Resource[kube.Service]) -> str | None:
    """The STRICT PeerAuthentication that covers ``service``'s pods, as ``ns/name``, if any."""
    namespace = namespace_of(service)
    for policy in select(index.all, istio_security.PeerAuthentication):
        spec = policy.spec
        if spec.mtls is None or spec.mtls.mode != "STRICT":
            continue
        scope = namespace_of(policy)
        selector = spec.selector.match_labels if spec.selector is not None else {}
        if scope == ROOT_NAMESPACE and not selector:
            return policy.display_name
        if scope == namespace and all(
            service.spec.selector.get(k) == v for k, v in selector.items()
        ):
            return policy.display_name
    return None

"""Validation of one typed resource at a time: every rule Istio (or Kubernetes) would enforce
on that object alone. Pure; called by the loader for every resource it types, so every
:class:`~canarymesh.api.loader.LoadResult` already carries these diagnostics.

Never raises and never stops at the first problem (Istio's ``AppendValidation``): each check
reports and carries on. Cross-resource checks (does the subset exist?) are in
:mod:`canarymesh.api.analyze`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from pydantic import BaseModel

from canarymesh.api import (
    canary,
    gateway_api,
    istio_networking,
    istio_security,
    kube,
    notifications,
)
from canarymesh.api.checks import is_dns1123_label, is_dns1123_subdomain
from canarymesh.api.diagnostics import Diagnostic
from canarymesh.api.limits import MAX_INT32, MAX_LOCAL_REPLICAS
from canarymesh.api.objects import FieldPath, Resource
from canarymesh.api.reporter import Reporter
from canarymesh.api.stats_annotations import (
    PROXY_CONFIG,
    SIDECAR_ANNOTATIONS,
    proxy_config_entries,
    sidecar_entries,
)
from canarymesh.api.validate_canary import validate_canary
from canarymesh.api.validate_common import check_duration, check_labels, check_port, check_regex
from canarymesh.api.validate_networking import (
    validate_destination_rule,
    validate_gateway,
    validate_service_entry,
)
from canarymesh.api.validate_notifications import validate_alert_provider
from canarymesh.api.validate_virtual_service import validate_virtual_service

__all__ = ["validate_resource", "validate_resources"]

SPEC: FieldPath = ("spec",)
# Gateway API durations (GEP-2257): up to four number+unit parts; "0s" is valid (no timeout).
_GATEWAY_API_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_DNS_LABEL_NAMED_KINDS = frozenset({"Namespace", "Service"})
_GATEWAY_API_HOSTNAME = re.compile(
    r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_IPV4 = re.compile(r"^[0-9.]+$")

ModelT = TypeVar("ModelT", bound=BaseModel)


def validate_resources(resources: list[Resource[BaseModel]]) -> list[Diagnostic]:
    return [d for resource in resources for d in validate_resource(resource)]


def validate_resource(resource: Resource[BaseModel]) -> list[Diagnostic]:
    """Every problem of ``resource`` on its own, as diagnostics."""
    report = Reporter(resource)
    _validate_metadata(report, resource)
    for spec_type, check in _CHECKS:
        if isinstance(resource.spec, spec_type):
            check(report, resource.spec)
    return report.found


def _validate_metadata(report: Reporter, resource: Resource[BaseModel]) -> None:
    name = resource.metadata.name
    path: FieldPath = ("metadata", "name")
    if resource.kind in _DNS_LABEL_NAMED_KINDS:
        if not is_dns1123_label(name):
            report("CM0106", path, name, what=f"a {resource.kind} name", form="a DNS-1123 label")
    elif not is_dns1123_subdomain(name):
        report("CM0106", path, name, what="a name", form="a DNS-1123 subdomain")
    namespace = resource.metadata.namespace
    if namespace is not None and not is_dns1123_label(namespace):
        report("CM0106", ("metadata", "namespace"), namespace, what="a namespace",
               form="a DNS-1123 label")  # fmt: skip
    check_labels(report, ("metadata", "labels"), resource.metadata.labels)


# --- security ---------------------------------------------------------------------------------


def _validate_peer_authentication(
    report: Reporter, policy: istio_security.PeerAuthentication
) -> None:
    if policy.port_level_mtls and policy.selector is None:
        report("CM0502", (*SPEC, "portLevelMtls"))
    for port in policy.port_level_mtls:
        path = (*SPEC, "portLevelMtls", port)
        if not port.isdigit():
            report("CM0102", path, port, expected="a port number")
        else:
            check_port(report, path, int(port))
    if policy.selector is not None:
        check_labels(report, (*SPEC, "selector", "matchLabels"), policy.selector.match_labels)


def _validate_authorization_policy(
    report: Reporter, policy: istio_security.AuthorizationPolicy
) -> None:
    action = policy.action or "ALLOW"
    if action in ("DENY", "AUDIT") and not policy.rules:
        report("CM0501", (*SPEC, "action"), action, action=action)
    if action == "CUSTOM" and (policy.provider is None or not policy.provider.name):
        report("CM0503", (*SPEC, "provider"))
    if policy.selector is not None:
        check_labels(report, (*SPEC, "selector", "matchLabels"), policy.selector.match_labels)
    for index, rule in enumerate(policy.rules):
        path = (*SPEC, "rules", index)
        for f_index, source in enumerate(rule.from_):
            if source.source is None or not source.source.model_dump(exclude_defaults=True):
                report("CM0504", (*path, "from", f_index),
                       problem="a from entry needs a non-empty source")  # fmt: skip
        for t_index, target in enumerate(rule.to):
            operation = target.operation
            if operation is None or not operation.model_dump(exclude_defaults=True):
                report("CM0504", (*path, "to", t_index),
                       problem="a to entry needs a non-empty operation")  # fmt: skip
                continue
            for p_index, port in enumerate((*operation.ports, *operation.not_ports)):
                if not port.isdigit() or not 1 <= int(port) <= 65535:
                    report("CM0103", (*path, "to", t_index, "operation", "ports", p_index), port,
                           expected="a port between 1 and 65535")  # fmt: skip
        for w_index, condition in enumerate(rule.when):
            if not condition.values and not condition.not_values:
                report("CM0504", (*path, "when", w_index),
                       problem="a condition needs values or notValues")  # fmt: skip


def _validate_request_authentication(
    report: Reporter, policy: istio_security.RequestAuthentication
) -> None:
    for index, rule in enumerate(policy.jwt_rules):
        if not rule.issuer:
            report("CM0104", (*SPEC, "jwtRules", index, "issuer"))
        check_duration(report, (*SPEC, "jwtRules", index, "timeout"), rule.timeout)


# --- Gateway API, Kubernetes, Canary ----------------------------------------------------------


def _check_gateway_api_hostname(report: Reporter, path: FieldPath, hostname: str) -> None:
    """The Gateway API's Hostname: lower-case DNS labels, an optional leading ``*.``, at most
    253 characters, never an IP address (the CRD's pattern and its documentation)."""
    if len(hostname) > 253 or not _GATEWAY_API_HOSTNAME.match(hostname):
        problem = (f"hostname {hostname[:60]!r} must be lower-case DNS labels, optionally after "
                   "*., at most 253 characters")  # fmt: skip
    elif _IPV4.match(hostname):
        problem = f"hostname {hostname!r} is an IP address; the Gateway API takes names only"
    else:
        return
    report("CM0111", path, hostname, problem=problem)


def _validate_http_route(report: Reporter, route: gateway_api.HTTPRoute) -> None:
    for index, hostname in enumerate(route.hostnames):
        _check_gateway_api_hostname(report, (*SPEC, "hostnames", index), hostname)
    for index, rule in enumerate(route.rules):
        path = (*SPEC, "rules", index)
        for b_index, backend in enumerate(rule.backend_refs):
            b_path = (*path, "backendRefs", b_index)
            if backend.weight is not None and not 0 <= backend.weight <= 1_000_000:
                report("CM0103", (*b_path, "weight"), backend.weight,
                       expected="between 0 and 1000000")  # fmt: skip
            check_port(report, (*b_path, "port"), backend.port)
        if rule.timeouts is not None:
            for name, value in (("request", rule.timeouts.request),
                                ("backendRequest", rule.timeouts.backend_request)):  # fmt: skip
                if value is not None and not _GATEWAY_API_DURATION.match(value):
                    report("CM0107", (*path, "timeouts", name), value)


def _validate_gateway_api_gateway(report: Reporter, gateway: gateway_api.Gateway) -> None:
    for index, listener in enumerate(gateway.listeners):
        check_port(report, (*SPEC, "listeners", index, "port"), listener.port)
        if listener.hostname is not None:
            path = (*SPEC, "listeners", index, "hostname")
            _check_gateway_api_hostname(report, path, listener.hostname)


def _validate_service(report: Reporter, service: kube.Service) -> None:
    first: dict[str, str] = {}
    for index, port in enumerate(service.ports):
        path = (*SPEC, "ports", index)
        check_port(report, (*path, "port"), port.port)
        for key in (f"{port.port}/{port.protocol or 'TCP'}", f"named {port.name}"):
            if key.startswith("named ") and port.name is None:
                continue
            if key in first:
                report("CM0602", path, port=key, first=first[key])
            first.setdefault(key, f"spec.ports[{index}]")
        if isinstance(port.target_port, int):
            check_port(report, (*path, "targetPort"), port.target_port)
    check_labels(report, (*SPEC, "selector"), service.selector)


def _validate_deployment(report: Reporter, deployment: kube.Deployment) -> None:
    replicas = deployment.replicas
    if replicas is not None and replicas < 0:
        report("CM0103", (*SPEC, "replicas"), replicas, expected="0 or more")
    elif replicas is not None and replicas > MAX_INT32:
        expected = f"at most {MAX_INT32} (Kubernetes' replicas is a 32-bit integer)"
        report("CM0103", (*SPEC, "replicas"), replicas, expected=expected)
    elif replicas is not None and replicas > MAX_LOCAL_REPLICAS:
        report("CM0707", (*SPEC, "replicas"), replicas, limit=str(MAX_LOCAL_REPLICAS))
    template_labels = deployment.template.metadata.labels
    check_labels(report, (*SPEC, "template", "metadata", "labels"), template_labels)
    if deployment.selector is None:
        report("CM0104", (*SPEC, "selector"))
    elif any(template_labels.get(k) != v for k, v in deployment.selector.match_labels.items()):
        report("CM0601", (*SPEC, "selector"))
    if not deployment.template.spec.containers:
        report("CM0104", (*SPEC, "template", "spec", "containers"))
    for index, container in enumerate(deployment.template.spec.containers):
        for p_index, port in enumerate(container.ports):
            path = (*SPEC, "template", "spec", "containers", index, "ports", p_index)
            check_port(report, (*path, "containerPort"), port.container_port)
    _check_stats_regexps(report, deployment.template.metadata.annotations)


def _check_stats_regexps(report: Reporter, annotations: Mapping[str, str]) -> None:
    """The stats regexes a pod asks for go into its Envoy's bootstrap, and one Envoy cannot
    compile keeps the sidecar from starting: refused here, naming the annotation."""
    annotated: FieldPath = (*SPEC, "template", "metadata", "annotations")
    for regex in sidecar_entries(annotations, "regexps"):
        check_regex(report, (*annotated, SIDECAR_ANNOTATIONS["regexps"]), regex)
    for regex in proxy_config_entries(annotations, "regexps"):
        check_regex(report, (*annotated, PROXY_CONFIG), regex)


def _typed(
    spec_type: type[ModelT], check: Callable[[Reporter, ModelT], None]
) -> tuple[type[BaseModel], Callable[[Reporter, BaseModel], None]]:
    def run(report: Reporter, spec: BaseModel) -> None:
        assert isinstance(spec, spec_type)
        check(report, spec)

    return spec_type, run


_CHECKS = (
    _typed(istio_networking.VirtualService, validate_virtual_service),
    _typed(istio_networking.DestinationRule, validate_destination_rule),
    _typed(istio_networking.Gateway, validate_gateway),
    _typed(istio_networking.ServiceEntry, validate_service_entry),
    _typed(istio_security.PeerAuthentication, _validate_peer_authentication),
    _typed(istio_security.AuthorizationPolicy, _validate_authorization_policy),
    _typed(istio_security.RequestAuthentication, _validate_request_authentication),
    _typed(gateway_api.HTTPRoute, _validate_http_route),
    _typed(gateway_api.Gateway, _validate_gateway_api_gateway),
    _typed(kube.Service, _validate_service),
    _typed(kube.Deployment, _validate_deployment),
    _typed(canary.Canary, validate_canary),
    _typed(notifications.AlertProviderSpec, validate_alert_provider),
)

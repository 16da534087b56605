"""Cross-resource analysis, in the spirit of ``istioctl analyze``: references that do not
resolve, conflicts between objects, and configurations that would fail at request time. Pure;
called by ``canarymesh analyze`` and by ``apply`` (after validation).

The input set is all there is: a check that needs a kind (Services, Deployments, Gateways,
ServiceAccounts) runs only when the input holds at least one object of that kind, so analysing
a single VirtualService file does not report every host as unknown. When two documents define
the same object, the later one is analysed (as ``apply`` would keep it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from pydantic import BaseModel

from canarymesh.api import canary, gateway_api, istio_networking, istio_security, kube
from canarymesh.api.diagnostics import Diagnostic, Diagnostics
from canarymesh.api.kinds import split_api_version
from canarymesh.api.objects import FieldPath, Resource, select
from canarymesh.api.reporter import Reporter

__all__ = ["analyze", "fqdn"]

SPEC: FieldPath = ("spec",)
DEFAULT_NAMESPACE = "default"
ROOT_NAMESPACE = "istio-system"
# Gateways the mesh provides itself; Bookinfo's Gateway selects the first.
BUILT_IN_GATEWAYS = ({"istio": "ingressgateway"}, {"istio": "egressgateway"})
PORT_PROTOCOLS = (
    "http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "mongo", "mysql", "redis", "udp",
)  # fmt: skip

AnyResource = Resource[BaseModel]


def fqdn(host: str, namespace: str) -> str:
    """Istio's short-name rule: a name without dots lives in the config's namespace."""
    if "." in host or host == "*":
        return host
    return f"{host}.{namespace}.svc.cluster.local"


def _ns(resource: AnyResource) -> str:
    return resource.namespace_or(DEFAULT_NAMESPACE)


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return pattern == host or pattern == "*"


class _Index:
    """The input set, deduplicated (last definition wins), with the lookups the checks need."""

    def __init__(self, resources: Sequence[AnyResource]) -> None:
        latest: dict[tuple[str, str, str, str], AnyResource] = {}
        for resource in resources:
            latest[(split_api_version(resource.api_version)[0], *resource.key)] = resource
        self.all = list(latest.values())
        self.services = select(self.all, kube.Service)
        self.deployments = select(self.all, kube.Deployment)
        self.accounts = select(self.all, kube.ServiceAccount)
        self.entries = select(self.all, istio_networking.ServiceEntry)
        self.rules = select(self.all, istio_networking.DestinationRule)
        self.virtual_services = select(self.all, istio_networking.VirtualService)
        self.gateways = select(self.all, istio_networking.Gateway)
        self.service_by_fqdn = {fqdn(s.name, _ns(s)): s for s in self.services}

    def host_known(self, host: str) -> bool:
        if host in self.service_by_fqdn:
            return True
        return any(
            _host_matches(fqdn(pattern, _ns(entry)), host)
            for entry in self.entries
            for pattern in entry.spec.hosts
        )

    def subsets_of(self, host: str) -> dict[str, istio_networking.Subset] | None:
        """Subsets defined for ``host`` by all DestinationRules, or None when none targets it."""
        found: dict[str, istio_networking.Subset] | None = None
        for rule in self.rules:
            if rule.spec.host and fqdn(rule.spec.host, _ns(rule)) == host:
                found = found or {}
                found.update({s.name: s for s in rule.spec.subsets if s.name})
        return found

    def pods_match(self, labels: dict[str, str], namespace: str) -> bool:
        return any(
            _ns(d) == namespace
            and all(d.spec.template.metadata.labels.get(k) == v for k, v in labels.items())
            for d in self.deployments
        )


def analyze(resources: Sequence[AnyResource]) -> Diagnostics:
    """Every cross-resource problem of the input set."""
    index = _Index(resources)
    found: list[Diagnostic] = []
    for vs in index.virtual_services:
        found.extend(_check_virtual_service(index, vs))
    found.extend(_check_conflicting_virtual_services(index))
    for dr in index.rules:
        found.extend(_check_destination_rule(index, dr))
    for gateway in index.gateways:
        found.extend(_check_gateway(index, gateway))
    for service in index.services:
        found.extend(_check_port_names(service))
    for route in select(index.all, gateway_api.HTTPRoute):
        found.extend(_check_http_route(index, route))
    for deployment in index.deployments:
        found.extend(_check_service_account(index, deployment))
    for rollout in select(index.all, canary.Canary):
        found.extend(_check_canary(index, rollout))
    return Diagnostics.of(found)


def _destinations(
    vs: istio_networking.VirtualService,
) -> Iterator[tuple[FieldPath, istio_networking.Destination]]:
    for i, rule in enumerate(vs.http):
        for j, route in enumerate(rule.route):
            yield (*SPEC, "http", i, "route", j, "destination"), route.destination
        if rule.mirror is not None:
            yield (*SPEC, "http", i, "mirror"), rule.mirror
        for j, mirror in enumerate(rule.mirrors):
            yield (*SPEC, "http", i, "mirrors", j, "destination"), mirror.destination
    l4_routes = [("tcp", i, r.route) for i, r in enumerate(vs.tcp)]
    l4_routes += [("tls", i, r.route) for i, r in enumerate(vs.tls)]
    for name, i, routes in l4_routes:
        for j, l4_route in enumerate(routes):
            yield (*SPEC, name, i, "route", j, "destination"), l4_route.destination


def _check_virtual_service(
    index: _Index, resource: Resource[istio_networking.VirtualService]
) -> list[Diagnostic]:
    report = Reporter(resource)
    vs, namespace = resource.spec, _ns(resource)
    for path, destination in _destinations(vs):
        host = fqdn(destination.host, namespace)
        if index.services and not index.host_known(host):
            report("CM1003", (*path, "host"), destination.host, host=destination.host)
        _check_destination_port(index, report, path, destination, host)
        if destination.subset is None:
            continue
        if not index.rules:
            continue
        subsets = index.subsets_of(host)
        subset_path = (*path, "subset")
        if subsets is None or destination.subset not in subsets:
            report("CM1001", subset_path, destination.subset, subset=destination.subset,
                   host=destination.host)  # fmt: skip
            continue
        service = index.service_by_fqdn.get(host)
        if index.deployments and service is not None:
            labels = {**service.spec.selector, **subsets[destination.subset].labels}
            if not index.pods_match(labels, _ns(service)):
                report("CM1002", subset_path, destination.subset, subset=destination.subset,
                       host=destination.host)  # fmt: skip
    on_mesh = not vs.gateways or "mesh" in vs.gateways
    if on_mesh and index.services:
        for i, host in enumerate(vs.hosts):
            if host != "*" and not index.host_known(fqdn(host, namespace)):
                report("CM1013", (*SPEC, "hosts", i), host, host=host)
    if index.gateways:
        known = {(_ns(g), g.name) for g in index.gateways}
        for i, gateway in enumerate(vs.gateways):
            if gateway == "mesh":
                continue
            if (_gateway_key(gateway, namespace)) not in known:
                report("CM1005", (*SPEC, "gateways", i), gateway, gateway=gateway)
    return report.found


def _gateway_key(reference: str, namespace: str) -> tuple[str, str]:
    """``ns/name``, ``name`` (the VirtualService's namespace) or the legacy ``name.ns...`` form."""
    gw_ns, slash, name = reference.rpartition("/")
    if slash:
        return gw_ns, name
    if "." in reference:
        parts = reference.split(".")
        return parts[1], parts[0]
    return namespace, reference


def _check_destination_port(
    index: _Index,
    report: Reporter,
    path: FieldPath,
    destination: istio_networking.Destination,
    host: str,
) -> None:
    service = index.service_by_fqdn.get(host)
    number = destination.port.number if destination.port is not None else None
    if service is None or number is None:
        return
    ports = [p.port for p in service.spec.ports]
    if number not in ports:
        shown = ", ".join(str(p) for p in ports) or "no ports"
        report("CM1014", (*path, "port", "number"), number, port=number,
               host=destination.host, ports=shown)  # fmt: skip


def _check_conflicting_virtual_services(index: _Index) -> list[Diagnostic]:
    owner: dict[str, AnyResource] = {}
    found: list[Diagnostic] = []
    for resource in index.virtual_services:
        vs = resource.spec
        if vs.gateways and "mesh" not in vs.gateways:
            continue
        report = Reporter(resource)
        for i, host in enumerate(vs.hosts):
            name = fqdn(host, _ns(resource))
            other = owner.setdefault(name, resource)
            if other is not resource:
                report("CM1006", (*SPEC, "hosts", i), host, host=host,
                       other=other.display_name)  # fmt: skip
        found.extend(report.found)
    return found


def _check_destination_rule(
    index: _Index, resource: Resource[istio_networking.DestinationRule]
) -> list[Diagnostic]:
    report = Reporter(resource)
    dr = resource.spec
    if not dr.host:
        return []
    host = fqdn(dr.host, _ns(resource))
    if index.services and not index.host_known(host):
        report("CM1010", (*SPEC, "host"), dr.host, host=dr.host)
    service = index.service_by_fqdn.get(host)
    policy = _strict_policy(index, service) if service is not None else None
    if policy is not None:
        for path, tls in _client_tls(dr):
            if tls.mode == "DISABLE":
                report("CM1008", (*path, "mode"), "DISABLE", host=dr.host, policy=policy)
    return report.found


def _client_tls(
    dr: istio_networking.DestinationRule,
) -> Iterator[tuple[FieldPath, istio_networking.ClientTLSSettings]]:
    policies: list[tuple[FieldPath, istio_networking.TrafficPolicy | None]] = [
        ((*SPEC, "trafficPolicy"), dr.traffic_policy)
    ]
    policies += [((*SPEC, "subsets", i, "trafficPolicy"), s.traffic_policy)
                 for i, s in enumerate(dr.subsets)]  # fmt: skip
    for path, policy in policies:
        if policy is None:
            continue
        if policy.tls is not None:
            yield (*path, "tls"), policy.tls
        for i, port_policy in enumerate(policy.port_level_settings):
            if port_policy.tls is not None:
                yield (*path, "portLevelSettings", i, "tls"), port_policy.tls


def _strict_policy(index: _Index, service: Resource[kube.Service]) -> str | None:
    """The STRICT PeerAuthentication that covers ``service``'s pods, as ``ns/name``, if any."""
    namespace = _ns(service)
    for policy in select(index.all, istio_security.PeerAuthentication):
        spec = policy.spec
        if spec.mtls is None or spec.mtls.mode != "STRICT":
            continue
        scope = _ns(policy)
        selector = spec.selector.match_labels if spec.selector is not None else {}
        if scope == ROOT_NAMESPACE and not selector:
            return policy.display_name
        if scope == namespace and all(
            service.spec.selector.get(k) == v for k, v in selector.items()
        ):
            return policy.display_name
    return None


def _check_gateway(index: _Index, resource: Resource[istio_networking.Gateway]) -> list[Diagnostic]:
    report = Reporter(resource)
    selector = resource.spec.selector
    if not index.deployments or not selector or selector in BUILT_IN_GATEWAYS:
        return []
    if not any(
        all(d.spec.template.metadata.labels.get(k) == v for k, v in selector.items())
        for d in index.deployments
    ):
        shown = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        report("CM1004", (*SPEC, "selector"), selector=shown)
    return report.found


def _check_port_names(resource: Resource[kube.Service]) -> list[Diagnostic]:
    report = Reporter(resource)
    for i, port in enumerate(resource.spec.ports):
        if port.app_protocol or port.name is None:
            continue
        prefix = port.name.split("-", 1)[0]
        if prefix not in PORT_PROTOCOLS:
            report("CM1007", (*SPEC, "ports", i, "name"), port.name, name=port.name)
    return report.found


def _check_http_route(index: _Index, resource: Resource[gateway_api.HTTPRoute]) -> list[Diagnostic]:
    report = Reporter(resource)
    if not index.services:
        return []
    services = {(_ns(s), s.name) for s in index.services}
    namespace = _ns(resource)
    refs: list[tuple[FieldPath, str | None, str | None, str, str | None]] = [
        ((*SPEC, "parentRefs", i), p.group, p.kind, p.name, p.namespace)
        for i, p in enumerate(resource.spec.parent_refs)
        if p.kind == "Service"
    ]
    for i, rule in enumerate(resource.spec.rules):
        refs += [
            ((*SPEC, "rules", i, "backendRefs", j), b.group, b.kind or "Service", b.name,
             b.namespace)
            for j, b in enumerate(rule.backend_refs)
        ]  # fmt: skip
    for path, group, kind, name, ref_namespace in refs:
        if kind == "Service" and not group and (ref_namespace or namespace, name) not in services:
            report("CM1009", (*path, "name"), name, name=name)
    return report.found


def _check_service_account(index: _Index, resource: Resource[kube.Deployment]) -> list[Diagnostic]:
    report = Reporter(resource)
    name = resource.spec.template.spec.service_account_name
    if index.accounts and name and (_ns(resource), name) not in _names(index.accounts):
        path = (*SPEC, "template", "spec", "serviceAccountName")
        report("CM1011", path, name, name=name)
    return report.found


def _names(resources: Iterable[AnyResource]) -> set[tuple[str, str]]:
    return {(_ns(r), r.name) for r in resources}


def _check_canary(index: _Index, resource: Resource[canary.Canary]) -> list[Diagnostic]:
    report = Reporter(resource)
    spec, namespace, target = resource.spec.target, _ns(resource), (*SPEC, "target")
    if index.virtual_services and (namespace, spec.virtual_service) not in _names(
        index.virtual_services
    ):
        problem = f"VirtualService {spec.virtual_service} is not defined in the input"
        report("CM1012", (*target, "virtualService"), spec.virtual_service, problem=problem)
    if index.rules:
        subsets = index.subsets_of(fqdn(spec.host, namespace)) or {}
        for field, subset in (("stableSubset", spec.stable_subset),
                              ("canarySubset", spec.canary_subset)):  # fmt: skip
            if subset is not None and subset not in subsets:
                problem = f"subset {subset} of host {spec.host} is not defined by a DestinationRule"
                report("CM1012", (*target, field), subset, problem=problem)
    _check_group_members(index, resource, report)
    return report.found


def _check_group_members(
    index: _Index, resource: Resource[canary.Canary], report: Reporter
) -> None:
    """A release group's members: each VirtualService and both subsets exist in the input."""
    group, namespace = resource.spec.group, _ns(resource)
    if group is None:
        return
    for i, member in enumerate(group.members):
        where = (*SPEC, "group", "members", i)
        if index.virtual_services and (namespace, member.virtual_service) not in _names(
            index.virtual_services
        ):
            problem = f"VirtualService {member.virtual_service} is not defined in the input"
            report("CM1012", (*where, "virtualService"), member.virtual_service, problem=problem)
        if not index.rules:
            continue
        subsets = index.subsets_of(fqdn(member.host, namespace)) or {}
        for field, subset in (("stableSubset", member.stable_subset),
                              ("canarySubset", member.canary_subset)):  # fmt: skip
            if subset not in subsets:
                problem = (
                    f"subset {subset} of host {member.host} is not defined by a DestinationRule"
                )
                report("CM1012", (*where, field), subset, problem=problem)

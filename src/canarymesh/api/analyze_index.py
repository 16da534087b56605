"""The input set as analysis sees it: objects deduplicated (the last definition wins), hosts with
the namespaces they are visible from, and workloads with the labels a selector is matched
against. Pure; built once per :func:`canarymesh.api.analyze.analyze` call.

Lookups follow Istio's analyzers (pkg/config/analysis/analyzers/util): a Service is visible from
the namespaces of its ``networking.istio.io/exportTo`` annotation (all when unset), a
ServiceEntry from those of its ``exportTo``; a short host lives in the namespace of the object
that names it. Workloads are the input's Pods and the pods its Deployments will run, plus the
ingress gateway every mesh has (``istio: ingressgateway`` in istio-system, with the Service of
Istio's default profile), as ``istioctl analyze`` assumes one too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from canarymesh.api import gateway_api, istio_networking, kube
from canarymesh.api.kinds import split_api_version
from canarymesh.api.objects import ObjectMeta, Resource, select

__all__ = [
    "DEFAULT_NAMESPACE",
    "ROOT_NAMESPACE",
    "AnalysisIndex",
    "AnyResource",
    "HostEntry",
    "Workload",
    "fqdn",
    "host_matches",
    "namespace_of",
]

AnyResource = Resource[BaseModel]
DEFAULT_NAMESPACE = "default"
ROOT_NAMESPACE = "istio-system"
EXPORT_TO = "networking.istio.io/exportTo"
INGRESS_LABELS = {"istio": "ingressgateway", "app": "istio-ingressgateway"}
# The ingress gateway Service of Istio's default profile: status 15021, 80 -> 8080, 443 -> 8443
# (so a server on 8080, as in Bookinfo's gateway, or on 80 both reach it).
INGRESS_PORTS = ((15021, 15021), (80, 8080), (443, 8443))
# Node labels Istio adds to a pod's own (pilot's AugmentLabels), when the node sets them.
LOCALITY_LABELS = (
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
)


def fqdn(host: str, namespace: str) -> str:
    """Istio's short-name rule: a name without dots lives in the config's namespace."""
    if "." in host or host.startswith("*"):
        return host
    return f"{host}.{namespace}.svc.cluster.local"


def namespace_of(resource: AnyResource) -> str:
    return resource.namespace_or(DEFAULT_NAMESPACE)


def host_matches(pattern: str, host: str) -> bool:
    """Whether two hosts overlap, either side possibly a ``*.suffix`` wildcard (host.Name)."""
    if pattern == "*" or host == "*":
        return True
    if pattern.startswith("*") and host.startswith("*"):
        return pattern[1:].endswith(host[1:]) or host[1:].endswith(pattern[1:])
    if pattern.startswith("*"):
        return host.endswith(pattern[1:])
    if host.startswith("*"):
        return pattern.endswith(host[1:])
    return pattern == host


@dataclass(frozen=True, slots=True)
class HostEntry:
    """A host a destination can name: a Service's FQDN or a ServiceEntry host."""

    host: str
    namespace: str
    ports: tuple[int, ...]
    target_ports: Mapping[int, int]
    selector: Mapping[str, str]
    visible_from: frozenset[str] | None  # None: every namespace
    resource: AnyResource
    service: bool

    def visible(self, namespace: str) -> bool:
        return self.visible_from is None or namespace in self.visible_from


@dataclass(frozen=True, slots=True)
class Workload:
    """A pod (or the pods of a Deployment), with the labels selectors are matched against."""

    namespace: str
    labels: Mapping[str, str]
    resource: AnyResource | None

    def selected_by(self, selector: Mapping[str, str]) -> bool:
        return all(k in self.labels and self.labels[k] == v for k, v in selector.items())


def visible_namespaces(values: Sequence[str], own: str) -> frozenset[str] | None:
    """exportTo: none or ``*`` is everywhere, ``.`` the object's namespace, ``~`` nowhere."""
    chosen = [v.strip() for v in values if v.strip()]
    if not chosen or "*" in chosen:
        return None
    return frozenset(own if v == "." else v for v in chosen if v != "~")


class AnalysisIndex:
    """The input set, deduplicated (last definition wins), with the lookups the checks share."""

    def __init__(self, resources: Sequence[AnyResource]) -> None:
        latest: dict[tuple[str, str, str, str], AnyResource] = {}
        for resource in resources:
            latest[(split_api_version(resource.api_version)[0], *resource.key)] = resource
        self.all = list(latest.values())
        self.services = select(self.all, kube.Service)
        self.deployments = select(self.all, kube.Deployment)
        self.pods = select(self.all, kube.Pod)
        self.nodes = {r.name: r.metadata.labels for r in select(self.all, kube.Node)}
        self.accounts = select(self.all, kube.ServiceAccount)
        self.secrets = select(self.all, kube.Secret)
        self.entries = select(self.all, istio_networking.ServiceEntry)
        self.rules = select(self.all, istio_networking.DestinationRule)
        self.virtual_services = select(self.all, istio_networking.VirtualService)
        self.gateways = select(self.all, istio_networking.Gateway)
        self.kube_gateways = select(self.all, gateway_api.Gateway)
        self.has_workloads = bool(self.deployments or self.pods)
        self.workloads = self._workloads()
        self.hosts = self._hosts()

    def _workloads(self) -> list[Workload]:
        found = [Workload(ROOT_NAMESPACE, INGRESS_LABELS, None)]
        for deployment in self.deployments:
            labels = deployment.spec.template.metadata.labels
            found.append(Workload(namespace_of(deployment), labels, deployment))
        for pod in self.pods:
            labels = dict(pod.metadata.labels)
            node = pod.spec.node_name
            if node:
                labels["kubernetes.io/hostname"] = node
                node_labels = self.nodes.get(node, {})
                labels.update({k: node_labels[k] for k in LOCALITY_LABELS if node_labels.get(k)})
            found.append(Workload(namespace_of(pod), labels, pod))
        return found

    def _hosts(self) -> list[HostEntry]:
        hosts: list[HostEntry] = []
        for service in self.services:
            namespace = namespace_of(service)
            export = service.metadata.annotations.get(EXPORT_TO, "").split(",")
            targets = {
                p.port: p.target_port if isinstance(p.target_port, int) else p.port
                for p in service.spec.ports
            }
            hosts.append(
                HostEntry(
                    fqdn(service.name, namespace), namespace,
                    tuple(p.port for p in service.spec.ports), targets, service.spec.selector,
                    visible_namespaces(export, namespace), service, True,
                )
            )  # fmt: skip
        for entry in self.entries:
            namespace = namespace_of(entry)
            selector = entry.spec.workload_selector.labels if entry.spec.workload_selector else {}
            visible = visible_namespaces(entry.spec.export_to, namespace)
            numbers = tuple(p.number for p in entry.spec.ports if p.number is not None)
            for host in entry.spec.hosts:
                hosts.append(
                    HostEntry(fqdn(host, namespace), namespace, numbers, {}, selector, visible,
                              entry, False)
                )  # fmt: skip
        if not any(
            h.host == f"istio-ingressgateway.{ROOT_NAMESPACE}.svc.cluster.local" for h in hosts
        ):
            hosts.append(self._ingress_service())
        return hosts

    def _ingress_service(self) -> HostEntry:
        meta = ObjectMeta(name="istio-ingressgateway", namespace=ROOT_NAMESPACE)
        placeholder: AnyResource = Resource("v1", "Service", meta, kube.Service())
        return HostEntry(
            f"istio-ingressgateway.{ROOT_NAMESPACE}.svc.cluster.local", ROOT_NAMESPACE,
            tuple(p for p, _ in INGRESS_PORTS), dict(INGRESS_PORTS), INGRESS_LABELS, None,
            placeholder, True,
        )  # fmt: skip

    def lookup(self, host: str, namespace: str, export_to: Sequence[str] = ()) -> HostEntry | None:
        """The service a destination ``host`` written in ``namespace`` reaches (Istio's
        GetDestinationHost): exact hosts first, then ServiceEntry wildcards."""
        wanted = fqdn(host, namespace)
        scopes = visible_namespaces(export_to, namespace) or frozenset({namespace})
        for entry in self.hosts:
            if entry.host == wanted and (entry.visible_from is None or entry.visible_from & scopes):
                return entry
        wildcards = (e for e in self.hosts if e.host.startswith("*") and e.visible(namespace))
        return next((e for e in wildcards if wanted.removeprefix("*").endswith(e.host[1:])), None)

    def known_host(self, host: str) -> bool:
        """Whether any Service or ServiceEntry defines ``host`` (an FQDN), visibility aside."""
        return any(host_matches(entry.host, host) for entry in self.hosts)

    def subsets_of(self, host: str) -> dict[str, istio_networking.Subset] | None:
        """Subsets defined for ``host`` by all DestinationRules, or None when none targets it."""
        found: dict[str, istio_networking.Subset] | None = None
        for rule in self.rules:
            if rule.spec.host and fqdn(rule.spec.host, namespace_of(rule)) == host:
                found = found or {}
                found.update({s.name: s for s in rule.spec.subsets if s.name})
        return found

    def selected(self, labels: Mapping[str, str], namespace: str | None) -> list[Workload]:
        """The workloads in ``namespace`` (None: any) whose labels include ``labels``."""
        return [
            w for w in self.workloads
            if (namespace is None or w.namespace == namespace) and w.selected_by(labels)
        ]  # fmt: skip

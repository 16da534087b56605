"""``build_mesh(resources, ports)``: api resources -> the normalised ``MeshSnapshot``.

Called by the runtime on every apply/delete and by ``canarymesh render``. Deployments become
sidecar proxies (one per replica, ``<deployment>-<i>``); the Istio ingress gateway
``istio-ingressgateway`` (namespace ``istio-system``, labels ``istio: ingressgateway``) always
exists, as on a cluster with Istio installed; each Gateway API Gateway gets ``<name>-istio``.
Local ports come from the caller's ``PortAllocator``, asked in a sorted order so that a
deterministic allocator gives deterministic ports.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel

from canarymesh.api import gateway_api, istio_networking, istio_security, kube
from canarymesh.api.objects import Resource
from canarymesh.api.stats_annotations import KINDS, proxy_config_entries, sidecar_entries
from canarymesh.mesh.capture import ADMIN_PORT
from canarymesh.mesh.model import (
    Config,
    MeshService,
    MeshSettings,
    MeshSnapshot,
    PodNetwork,
    ProxyNode,
    ProxyPorts,
    Resolution,
    ServicePort,
    StaticEndpoint,
    StatsInclusion,
    TlsSecret,
    fqdn,
    labels_match,
    pairs,
    protocol_of,
)

SpecT = TypeVar("SpecT", bound=BaseModel)
RESOLUTIONS: dict[str, Resolution] = {"DNS": "DNS", "DNS_ROUND_ROBIN": "DNS", "STATIC": "STATIC"}
INGRESS_NAME = "istio-ingressgateway"
INGRESS_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"

# A key names one local port: ("inbound" | "app" | "admin" | "http" | "tcp" | "gateway", proxy,
# detail). The runtime keeps its allocations across rebuilds; render numbers them in order.
PortKey = tuple[str, str, str]
PortAllocator = Callable[[PortKey], int]
# Pod networks: ("pod", proxy id) -> the pod's IP, ("service", "<namespace>/<name>") -> its
# ClusterIP, ("entry", host) -> a ServiceEntry host's address. Without an allocator every proxy
# shares the host network (loopback ports from the PortAllocator).
AddressKey = tuple[str, str]
AddressAllocator = Callable[[AddressKey], str]


@dataclass(slots=True)
class SequentialPorts:
    """A deterministic allocator for offline use: ports from ``base`` in the order asked."""

    base: int = 15000
    assigned: dict[PortKey, int] = field(default_factory=dict)

    def __call__(self, key: PortKey) -> int:
        if key not in self.assigned:
            self.assigned[key] = self.base + len(self.assigned)
        return self.assigned[key]


# Where SequentialAddresses starts per kind (the runtime's allocator uses the user's CIDRs).
_FIRST_ADDRESS = {"pod": "10.244.0.2", "service": "10.96.0.10", "entry": "240.240.0.1"}


@dataclass(slots=True)
class SequentialAddresses:
    """A deterministic address allocator for offline use: addresses per kind in the order asked."""

    assigned: dict[AddressKey, str] = field(default_factory=dict)

    def __call__(self, key: AddressKey) -> str:
        if key not in self.assigned:
            taken = sum(1 for kind, _ in self.assigned if kind == key[0])
            first = ipaddress.IPv4Address(_FIRST_ADDRESS[key[0]])
            self.assigned[key] = str(first + taken)
        return self.assigned[key]


def ns(resource: Resource[BaseModel]) -> str:
    return resource.namespace_or("default")


def typed_configs(
    resources: Sequence[Resource[BaseModel]], spec_type: type[SpecT]
) -> tuple[Config[SpecT], ...]:
    chosen: list[Config[SpecT]] = []
    for resource in resources:
        spec = resource.spec
        if isinstance(spec, spec_type):
            chosen.append(Config(resource.kind, resource.name, ns(resource), spec))
    return tuple(sorted(chosen, key=lambda c: (c.namespace, c.name)))


@dataclass(frozen=True, slots=True)
class PodTemplate:
    deployment: str
    namespace: str
    replicas: int
    labels: tuple[tuple[str, str], ...]
    service_account: str
    container_ports: tuple[tuple[str, int], ...]
    stats_inclusion: StatsInclusion = StatsInclusion()


def stats_inclusion(annotations: Mapping[str, str]) -> StatsInclusion:
    """What a pod's annotations add to Istio's default Envoy stats; the older
    ``sidecar.istio.io`` entries first, as istio-agent puts them."""
    entries = {
        kind: sidecar_entries(annotations, kind) + proxy_config_entries(annotations, kind)
        for kind in KINDS
    }
    return StatsInclusion(**entries)


def pod_templates(resources: Sequence[Resource[BaseModel]]) -> list[PodTemplate]:
    templates = []
    for resource in resources:
        spec = resource.spec
        if not isinstance(spec, kube.Deployment):
            continue
        pod = spec.template
        ports = tuple(
            (p.name or "", p.container_port) for c in pod.spec.containers for p in c.ports
        )
        templates.append(
            PodTemplate(
                resource.name,
                ns(resource),
                spec.replica_count,
                pairs(pod.metadata.labels),
                pod.spec.service_account_name or "default",
                ports,
                stats_inclusion(pod.metadata.annotations),
            )
        )
    return sorted(templates, key=lambda t: (t.namespace, t.deployment))


def resolve_target_port(
    target: int | str | None, port: int, templates: Sequence[PodTemplate]
) -> int:
    if isinstance(target, int):
        return target
    if isinstance(target, str):
        for template in templates:
            for name, number in template.container_ports:
                if name == target:
                    return number
    return port


def kube_services(
    resources: Sequence[Resource[BaseModel]],
    templates: Sequence[PodTemplate],
    suffix: str,
    addresses: AddressAllocator | None = None,
) -> list[MeshService]:
    services = []
    for resource in resources:
        spec = resource.spec
        if not isinstance(spec, kube.Service):
            continue
        namespace = ns(resource)
        selected = [
            t
            for t in templates
            if t.namespace == namespace
            and spec.selector
            and labels_match(spec.selector, dict(t.labels))
        ]
        ports = tuple(
            ServicePort(
                p.name or "",
                p.port,
                resolve_target_port(p.target_port, p.port, selected),
                protocol_of(p.name or "", p.app_protocol),
            )
            for p in spec.ports
        )
        cluster_ip = addresses(("service", f"{namespace}/{resource.name}")) if addresses else None
        services.append(
            MeshService(
                resource.name,
                namespace,
                fqdn(resource.name, namespace, suffix),
                ports,
                pairs(spec.selector),
                cluster_ip=cluster_ip,
            )
        )
    return services


def entry_services(
    resources: Sequence[Resource[BaseModel]], addresses: AddressAllocator | None = None
) -> list[MeshService]:
    services = []
    for resource in resources:
        spec = resource.spec
        if not isinstance(spec, istio_networking.ServiceEntry):
            continue
        ports = tuple(
            ServicePort(
                p.name or "",
                p.number or 0,
                p.target_port or p.number or 0,
                protocol_of(p.protocol or p.name or ""),
            )
            for p in spec.ports
        )
        resolution = RESOLUTIONS.get(spec.resolution or "NONE", "NONE")
        endpoints = tuple(
            StaticEndpoint(e.address or "", tuple(sorted(e.ports.items())), pairs(e.labels))
            for e in spec.endpoints
            if e.address
        )
        for position, host in enumerate(spec.hosts):
            # Istio's DNS proxy answers a ServiceEntry host with its address, or one it allocates.
            address = None
            if addresses is not None and "*" not in host:
                written = [a for a in spec.addresses if "/" not in a]
                address = written[0] if written and position == 0 else addresses(("entry", host))
            services.append(
                MeshService(
                    host,
                    ns(resource),
                    host,
                    ports,
                    resolution=resolution,
                    external=spec.location != "MESH_INTERNAL",
                    static_endpoints=endpoints,
                    cluster_ip=address,
                )
            )
    return services


def sidecar_proxies(
    templates: Sequence[PodTemplate],
    services: Sequence[MeshService],
    allocate: PortAllocator,
    addresses: AddressAllocator | None = None,
) -> list[ProxyNode]:
    tcp_targets = sorted(
        (s.hostname, p.port)
        for s in services
        for p in s.ports
        if p.is_tcp and s.resolution == "EDS"
    )
    proxies = []
    for template in templates:
        container_ports = sorted(
            {number for _, number in template.container_ports} | targeted_ports(template, services)
        )
        for replica in range(template.replicas):
            # Unique across namespaces: the same Deployment may run in several.
            pod = f"{template.deployment}-{replica}"
            if template.namespace != "default":
                pod = f"{pod}.{template.namespace}"
            if addresses is not None:
                proxies.append(pod_sidecar(template, pod, container_ports, addresses(("pod", pod))))
                continue
            ports = ProxyPorts(
                admin=allocate(("admin", pod, "")),
                outbound_http=allocate(("http", pod, "")),
                inbound=tuple((p, allocate(("inbound", pod, str(p)))) for p in container_ports),
                app=tuple((p, allocate(("app", pod, str(p)))) for p in container_ports),
                outbound_tcp=tuple(
                    ((host, port), allocate(("tcp", pod, f"{host}:{port}")))
                    for host, port in tcp_targets
                ),
            )
            proxies.append(
                ProxyNode(
                    pod,
                    "sidecar",
                    template.namespace,
                    template.deployment,
                    template.labels,
                    template.service_account,
                    ports,
                    stats_inclusion=template.stats_inclusion,
                )
            )
    return proxies


def pod_sidecar(
    template: PodTemplate, pod: str, container_ports: Sequence[int], ip: str
) -> ProxyNode:
    """A sidecar in its pod's own network: Istio's fixed ports, the app on its container ports."""
    identity = tuple((p, p) for p in container_ports)
    return ProxyNode(
        pod,
        "sidecar",
        template.namespace,
        template.deployment,
        template.labels,
        template.service_account,
        ProxyPorts(admin=ADMIN_PORT, inbound=identity, app=identity),
        network=PodNetwork(ip),
        stats_inclusion=template.stats_inclusion,
    )


def targeted_ports(template: PodTemplate, services: Sequence[MeshService]) -> set[int]:
    labels = dict(template.labels)
    return {
        p.target_port
        for s in services
        if s.namespace == template.namespace and s.selector and labels_match(s.selector_map, labels)
        for p in s.ports
    }


def gateway_proxies(
    resources: Sequence[Resource[BaseModel]],
    allocate: PortAllocator,
    addresses: AddressAllocator | None = None,
) -> list[ProxyNode]:
    """The built-in ingress gateway and one proxy per Gateway API Gateway.

    Their server ports always get local ports on the host's loopback (that is how users reach
    them); with pod networks the gateway lives in a pod network of its own besides.
    """

    def network(name: str) -> PodNetwork | None:
        return PodNetwork(addresses(("pod", name))) if addresses is not None else None

    def admin(name: str) -> int:
        return ADMIN_PORT if addresses is not None else allocate(("admin", name, ""))

    ingress_ports = sorted(
        {
            server.port.number
            for r in resources
            if isinstance(r.spec, istio_networking.Gateway)
            and labels_match(r.spec.selector, INGRESS_LABELS)
            and r.spec.selector
            for server in r.spec.servers
            if server.port is not None and server.port.number is not None
        }
    )
    proxies = [
        ProxyNode(
            INGRESS_NAME,
            "gateway",
            "istio-system",
            INGRESS_NAME,
            pairs(INGRESS_LABELS),
            "istio-ingressgateway-service-account",
            ProxyPorts(
                admin=admin(INGRESS_NAME),
                gateway=tuple(
                    (p, allocate(("gateway", INGRESS_NAME, str(p)))) for p in ingress_ports
                ),
            ),
            network=network(INGRESS_NAME),
        )
    ]
    kube_gateways = sorted(
        (r for r in resources if isinstance(r.spec, gateway_api.Gateway)),
        key=lambda r: (ns(r), r.name),
    )
    for resource in kube_gateways:
        assert isinstance(resource.spec, gateway_api.Gateway)
        name = f"{resource.name}-istio"
        ports = sorted({listener.port for listener in resource.spec.listeners})
        proxies.append(
            ProxyNode(
                name,
                "gateway",
                ns(resource),
                name,
                pairs({GATEWAY_NAME_LABEL: resource.name}),
                name,
                ProxyPorts(
                    admin=admin(name),
                    gateway=tuple((p, allocate(("gateway", name, str(p)))) for p in ports),
                ),
                network=network(name),
            )
        )
    return proxies


def decode(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def tls_secrets(resources: Sequence[Resource[BaseModel]]) -> list[TlsSecret]:
    secrets = []
    for resource in resources:
        spec = resource.spec
        if not isinstance(spec, kube.Secret):
            continue
        data = {k: decode(v) for k, v in spec.data.items()} | dict(spec.string_data)
        if "tls.crt" in data and "tls.key" in data:
            secrets.append(
                TlsSecret(
                    resource.name,
                    ns(resource),
                    data["tls.crt"],
                    data["tls.key"],
                    data.get("ca.crt", ""),
                )
            )
    return sorted(secrets, key=lambda s: (s.namespace, s.name))


def build_mesh(
    resources: Sequence[Resource[BaseModel]],
    allocate: PortAllocator | None = None,
    settings: MeshSettings | None = None,
    addresses: AddressAllocator | None = None,
) -> MeshSnapshot:
    """The mesh the resources describe; ``allocate`` defaults to ``SequentialPorts()``.

    With ``addresses``, every pod and gateway has a network of its own (pod IPs, ClusterIPs);
    without, they share the host's and reach each other on loopback ports.
    """
    allocate = allocate or SequentialPorts()
    settings = settings or MeshSettings()
    templates = pod_templates(resources)
    services = kube_services(
        resources, templates, settings.domain_suffix, addresses
    ) + entry_services(resources, addresses)
    services.sort(key=lambda s: (s.hostname, s.namespace))
    proxies = sidecar_proxies(templates, services, allocate, addresses) + gateway_proxies(
        resources, allocate, addresses
    )
    return MeshSnapshot(
        services=tuple(services),
        proxies=tuple(proxies),
        virtual_services=typed_configs(resources, istio_networking.VirtualService),
        destination_rules=typed_configs(resources, istio_networking.DestinationRule),
        gateways=typed_configs(resources, istio_networking.Gateway),
        peer_authentications=typed_configs(resources, istio_security.PeerAuthentication),
        authorization_policies=typed_configs(resources, istio_security.AuthorizationPolicy),
        kube_gateways=typed_configs(resources, gateway_api.Gateway),
        http_routes=typed_configs(resources, gateway_api.HTTPRoute),
        secrets=tuple(tls_secrets(resources)),
        settings=settings,
    )

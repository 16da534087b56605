"""The normalised mesh: services, proxies (pods and gateways), their local ports, and config.

Built by ``mesh.build.build_mesh`` from api resources (or directly by tests and benches) and read
by every ``canarymesh.xds`` module. All classes are frozen; mappings are stored as sorted tuples of
pairs so that a snapshot hashes and compares by value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from canarymesh.api import gateway_api, istio_networking, istio_security

SpecT = TypeVar("SpecT")

ProxyKind = Literal["sidecar", "gateway"]
Resolution = Literal["EDS", "STATIC", "DNS", "NONE"]

# Istio picks a port's protocol from its name prefix or appProtocol:
# https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/
HTTP_PROTOCOLS = frozenset({"http", "http2", "grpc", "grpc-web"})
KNOWN_PROTOCOLS = HTTP_PROTOCOLS | frozenset(
    {"tcp", "tls", "https", "mongo", "mysql", "redis", "udp"}
)


def protocol_of(port_name: str, app_protocol: str | None = None) -> str:
    """Istio's protocol of a port: appProtocol first, else the name's prefix before ``-``."""
    candidate = (app_protocol or port_name.split("-", 1)[0]).lower()
    return candidate if candidate in KNOWN_PROTOCOLS else "unknown"


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A label selector (matchLabels) selects a label set when every pair is present."""
    return all(labels.get(key) == value for key, value in selector.items())


def fqdn(name: str, namespace: str, domain_suffix: str = "cluster.local") -> str:
    return f"{name}.{namespace}.svc.{domain_suffix}"


def resolve_host(host: str, namespace: str, domain_suffix: str = "cluster.local") -> str:
    """A config host as Istio reads it: a short name lives in the config's namespace.

    ``reviews`` -> ``reviews.default.svc.cluster.local``; ``reviews.prod`` is namespace-qualified;
    names ending in the domain suffix and other dotted names (``www.googleapis.com``) are kept.
    """
    if "*" in host or host.endswith("." + domain_suffix):
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return fqdn(host, namespace, domain_suffix)
    if len(parts) == 2 or (len(parts) == 3 and parts[2] == "svc"):
        return fqdn(parts[0], parts[1], domain_suffix)
    return host


def pairs(mapping: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(mapping.items()))


@dataclass(frozen=True, slots=True)
class MeshSettings:
    """Mesh-wide settings (Istio's MeshConfig subset that matters here)."""

    domain_suffix: str = "cluster.local"
    trust_domain: str = "cluster.local"
    root_namespace: str = "istio-system"
    # gRPC access-log server of the runtime (telemetry) on 127.0.0.1, or a Unix socket path
    # (``telemetry_socket`` wins: a pod in its own network namespace cannot reach the host's
    # loopback, but every pod sees the same file system); neither leaves access logs out.
    telemetry_port: int | None = None
    telemetry_socket: str | None = None
    # Zipkin span collector of the runtime (HTTP, JSON v2), likewise; neither leaves tracing out.
    tracing_port: int | None = None
    tracing_socket: str | None = None
    # Percentage of requests traced: Istio's meshConfig.defaultConfig.tracing.sampling, whose
    # default is 1 (tracing every request costs each sidecar pair about 1.4 ms at p99 here).
    # A request with x-client-trace-id is always traced (Envoy's client_sampling, 100%).
    tracing_sampling: float = 1.0
    # Istio's outboundTrafficPolicy: ALLOW_ANY adds a passthrough for hosts outside the mesh.
    allow_any: bool = True
    # Pod networks: the host's network namespace file, where gateways bind their server ports.
    host_netns: str | None = None

    @property
    def has_telemetry(self) -> bool:
        return self.telemetry_port is not None or self.telemetry_socket is not None

    @property
    def has_tracing(self) -> bool:
        return self.tracing_port is not None or self.tracing_socket is not None


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    target_port: int
    protocol: str

    @property
    def is_http(self) -> bool:
        # Unknown protocols are sniffed by Istio; on the local mesh they reach the sidecar as
        # proxied HTTP, so they get a virtual host as well as a TCP listener.
        return self.protocol in HTTP_PROTOCOLS or self.protocol == "unknown"

    @property
    def is_tcp(self) -> bool:
        return self.protocol not in HTTP_PROTOCOLS


@dataclass(frozen=True, slots=True)
class StaticEndpoint:
    """An endpoint written in a ServiceEntry (or the host itself for DNS resolution)."""

    address: str
    ports: tuple[tuple[str, int], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MeshService:
    """A Kubernetes Service or a ServiceEntry host, addressed by its FQDN ``hostname``."""

    name: str
    namespace: str
    hostname: str
    ports: tuple[ServicePort, ...]
    selector: tuple[tuple[str, str], ...] = ()
    resolution: Resolution = "EDS"
    external: bool = False
    static_endpoints: tuple[StaticEndpoint, ...] = ()
    # The Service's ClusterIP when pods have their own networks (None on the shared network):
    # what the pods' DNS answers and what their sidecar's outbound listeners match.
    cluster_ip: str | None = None

    @property
    def selector_map(self) -> dict[str, str]:
        return dict(self.selector)

    def port(self, number: int) -> ServicePort | None:
        return next((p for p in self.ports if p.port == number), None)


@dataclass(frozen=True, slots=True)
class WorkloadIdentity:
    """PEM material the runtime's CA issued to one proxy (Istio's ``default``/``ROOTCA``)."""

    cert_chain: str
    private_key: str
    root_cert: str
    # The proxy's credential for the runtime's access-log server (sent as gRPC metadata).
    telemetry_token: str = ""


@dataclass(frozen=True, slots=True)
class ProxyPorts:
    """Local ports of one proxy, allocated by the caller (the runtime or ``render``).

    ``inbound`` maps a container port to the sidecar's inbound listener port, ``app`` maps it to
    the port the application really listens on, ``outbound_tcp`` maps ``(hostname, port)`` of a
    TCP service to a local listener, ``gateway`` maps a Gateway server port to a local port.
    """

    admin: int
    outbound_http: int = 0
    inbound: tuple[tuple[int, int], ...] = ()
    app: tuple[tuple[int, int], ...] = ()
    outbound_tcp: tuple[tuple[tuple[str, int], int], ...] = ()
    gateway: tuple[tuple[int, int], ...] = ()

    def inbound_port(self, container_port: int) -> int | None:
        return dict(self.inbound).get(container_port)

    def app_port(self, container_port: int) -> int | None:
        return dict(self.app).get(container_port)

    def tcp_port(self, hostname: str, port: int) -> int | None:
        return dict(self.outbound_tcp).get((hostname, port))

    def gateway_port(self, server_port: int) -> int | None:
        return dict(self.gateway).get(server_port)


@dataclass(frozen=True, slots=True)
class PodNetwork:
    """A proxy in a pod network namespace of its own (Kubernetes' model), not the host's.

    Its sidecar captures traffic as istio-iptables does (``mesh.capture``: outbound to 15001,
    inbound to 15006) and keeps its admin on the pod's own loopback. A gateway's server
    listeners bind in ``MeshSettings.host_netns`` instead, so the host reaches them on its
    loopback while the gateway reaches the pods over the pod network.
    """

    ip: str


@dataclass(frozen=True, slots=True)
class StatsInclusion:
    """Envoy stats a pod asks to keep (Istio's ``sidecar.istio.io/statsInclusionPrefixes``,
    ``...Suffixes`` and ``...Regexps`` annotations, comma-separated)."""

    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    regexps: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProxyNode:
    """One Envoy: a pod replica's sidecar or a gateway."""

    id: str
    kind: ProxyKind
    namespace: str
    workload: str
    labels: tuple[tuple[str, str], ...]
    service_account: str
    ports: ProxyPorts
    identity: WorkloadIdentity | None = None
    # None: the shared host network (apps reach their sidecar as HTTP_PROXY).
    network: PodNetwork | None = None
    # Envoy stats kept beyond Istio's default set: the pod's sidecar.istio.io/statsInclusion*.
    stats_inclusion: StatsInclusion = StatsInclusion()

    @property
    def ip(self) -> str | None:
        return self.network.ip if self.network is not None else None

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class Config(Generic[SpecT]):
    """One config resource: its kind, name, namespace and the api model of its spec."""

    kind: str
    name: str
    namespace: str
    spec: SpecT

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class TlsSecret:
    """A ``kubernetes.io/tls`` Secret a gateway server names as its credential."""

    name: str
    namespace: str
    cert_chain: str
    private_key: str
    ca_cert: str = ""


@dataclass(frozen=True, slots=True)
class MeshSnapshot:
    """Everything the translation reads. Build it with ``build_mesh``; never mutate it."""

    services: tuple[MeshService, ...] = ()
    proxies: tuple[ProxyNode, ...] = ()
    virtual_services: tuple[Config[istio_networking.VirtualService], ...] = ()
    destination_rules: tuple[Config[istio_networking.DestinationRule], ...] = ()
    gateways: tuple[Config[istio_networking.Gateway], ...] = ()
    peer_authentications: tuple[Config[istio_security.PeerAuthentication], ...] = ()
    authorization_policies: tuple[Config[istio_security.AuthorizationPolicy], ...] = ()
    kube_gateways: tuple[Config[gateway_api.Gateway], ...] = ()
    http_routes: tuple[Config[gateway_api.HTTPRoute], ...] = ()
    secrets: tuple[TlsSecret, ...] = ()
    settings: MeshSettings = field(default_factory=MeshSettings)

    def proxy(self, proxy_id: str) -> ProxyNode:
        for proxy in self.proxies:
            if proxy.id == proxy_id:
                return proxy
        known = ", ".join(sorted(p.id for p in self.proxies)) or "none"
        raise KeyError(f"no proxy named {proxy_id!r} (known: {known})")

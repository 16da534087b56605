"""Lookups over a ``MeshSnapshot``: services by host, endpoints by subset, config by host.

Built once per mesh by ``MeshIndex.of(mesh)`` and shared by every ``xds`` builder (and reused
across proxies by the runtime and the bench, so that a mesh of 1,000 services is indexed once).
Also answers which proxies a config change touches (``affected_proxies``), for incremental pushes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from canarymesh.api.istio_networking import DestinationRule, Subset, VirtualService
from canarymesh.mesh.merge import find_destination_rule, host_matches
from canarymesh.mesh.model import (
    Config,
    MeshService,
    MeshSnapshot,
    ProxyNode,
    labels_match,
    resolve_host,
)

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address of a service port: a sidecar's inbound listener (or a static address)."""

    address: str
    port: int
    labels: tuple[tuple[str, str], ...]
    proxy_id: str = ""
    service_account: str = ""
    namespace: str = ""


@dataclass(slots=True)
class MeshIndex:
    mesh: MeshSnapshot
    services: dict[str, MeshService] = field(default_factory=dict)
    rule_hosts: list[tuple[str, Config[DestinationRule]]] = field(default_factory=list)
    vs_hosts: list[tuple[str, Config[VirtualService]]] = field(default_factory=list)
    _endpoints: dict[tuple[str, int], tuple[Endpoint, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, mesh: MeshSnapshot) -> MeshIndex:
        suffix = mesh.settings.domain_suffix
        index = cls(mesh)
        for service in sorted(mesh.services, key=lambda s: (s.hostname, s.namespace)):
            index.services.setdefault(service.hostname, service)
        for rule in mesh.destination_rules:
            if rule.spec.host:
                index.rule_hosts.append(
                    (resolve_host(rule.spec.host, rule.namespace, suffix), rule)
                )
        for vs in sorted(mesh.virtual_services, key=lambda c: (c.namespace, c.name)):
            for host in vs.spec.hosts:
                index.vs_hosts.append((resolve_host(host, vs.namespace, suffix), vs))
        return index

    def sorted_services(self) -> list[MeshService]:
        return [self.services[h] for h in sorted(self.services)]

    def service(self, host: str) -> MeshService | None:
        return self.services.get(host)

    def endpoints(self, service: MeshService, port: int) -> tuple[Endpoint, ...]:
        key = (service.hostname, port)
        if key not in self._endpoints:
            self._endpoints[key] = self._compute_endpoints(service, port)
        return self._endpoints[key]

    def _compute_endpoints(self, service: MeshService, port: int) -> tuple[Endpoint, ...]:
        service_port = service.port(port)
        if service_port is None:
            return ()
        if service.resolution != "EDS":
            return tuple(
                Endpoint(e.address, dict(e.ports).get(service_port.name, port), e.labels)
                for e in service.static_endpoints
            )
        selector = service.selector_map
        found: list[Endpoint] = []
        for proxy in self.mesh.proxies:
            if proxy.kind != "sidecar" or proxy.namespace != service.namespace:
                continue
            if not selector or not labels_match(selector, proxy.label_map):
                continue
            local = proxy.ports.inbound_port(service_port.target_port)
            if local is not None:
                found.append(
                    Endpoint(
                        LOOPBACK,
                        local,
                        proxy.labels,
                        proxy.id,
                        proxy.service_account,
                        proxy.namespace,
                    )
                )
        return tuple(sorted(found, key=lambda e: (e.address, e.port)))

    def destination_rule(self, host: str, client_namespace: str) -> DestinationRule | None:
        service = self.services.get(host)
        host_namespace = service.namespace if service else client_namespace
        return find_destination_rule(
            self.rule_hosts,
            host,
            client_namespace,
            host_namespace,
            self.mesh.settings.root_namespace,
        )

    def subsets(self, host: str, client_namespace: str) -> tuple[Subset, ...]:
        rule = self.destination_rule(host, client_namespace)
        return tuple(s for s in rule.subsets if s.name) if rule else ()

    def virtual_services(self, host: str, gateway: str) -> list[Config[VirtualService]]:
        """VirtualServices for ``host`` bound to ``gateway`` (``mesh`` for sidecars).

        A VirtualService without ``gateways`` binds to ``mesh`` only; a gateway name without
        namespace means the VirtualService's namespace (Istio's rules).
        """
        chosen: list[Config[VirtualService]] = []
        for pattern, vs in self.vs_hosts:
            bound = bound_gateways(vs)
            if gateway not in bound or vs in chosen:
                continue
            if host_matches(pattern, host) or host_matches(host, pattern):
                chosen.append(vs)
        return chosen


def bound_gateways(vs: Config[VirtualService]) -> set[str]:
    """The gateways a VirtualService binds to, as ``namespace/name`` (or ``mesh``)."""
    return {qualify_gateway(g, vs.namespace) for g in (vs.spec.gateways or ("mesh",))}


def qualify_gateway(gateway: str, namespace: str) -> str:
    if gateway == "mesh" or "/" in gateway:
        return gateway
    # ``bookinfo-gateway.default`` is Istio's older dotted spelling of ``default/bookinfo-gateway``.
    if "." in gateway:
        name, _, gw_namespace = gateway.partition(".")
        return f"{gw_namespace}/{name}"
    return f"{namespace}/{gateway}"


def subset_endpoints(endpoints: Sequence[Endpoint], subset: Subset | None) -> list[Endpoint]:
    if subset is None:
        return list(endpoints)
    return [e for e in endpoints if labels_match(subset.labels, dict(e.labels))]


def affected_proxies(mesh: MeshSnapshot, changed: Config[object]) -> list[ProxyNode]:
    """The proxies whose snapshot may change when ``changed`` is applied or deleted.

    Sidecars see every service, so mesh-bound routing (VirtualService, DestinationRule) touches
    all sidecars; gateway-bound VirtualServices touch only the gateways; PeerAuthentication and
    AuthorizationPolicy touch the workloads they select (all of a namespace without selector,
    the whole mesh in the root namespace) plus, for mTLS, every client (auto-mTLS).
    """
    if isinstance(changed.spec, VirtualService):
        gateways = {
            qualify_gateway(g, changed.namespace) for g in changed.spec.gateways or ("mesh",)
        }
        kinds = {"sidecar"} if gateways == {"mesh"} else {"sidecar", "gateway"}
        if "mesh" not in gateways:
            kinds = {"gateway"}
        return [p for p in mesh.proxies if p.kind in kinds]
    if changed.kind == "AuthorizationPolicy":
        return [p for p in mesh.proxies if selects(mesh, changed, p)]
    return list(mesh.proxies)


def selects(mesh: MeshSnapshot, policy: Config[object], proxy: ProxyNode) -> bool:
    selector = getattr(policy.spec, "selector", None)
    match_labels: Mapping[str, str] = getattr(selector, "match_labels", {}) if selector else {}
    if policy.namespace == mesh.settings.root_namespace and not match_labels:
        return True
    return policy.namespace == proxy.namespace and labels_match(match_labels, proxy.label_map)

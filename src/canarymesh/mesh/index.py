"""Lookups over a ``MeshSnapshot``: services by host, endpoints by subset, config by host.

Built once per mesh by ``MeshIndex.of(mesh)`` and shared by every ``xds`` builder (and reused
across proxies by the runtime and the bench, so that a mesh of 1,000 services is indexed once).
Also answers which proxies a config change touches (``affected_proxies``), for incremental pushes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from canarymesh.api.istio_networking import DestinationRule, Subset, VirtualService
from canarymesh.mesh.merge import (
    EffectiveMtls,
    compose_peer_authentication,
    find_destination_rule,
    host_matches,
    merge_destination_rules,
)
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
    """One address of a service port: a pod's IP and port, a sidecar's inbound listener on the
    shared network's loopback, or a static address."""

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
    proxies_by_id: dict[str, ProxyNode] = field(default_factory=dict)
    # (namespace, label key, label value) -> sidecars carrying it: selectors start from the
    # smallest candidate list instead of scanning every proxy (1,000s in the bench).
    by_label: dict[tuple[str, str, str], list[ProxyNode]] = field(default_factory=dict)
    _endpoints: dict[tuple[str, int], tuple[Endpoint, ...]] = field(default_factory=dict)
    _mtls: dict[str, EffectiveMtls] = field(default_factory=dict)
    _rules: dict[tuple[str, str], DestinationRule | None] = field(default_factory=dict)
    _rules_exact: dict[str, list[tuple[str, Config[DestinationRule]]]] = field(default_factory=dict)
    _rules_wild: list[tuple[str, Config[DestinationRule]]] = field(default_factory=list)
    _bound: dict[tuple[str, str, str], list[Config[VirtualService]]] = field(default_factory=dict)
    # Exact VirtualService hosts -> entries (in order); wildcard hosts are scanned.
    _vs_exact: dict[str, list[tuple[int, Config[VirtualService]]]] = field(default_factory=dict)
    _vs_wild: list[tuple[int, str, Config[VirtualService]]] = field(default_factory=list)
    # Fragments the translation shares between proxies (e.g. a virtual host's routes for every
    # sidecar of a namespace); keyed by the translation, dropped when VirtualServices change.
    memo: dict[tuple[object, ...], object] = field(default_factory=dict)

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
        for host, rule in index.rule_hosts:
            if host.startswith("*"):
                index._rules_wild.append((host, rule))
            else:
                index._rules_exact.setdefault(host, []).append((host, rule))
        index.set_virtual_service_hosts(virtual_service_hosts(mesh))
        for proxy in mesh.proxies:
            index.proxies_by_id[proxy.id] = proxy
            if proxy.kind == "sidecar":
                for key, value in proxy.labels:
                    index.by_label.setdefault((proxy.namespace, key, value), []).append(proxy)
        return index

    def with_virtual_services(self, mesh: MeshSnapshot) -> MeshIndex:
        """An index for ``mesh``, which differs from this one's only in VirtualServices:
        services, endpoints and policies are shared, only the host lookup is rebuilt."""
        fresh = dataclasses.replace(self, mesh=mesh, _bound={}, _vs_exact={}, _vs_wild=[], memo={})
        fresh.set_virtual_service_hosts(virtual_service_hosts(mesh))
        return fresh

    def set_virtual_service_hosts(self, hosts: list[tuple[str, Config[VirtualService]]]) -> None:
        self.vs_hosts = hosts
        for order, (pattern, vs) in enumerate(hosts):
            if "*" in pattern:
                self._vs_wild.append((order, pattern, vs))
            else:
                self._vs_exact.setdefault(pattern, []).append((order, vs))

    def mtls_of(self, proxy: ProxyNode) -> EffectiveMtls:
        if proxy.id not in self._mtls:
            mesh = self.mesh
            self._mtls[proxy.id] = compose_peer_authentication(
                mesh.peer_authentications,
                proxy.namespace,
                proxy.label_map,
                mesh.settings.root_namespace,
            )
        return self._mtls[proxy.id]

    def selected_sidecars(self, namespace: str, selector: Mapping[str, str]) -> list[ProxyNode]:
        if not selector:
            return []
        candidates = [self.by_label.get((namespace, k, v), []) for k, v in selector.items()]
        smallest = min(candidates, key=len)
        return [p for p in smallest if labels_match(selector, p.label_map)]

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
            static = (
                Endpoint(e.address, dict(e.ports).get(service_port.name, port), e.labels)
                for e in service.static_endpoints
            )
            return tuple(sorted(static, key=lambda e: (e.address, e.port)))
        found: list[Endpoint] = []
        for proxy in self.selected_sidecars(service.namespace, service.selector_map):
            local = proxy.ports.inbound_port(service_port.target_port)
            if local is not None:
                # A pod's own IP and the container port (its sidecar captures it), or on the
                # shared network the sidecar's inbound listener on the loopback.
                found.append(
                    Endpoint(
                        proxy.ip or LOOPBACK,
                        local,
                        proxy.labels,
                        proxy.id,
                        proxy.service_account,
                        proxy.namespace,
                    )
                )
        return tuple(sorted(found, key=lambda e: (e.address, e.port)))

    def destination_rule(
        self,
        host: str,
        client_namespace: str,
        client_labels: tuple[tuple[str, str], ...] = (),
    ) -> DestinationRule | None:
        """The rule a client in ``client_namespace`` (with ``client_labels``) applies to
        ``host``. A rule with a ``workloadSelector`` applies only to the sidecars it selects in
        its own namespace, and to them before any other (Istio's precedence)."""
        candidates = self._rules_exact.get(host, []) + [
            (h, r) for h, r in self._rules_wild if host_matches(h, host)
        ]
        visible = [
            (h, r)
            for h, r in candidates
            if exported_to(r.spec.export_to, r.namespace, client_namespace)
        ]
        selecting = [(h, r) for h, r in visible if r.spec.workload_selector is not None]
        labels = dict(client_labels)
        chosen = [
            r
            for _, r in selecting
            if r.namespace == client_namespace
            and r.spec.workload_selector is not None
            and labels_match(r.spec.workload_selector.match_labels, labels)
        ]
        if chosen:
            return merge_destination_rules(sorted(chosen, key=lambda r: r.name))
        key = (host, client_namespace)
        if key not in self._rules:
            service = self.services.get(host)
            host_namespace = service.namespace if service else client_namespace
            self._rules[key] = find_destination_rule(
                [(h, r) for h, r in visible if r.spec.workload_selector is None],
                host,
                client_namespace,
                host_namespace,
                self.mesh.settings.root_namespace,
            )
        return self._rules[key]

    def subsets(self, host: str, client_namespace: str) -> tuple[Subset, ...]:
        """The subsets a route of ``client_namespace`` may name: its rule's, and those of the
        rules with a workload selector there (they apply to some of its sidecars)."""
        rule = self.destination_rule(host, client_namespace)
        found = [s for s in rule.subsets if s.name] if rule else []
        names = {s.name for s in found}
        for _, selected in self._rules_exact.get(host, []):
            if selected.spec.workload_selector is None or selected.namespace != client_namespace:
                continue
            for subset in selected.spec.subsets:
                if subset.name and subset.name not in names:
                    found.append(subset)
                    names.add(subset.name)
        return tuple(found)

    def virtual_services(
        self, host: str, gateway: str, client_namespace: str
    ) -> list[Config[VirtualService]]:
        """VirtualServices for ``host`` bound to ``gateway`` (``mesh`` for sidecars).

        A VirtualService without ``gateways`` binds to ``mesh`` only; a gateway name without
        namespace means the VirtualService's namespace (Istio's rules).
        """
        key = (host, gateway, client_namespace)
        if key not in self._bound:
            entries = list(self._vs_exact.get(host, []))
            entries += [(o, vs) for o, p, vs in self._vs_wild if host_matches(p, host)]
            if "*" in host:
                entries += [
                    (o, vs)
                    for p, exact in self._vs_exact.items()
                    for o, vs in exact
                    if host_matches(host, p)
                ]
            chosen: list[Config[VirtualService]] = []
            for _, vs in sorted(entries, key=lambda e: e[0]):
                if (
                    gateway in bound_gateways(vs)
                    and exported_to(vs.spec.export_to, vs.namespace, client_namespace)
                    and vs not in chosen
                ):
                    chosen.append(vs)
            self._bound[key] = chosen
        return self._bound[key]


def exported_to(export_to: Sequence[str], config_namespace: str, client_namespace: str) -> bool:
    """Istio's ``exportTo``: empty or ``*`` is everywhere, ``.`` the config's own namespace."""
    if not export_to or "*" in export_to:
        return True
    if "." in export_to and client_namespace == config_namespace:
        return True
    return client_namespace in export_to


def virtual_service_hosts(mesh: MeshSnapshot) -> list[tuple[str, Config[VirtualService]]]:
    suffix = mesh.settings.domain_suffix
    found = []
    for vs in sorted(mesh.virtual_services, key=lambda c: (c.namespace, c.name)):
        for host in vs.spec.hosts:
            found.append((resolve_host(host, vs.namespace, suffix), vs))
    return found


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
        export = changed.spec.export_to
        return [
            p
            for p in mesh.proxies
            if p.kind in kinds and exported_to(export, changed.namespace, p.namespace)
        ]
    if changed.kind == "AuthorizationPolicy":
        return [p for p in mesh.proxies if selects(mesh, changed, p)]
    return list(mesh.proxies)


def selects(mesh: MeshSnapshot, policy: Config[object], proxy: ProxyNode) -> bool:
    selector = getattr(policy.spec, "selector", None)
    match_labels: Mapping[str, str] = getattr(selector, "match_labels", {}) if selector else {}
    if policy.namespace == mesh.settings.root_namespace and not match_labels:
        return True
    return policy.namespace == proxy.namespace and labels_match(match_labels, proxy.label_map)

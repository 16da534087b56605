"""Istio Gateway proxies: one listener per server port, HTTP/HTTPS servers bound to
VirtualServices through ``gateways:``, TCP/TLS servers through ``tcp``/``tls`` routes.

Called by ``xds.generate`` for proxies of kind ``gateway``. Route configs are named like Istio's
(``http.8080``, ``https.443.<server>.<gateway>.<namespace>``). Each server port maps to a local
port the runtime chose (``ProxyNode.ports.gateway``); a port without a mapping is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from canarymesh.api.istio_networking import Gateway, Server, VirtualService
from canarymesh.mesh.index import MeshIndex, bound_gateways, exported_to
from canarymesh.mesh.merge import host_matches
from canarymesh.mesh.model import Config, ProxyNode, labels_match
from canarymesh.xds import actions, names, rbac, tcp, telemetry, tls
from canarymesh.xds.endpoints import gateway_address
from canarymesh.xds.listeners import build_hcm, client_http_filters, rds
from canarymesh.xds.routes import RouteContext, build_routes_for_virtual_service, source_peer
from canarymesh.xds.types import EnvoyJson, JsonValue

HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC"}


@dataclass(frozen=True, slots=True)
class BoundServer:
    gateway: Config[Gateway]
    server: Server
    index: int

    @property
    def gateway_key(self) -> str:
        return f"{self.gateway.namespace}/{self.gateway.name}"

    @property
    def port(self) -> int:
        assert self.server.port is not None and self.server.port.number is not None
        return self.server.port.number

    @property
    def protocol(self) -> str:
        assert self.server.port is not None
        return (self.server.port.protocol or "HTTP").upper()

    @property
    def name(self) -> str:
        if self.server.port is not None and self.server.port.name:
            return self.server.port.name
        return f"{self.protocol.lower()}.{self.port}.{self.index}"

    @property
    def terminates_tls(self) -> bool:
        mode = self.server.tls.mode if self.server.tls else None
        return self.protocol == "HTTPS" and mode not in ("PASSTHROUGH", "AUTO_PASSTHROUGH")


def gateway_servers(
    mesh_gateways: Sequence[Config[Gateway]], proxy: ProxyNode
) -> list[BoundServer]:
    """Servers of every Gateway whose selector picks this proxy (any namespace, as Istio)."""
    found: list[BoundServer] = []
    for gateway in sorted(mesh_gateways, key=lambda g: (g.namespace, g.name)):
        if not gateway.spec.selector or not labels_match(gateway.spec.selector, proxy.label_map):
            continue
        for index, server in enumerate(gateway.spec.servers):
            if server.port is not None and server.port.number is not None:
                found.append(BoundServer(gateway, server, index))
    return found


def server_host_matches(server_host: str, host: str) -> bool:
    """A server host may be ``ns/host``; ``*`` and ``*.example.com`` are wildcards."""
    pattern = server_host.split("/", 1)[-1]
    return host_matches(pattern, host) or host_matches(host, pattern)


def vhost_domains(host: str) -> list[str]:
    return ["*"] if host == "*" else [host, f"{host}:*"]


def build_gateway_route_config(
    index: MeshIndex, proxy: ProxyNode, servers: Sequence[BoundServer], name: str
) -> EnvoyJson:
    """Virtual hosts for every VirtualService host bound to these servers' gateways."""
    port = servers[0].port
    routes_by_host: dict[str, list[JsonValue]] = {}
    # Several servers (or gateways) may bind one VirtualService: its routes go in once per host.
    seen: set[tuple[str, str]] = set()
    for server in servers:
        ctx = RouteContext(index, proxy, server.gateway_key, port)
        for vs in bound_virtual_services(index, server.gateway_key, proxy.namespace):
            for host in vs.spec.hosts:
                if not any(server_host_matches(h, host) for h in server.server.hosts):
                    continue
                routes = routes_by_host.setdefault(host, [])
                if (host, vs.key) not in seen:
                    seen.add((host, vs.key))
                    routes.extend(build_routes_for_virtual_service(ctx, vs))
    vhosts: list[JsonValue] = []
    used: set[str] = set()
    for host in sorted(routes_by_host):
        domains: list[JsonValue] = [d for d in vhost_domains(host) if d not in used]
        used.update(str(d) for d in domains)
        if domains:
            vhosts.append(
                {
                    "name": names.vhost(host, port),
                    "domains": domains,
                    "routes": [with_service_header(r) for r in routes_by_host[host]],
                    # Istio's proxyHeaders default on gateways too: x-envoy-attempt-count.
                    "include_request_attempt_count": True,
                    # Metadata exchange: the callee's sidecar reports the gateway as the source.
                    "request_headers_to_add": [
                        actions.header_value(names.SOURCE_PEER_HEADER, source_peer(index, proxy))
                    ],
                }
            )
    if any(s.server.tls and s.server.tls.https_redirect for s in servers):
        for vhost in vhosts:
            if isinstance(vhost, dict):
                vhost["require_tls"] = "ALL"
    return {"name": name, "virtual_hosts": vhosts, "validate_clusters": False}


def bound_virtual_services(
    index: MeshIndex, gateway_key: str, client_namespace: str
) -> list[Config[VirtualService]]:
    """VirtualServices bound to a gateway and exported to the gateway proxy's namespace."""
    return [
        vs
        for vs in sorted(index.mesh.virtual_services, key=lambda c: (c.namespace, c.name))
        if gateway_key in bound_gateways(vs)
        and exported_to(vs.spec.export_to, vs.namespace, client_namespace)
    ]


def build_gateway_resources(
    index: MeshIndex, proxy: ProxyNode
) -> tuple[list[EnvoyJson], list[EnvoyJson]]:
    """(listeners, route configs) of an Istio gateway proxy."""
    servers = gateway_servers(index.mesh.gateways, proxy)
    listeners: list[EnvoyJson] = []
    route_configs: list[EnvoyJson] = []
    for port in sorted({s.port for s in servers}):
        local = proxy.ports.gateway_port(port)
        on_port = [s for s in servers if s.port == port]
        if local is None:
            continue
        chains, configs = build_port_chains(index, proxy, on_port)
        route_configs += configs
        if not chains:
            continue
        listener: EnvoyJson = {
            "name": names.gateway_listener(port),
            "address": gateway_address(index.mesh.settings, proxy, local),
            "filter_chains": chains,
        }
        if any(s.terminates_tls or s.protocol == "TLS" for s in on_port):
            listener["listener_filters"] = [tls.TLS_INSPECTOR]
        listeners.append(listener)
    return listeners, route_configs


def gateway_hcm(index: MeshIndex, proxy: ProxyNode, route_name: str) -> EnvoyJson:
    settings = index.mesh.settings
    filters = [
        *rbac.build_rbac_filters(index.mesh, proxy, False, dict(proxy.ports.gateway)),
        *client_http_filters(False),
    ]
    return build_hcm(
        route_name,
        rds(route_name),
        filters,
        telemetry.build_access_logs(proxy, "gateway", settings),
        {"use_remote_address": True},
        settings=settings,
    )


def build_port_chains(
    index: MeshIndex, proxy: ProxyNode, servers: Sequence[BoundServer]
) -> tuple[list[JsonValue], list[EnvoyJson]]:
    chains: list[JsonValue] = []
    configs: list[EnvoyJson] = []
    plain_http = [s for s in servers if s.protocol in HTTP_PROTOCOLS]
    if plain_http:
        name = names.gateway_http_route(plain_http[0].port)
        configs.append(build_gateway_route_config(index, proxy, plain_http, name))
        chains.append({"filters": [gateway_hcm(index, proxy, name)]})
    for server in servers:
        if server.terminates_tls:
            chain, config = build_https_chain(index, proxy, server)
            if chain is not None:
                chains.append(chain)
                configs.append(config)
    l4 = [
        s
        for s in servers
        if s.protocol in ("TCP", "TLS", "MONGO") or (s.protocol == "HTTPS" and not s.terminates_tls)
    ]
    for server in l4:
        vss = bound_virtual_services(index, server.gateway_key, proxy.namespace)
        chains += tcp.tls_chains(index, proxy, vss, server.gateway_key, server.port)
        fallback = tcp.build_tcp_filter(index, proxy, vss, server.gateway_key, server.port, None)
        if fallback is not None:
            chains.append({"filters": [fallback]})
    return chains, configs


def build_https_chain(
    index: MeshIndex, proxy: ProxyNode, server: BoundServer
) -> tuple[EnvoyJson | None, EnvoyJson]:
    settings = server.server.tls
    credential = settings.credential_name if settings else None
    name = names.gateway_https_route(
        server.port, server.name, server.gateway.name, server.gateway.namespace
    )
    config = build_gateway_route_config(index, proxy, [server], name)
    if not credential:
        return None, config
    # Istio reads credentials from the gateway workload's namespace.
    secret = names.gateway_credential(proxy.namespace, credential)
    chain: EnvoyJson = {
        "filters": [gateway_hcm(index, proxy, name)],
        "transport_socket": tls.downstream_simple(secret),
    }
    hosts: list[JsonValue] = [
        h.split("/", 1)[-1] for h in server.server.hosts if h.split("/", 1)[-1] != "*"
    ]
    if hosts:
        chain["filter_chain_match"] = {"server_names": sorted(hosts, key=str)}
    return chain, config


def with_service_header(route: JsonValue) -> JsonValue:
    """``route`` telling the callee which service it was called as, when it goes to one service.

    A sidecar's outbound virtual host is per service and sets the header there; a gateway's
    virtual host is per VirtualService host, so the service is known per route, from its clusters.
    """
    if not isinstance(route, dict) or not isinstance(route.get("route"), dict):
        return route
    action = route["route"]
    assert isinstance(action, dict)
    cluster_names: list[JsonValue] = [action.get("cluster")]
    weighted = action.get("weighted_clusters")
    if isinstance(weighted, dict) and isinstance(weighted.get("clusters"), list):
        entries = weighted["clusters"]
        assert isinstance(entries, list)
        cluster_names = [c.get("name") for c in entries if isinstance(c, dict)]
    hosts = {
        parsed.host
        for name in cluster_names
        if isinstance(name, str) and (parsed := names.parse_cluster(name)) and parsed.host
    }
    if len(hosts) != 1:
        return route
    header: JsonValue = actions.header_value(names.DESTINATION_SERVICE_HEADER, hosts.pop())
    existing = route.get("request_headers_to_add")
    added: list[JsonValue] = [*existing, header] if isinstance(existing, list) else [header]
    return {**route, "request_headers_to_add": added}

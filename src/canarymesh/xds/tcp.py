"""L4 routing: VirtualService ``tcp`` and ``tls`` routes as ``tcp_proxy`` filter chains.

Called by ``xds.listeners`` (a sidecar's outbound TCP listener per TCP service port, and TCP
inbound chains) and ``xds.gateway`` (TCP/TLS gateway servers). The first TCP rule whose match
holds wins; TLS rules become filter chains selected by SNI.
"""

from __future__ import annotations

from collections.abc import Sequence

from canarymesh.api.istio_networking import (
    L4MatchAttributes,
    RouteDestination,
    TLSRoute,
    VirtualService,
)
from canarymesh.mesh.index import MeshIndex, qualify_gateway
from canarymesh.mesh.model import Config, MeshService, ProxyNode, labels_match
from canarymesh.xds import actions, names, telemetry, tls
from canarymesh.xds.endpoints import socket_address
from canarymesh.xds.types import EnvoyJson, JsonValue, typed

TCP_PROXY = "envoy.filters.network.tcp_proxy"
TCP_PROXY_TYPE = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"


def tcp_proxy(
    stat_prefix: str,
    cluster: str | None,
    weighted: Sequence[JsonValue] = (),
    access_log: Sequence[JsonValue] = (),
) -> EnvoyJson:
    body: EnvoyJson = {"stat_prefix": stat_prefix}
    if weighted:
        body["weighted_clusters"] = {"clusters": list(weighted)}
    else:
        body["cluster"] = cluster
    if access_log:
        body["access_log"] = list(access_log)
    return {"name": TCP_PROXY, "typed_config": typed(TCP_PROXY_TYPE, body)}


def l4_direction(gateway: str) -> str:
    return "outbound" if gateway == "mesh" else "gateway"


def l4_match_applies(
    match: L4MatchAttributes | None, proxy: ProxyNode, gateway: str, port: int, vs_namespace: str
) -> bool:
    if match is None:
        return True
    if match.port is not None and match.port != port:
        return False
    if match.source_labels and not labels_match(match.source_labels, proxy.label_map):
        return False
    if match.source_namespace and match.source_namespace != proxy.namespace:
        return False
    if match.gateways:
        return gateway in {qualify_gateway(g, vs_namespace) for g in match.gateways}
    return True


def l4_destinations(
    index: MeshIndex, vs: Config[VirtualService], route: Sequence[RouteDestination], port: int
) -> tuple[str | None, list[JsonValue]]:
    """(cluster, []) for one destination, (None, weighted entries) for a split."""
    if len(route) == 1:
        return actions.destination_cluster(index, vs, route[0].destination, port), []
    weights = [d.weight or 0 for d in route]
    if sum(weights) == 0:
        weights = [1] * len(route)
    weighted: list[JsonValue] = [
        {"name": actions.destination_cluster(index, vs, d.destination, port), "weight": w}
        for d, w in zip(route, weights, strict=True)
        if w > 0
    ]
    return None, weighted


def build_tcp_filter(
    index: MeshIndex,
    proxy: ProxyNode,
    vss: Sequence[Config[VirtualService]],
    gateway: str,
    port: int,
    default: str | None,
) -> EnvoyJson | None:
    """The ``tcp_proxy`` of the first TCP rule that applies, else of ``default``."""
    logs = telemetry.build_tcp_access_logs(proxy, l4_direction(gateway), index.mesh.settings)
    for vs in vss:
        for rule in vs.spec.tcp:
            if rule.match and not any(
                l4_match_applies(m, proxy, gateway, port, vs.namespace) for m in rule.match
            ):
                continue
            cluster, weighted = l4_destinations(index, vs, rule.route, port)
            return tcp_proxy(f"{vs.namespace}_{vs.name}_{port}", cluster, weighted, logs)
    return tcp_proxy(f"tcp_{port}", default, (), logs) if default else None


def tls_chains(
    index: MeshIndex,
    proxy: ProxyNode,
    vss: Sequence[Config[VirtualService]],
    gateway: str,
    port: int,
) -> list[JsonValue]:
    """One filter chain per TLS rule, matched on its SNI hosts."""
    logs = telemetry.build_tcp_access_logs(proxy, l4_direction(gateway), index.mesh.settings)
    chains: list[JsonValue] = []
    seen: set[tuple[str, ...]] = set()
    for vs in vss:
        for rule in vs.spec.tls:
            snis = tls_rule_hosts(rule, proxy, gateway, port, vs.namespace)
            if not snis or snis in seen:
                continue
            seen.add(snis)
            cluster, weighted = l4_destinations(index, vs, rule.route, port)
            chains.append(
                {
                    "filter_chain_match": {"server_names": list(snis)},
                    "filters": [tcp_proxy(f"tls_{port}", cluster, weighted, logs)],
                }
            )
    return chains


def tls_rule_hosts(
    rule: TLSRoute, proxy: ProxyNode, gateway: str, port: int, vs_namespace: str
) -> tuple[str, ...]:
    hosts: set[str] = set()
    for match in rule.match:
        if match.port is not None and match.port != port:
            continue
        if match.gateways and gateway not in {
            qualify_gateway(g, vs_namespace) for g in match.gateways
        }:
            continue
        if match.source_labels and not labels_match(match.source_labels, proxy.label_map):
            continue
        hosts.update(match.sni_hosts)
    return tuple(sorted(hosts))


def build_outbound_tcp_listener(
    index: MeshIndex, proxy: ProxyNode, service: MeshService, port: int, local_port: int
) -> EnvoyJson:
    vss = index.virtual_services(service.hostname, "mesh", proxy.namespace)
    default = names.outbound_cluster(port, "", service.hostname)
    chains: list[JsonValue] = tls_chains(index, proxy, vss, "mesh", port)
    fallback = build_tcp_filter(index, proxy, vss, "mesh", port, default)
    chains.append({"filters": [fallback]})
    listener: EnvoyJson = {
        "name": names.outbound_tcp_listener(service.hostname, port),
        "address": socket_address("127.0.0.1", local_port),
        "filter_chains": chains,
        "traffic_direction": "OUTBOUND",
    }
    if len(chains) > 1:
        listener["listener_filters"] = [tls.TLS_INSPECTOR]
    return listener

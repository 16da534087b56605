"""A sidecar in its own pod network: Istio's listener layout behind istio-iptables' capture.

Called by ``xds.generate`` for sidecars with a ``PodNetwork`` (``xds.listeners`` keeps the
shared-network layout and the pieces both share: the HCM, inbound filters). The pod's
iptables rules (``mesh.capture``) send the app's outbound TCP to ``virtualOutbound`` (15001)
and every inbound connection to ``virtualInbound`` (15006); both keep the original destination:

* ``virtualOutbound`` hands a connection to the listener of its original destination
  (``use_original_dst``): ``0.0.0.0_<port>`` for HTTP service ports (an HCM on route config
  ``"<port>"``, one virtual host per service with its names and ClusterIP), ``<ClusterIP>_<port>``
  for TCP service ports; anything else goes to ``PassthroughCluster`` (ALLOW_ANY) or nowhere.
* ``virtualInbound`` picks a filter chain by the original destination port: one per container
  port (mTLS and RBAC as the workload's policies say), a passthrough for other ports, and a
  blackhole for 15006 itself, so a connection can never loop.
* ``dns`` (UDP 15053) answers the mesh's names with their ClusterIPs: Istio's DNS proxying.
"""

from __future__ import annotations

from canarymesh.mesh.capture import DNS_PORT, INBOUND_PORT, OUTBOUND_PORT
from canarymesh.mesh.index import MeshIndex
from canarymesh.mesh.model import MeshService, ProxyNode
from canarymesh.xds import names, tcp, telemetry, tls
from canarymesh.xds.endpoints import socket_address
from canarymesh.xds.listeners import ANY_ADDRESS, build_port_http_listener, inbound_filters
from canarymesh.xds.types import EnvoyJson, JsonValue, typed

ORIGINAL_DST: EnvoyJson = {
    "name": "envoy.filters.listener.original_dst",
    "typed_config": typed("envoy.extensions.filters.listener.original_dst.v3.OriginalDst", {}),
}
DNS_FILTER = "envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig"


def build_pod_sidecar_listeners(index: MeshIndex, proxy: ProxyNode) -> list[EnvoyJson]:
    listeners = [
        build_virtual_outbound(index, proxy),
        build_virtual_inbound(index, proxy),
        build_dns_listener(index),
    ]
    for port in http_ports(index):
        listeners.append(build_port_http_listener(index, proxy, port))
    http = set(http_ports(index))
    for service, port in tcp_service_ports(index):
        address = service.cluster_ip
        if address is None:
            if port in http:
                continue  # a headless TCP port behind an HTTP port: Istio would sniff it
            address = ANY_ADDRESS
        listeners.append(build_pod_tcp_listener(index, proxy, service, port, address))
    return listeners


def http_ports(index: MeshIndex) -> list[int]:
    """Every service port that speaks HTTP: each gets ``0.0.0.0_<port>`` and route ``<port>``."""
    return sorted({p.port for s in index.sorted_services() for p in s.ports if p.is_http})


def tcp_service_ports(index: MeshIndex) -> list[tuple[MeshService, int]]:
    return [
        (s, p.port)
        for s in index.sorted_services()
        for p in s.ports
        if p.is_tcp and not p.is_http and (s.resolution == "EDS" or s.cluster_ip is not None)
    ]


def passthrough_chain(index: MeshIndex, proxy: ProxyNode, direction: str) -> EnvoyJson:
    settings = index.mesh.settings
    cluster = names.PASSTHROUGH_CLUSTER if settings.allow_any else names.BLACKHOLE_CLUSTER
    if direction == "inbound":
        cluster = names.INBOUND_PASSTHROUGH_CLUSTER
    logs = telemetry.build_tcp_access_logs(proxy, direction, settings)
    return {"filters": [tcp.tcp_proxy(str(cluster), cluster, (), logs)]}


def blackhole_chain(port: int, name: str) -> EnvoyJson:
    return {
        "name": name,
        "filter_chain_match": {"destination_port": port},
        "filters": [tcp.tcp_proxy(names.BLACKHOLE_CLUSTER, names.BLACKHOLE_CLUSTER)],
    }


def build_virtual_outbound(index: MeshIndex, proxy: ProxyNode) -> EnvoyJson:
    default = passthrough_chain(index, proxy, "outbound")
    default["name"] = "virtualOutbound-catchall-tcp"
    return {
        "name": names.VIRTUAL_OUTBOUND,
        "address": socket_address(ANY_ADDRESS, OUTBOUND_PORT),
        "use_original_dst": True,
        "traffic_direction": "OUTBOUND",
        "filter_chains": [blackhole_chain(OUTBOUND_PORT, "virtualOutbound-blackhole")],
        "default_filter_chain": default,
    }


def build_pod_tcp_listener(
    index: MeshIndex, proxy: ProxyNode, service: MeshService, port: int, address: str
) -> EnvoyJson:
    """``<ClusterIP>_<port>``: the TCP routes of one service port, reached from 15001."""
    vss = index.virtual_services(service.hostname, "mesh", proxy.namespace)
    default = names.outbound_cluster(port, "", service.hostname)
    chains: list[JsonValue] = tcp.tls_chains(index, proxy, vss, "mesh", port)
    fallback = tcp.build_tcp_filter(index, proxy, vss, "mesh", port, default)
    chains.append({"filters": [fallback]})
    listener: EnvoyJson = {
        "name": names.pod_listener(address, port),
        "address": socket_address(address, port),
        "bind_to_port": False,
        "filter_chains": chains,
        "traffic_direction": "OUTBOUND",
    }
    if len(chains) > 1:
        listener["listener_filters"] = [tls.TLS_INSPECTOR]
    return listener


def inbound_chains(
    index: MeshIndex, proxy: ProxyNode, mode: str, filters: list[JsonValue], match: EnvoyJson
) -> list[JsonValue]:
    """The chains of one port (or of the passthrough) under a PeerAuthentication mode."""
    secure: EnvoyJson = {"filters": filters, "transport_socket": tls.downstream_mtls()}
    plain: EnvoyJson = {"filters": filters}
    if mode in ("STRICT", "DISABLE"):
        chain = secure if mode == "STRICT" else plain
        return [{**chain, "filter_chain_match": dict(match)} if match else chain]
    return [
        {**secure, "filter_chain_match": {**match, "transport_protocol": "tls"}},
        {**plain, "filter_chain_match": {**match, "transport_protocol": "raw_buffer"}},
    ]


def build_virtual_inbound(index: MeshIndex, proxy: ProxyNode) -> EnvoyJson:
    mtls = index.mtls_of(proxy)
    chains: list[JsonValue] = [blackhole_chain(INBOUND_PORT, "virtualInbound-blackhole")]
    for container_port, _ in proxy.ports.inbound:
        filters = inbound_filters(index, proxy, container_port)
        mode = mtls.for_port(container_port)
        chains += inbound_chains(index, proxy, mode, filters, {"destination_port": container_port})
    passthrough = passthrough_chain(index, proxy, "inbound")["filters"]
    assert isinstance(passthrough, list)
    chains += inbound_chains(index, proxy, mtls.mode, passthrough, {})
    return {
        "name": names.VIRTUAL_INBOUND,
        "address": socket_address(ANY_ADDRESS, INBOUND_PORT),
        "traffic_direction": "INBOUND",
        "listener_filters": [ORIGINAL_DST, tls.TLS_INSPECTOR],
        "filter_chains": chains,
    }


def dns_names(index: MeshIndex) -> list[tuple[str, str]]:
    """(name, address) pairs the pods' DNS answers: each service FQDN with its ClusterIP."""
    return sorted(
        (s.hostname, s.cluster_ip) for s in index.sorted_services() if s.cluster_ip is not None
    )


def build_dns_listener(index: MeshIndex) -> EnvoyJson:
    domains: list[JsonValue] = [
        {"name": name, "endpoint": {"address_list": {"address": [address]}}}
        for name, address in dns_names(index)
    ]
    config = typed(
        DNS_FILTER,
        {"stat_prefix": "dns", "server_config": {"inline_dns_table": {"virtual_domains": domains}}},
    )
    return {
        "name": names.DNS_LISTENER,
        "address": {
            "socket_address": {"protocol": "UDP", "address": "127.0.0.1", "port_value": DNS_PORT}
        },
        "listener_filters": [{"name": "envoy.filters.udp.dns_filter", "typed_config": config}],
    }

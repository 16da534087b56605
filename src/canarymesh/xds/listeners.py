"""Listeners (LDS) of a sidecar: the outbound HTTP proxy listener, one outbound TCP listener per
TCP service port, and one inbound listener per container port (mTLS per PeerAuthentication,
RBAC per AuthorizationPolicy). Also the HTTP connection manager every listener uses.

Called by ``xds.generate`` (sidecars) and ``xds.gateway`` (``build_hcm``, ``http_filters``).
Inbound mTLS follows envoy-notes: STRICT has one TLS chain, PERMISSIVE a ``tls_inspector`` and
two chains (``transport_protocol`` tls / raw_buffer), DISABLE one plaintext chain.
"""

from __future__ import annotations

from collections.abc import Sequence

from canarymesh.mesh.index import MeshIndex
from canarymesh.mesh.model import MeshService, MeshSettings, ProxyNode, labels_match
from canarymesh.xds import actions, names, rbac, tcp, telemetry, tls, tracing
from canarymesh.xds.clusters import DNS_CACHE
from canarymesh.xds.endpoints import socket_address
from canarymesh.xds.types import EnvoyJson, JsonValue, typed

HCM = "envoy.filters.network.http_connection_manager"
HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
LOOPBACK = "127.0.0.1"
ANY_ADDRESS = "0.0.0.0"


def named_filter(name: str, type_name: str, body: EnvoyJson | None = None) -> EnvoyJson:
    return {"name": name, "typed_config": typed(type_name, body or {})}


def router_filter() -> EnvoyJson:
    return named_filter(
        "envoy.filters.http.router", "envoy.extensions.filters.http.router.v3.Router"
    )


def client_http_filters(passthrough: bool) -> list[JsonValue]:
    """Outbound and gateway filters: fault and CORS (configured per route), then routing."""
    filters: list[JsonValue] = [
        named_filter(actions.FAULT_FILTER, "envoy.extensions.filters.http.fault.v3.HTTPFault"),
        named_filter(actions.CORS_FILTER, "envoy.extensions.filters.http.cors.v3.Cors"),
    ]
    if passthrough:
        filters.append(
            named_filter(
                "envoy.filters.http.dynamic_forward_proxy",
                "envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
                {"dns_cache_config": dict(DNS_CACHE)},
            )
        )
    filters.append(router_filter())
    return filters


# istiod's buildHTTPConnectionManager (listener_builder.go): no stream idle timeout (Envoy's
# is 5 min), BASE path normalization, websocket upgrades, the peer address as seen (gateways
# override use_remote_address).
HCM_DEFAULTS: EnvoyJson = {
    "normalize_path": True,
    "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
    "stream_idle_timeout": "0s",
    "upgrade_configs": [{"upgrade_type": "websocket"}],
    "use_remote_address": False,
}


def build_hcm(
    stat_prefix: str,
    route: EnvoyJson,
    http_filters: Sequence[JsonValue],
    access_log: Sequence[JsonValue],
    extra: EnvoyJson | None = None,
    settings: MeshSettings | None = None,
) -> EnvoyJson:
    """``route`` is either ``{"rds": ...}`` or ``{"route_config": ...}``; ``settings`` with a
    tracing port add the Zipkin tracer (:mod:`canarymesh.xds.tracing`)."""
    body: EnvoyJson = {
        "stat_prefix": stat_prefix,
        "codec_type": "AUTO",
        **route,
        "http_filters": list(http_filters),
        **HCM_DEFAULTS,
    }
    if access_log:
        body["access_log"] = list(access_log)
    if settings is not None and settings.has_tracing:
        body["tracing"] = tracing.hcm_tracing(settings)
    body.update(extra or {})
    return {"name": HCM, "typed_config": typed(HCM_TYPE, body)}


def rds(name: str) -> EnvoyJson:
    return {
        "rds": {
            "route_config_name": name,
            "config_source": {"ads": {}, "resource_api_version": "V3"},
        }
    }


def build_outbound_http_listener(index: MeshIndex, proxy: ProxyNode) -> EnvoyJson:
    settings = index.mesh.settings
    hcm = build_hcm(
        "outbound_http",
        rds(names.OUTBOUND_HTTP_ROUTE),
        client_http_filters(settings.allow_any),
        telemetry.build_access_logs(proxy, "outbound", settings),
        settings=settings,
    )
    return {
        "name": names.OUTBOUND_HTTP_LISTENER,
        "address": socket_address(LOOPBACK, proxy.ports.outbound_http),
        "filter_chains": [{"filters": [hcm]}],
        "traffic_direction": "OUTBOUND",
    }


def build_port_http_listener(index: MeshIndex, proxy: ProxyNode, port: int) -> EnvoyJson:
    """Pod networks: ``0.0.0.0_<port>``, where ``virtualOutbound`` hands HTTP to that port.

    Not bound itself (iptables sends everything to 15001); its routes are route config
    ``<port>``. Hosts outside the mesh go to the original destination, so no DNS proxy filter.
    """
    settings = index.mesh.settings
    hcm = build_hcm(
        f"outbound_{ANY_ADDRESS}_{port}",
        rds(names.port_route(port)),
        client_http_filters(False),
        telemetry.build_access_logs(proxy, "outbound", settings),
        settings=settings,
    )
    return {
        "name": names.pod_listener(ANY_ADDRESS, port),
        "address": socket_address(ANY_ADDRESS, port),
        "bind_to_port": False,
        "filter_chains": [{"filters": [hcm]}],
        "traffic_direction": "OUTBOUND",
    }


def services_on_port(index: MeshIndex, proxy: ProxyNode, container_port: int) -> list[MeshService]:
    found = []
    for service in index.sorted_services():
        if service.namespace != proxy.namespace or not service.selector:
            continue
        if not labels_match(service.selector_map, proxy.label_map):
            continue
        if any(p.target_port == container_port for p in service.ports):
            found.append(service)
    return found


def inbound_is_http(index: MeshIndex, proxy: ProxyNode, container_port: int) -> bool:
    """HTTP unless every service port targeting this container port is a TCP protocol."""
    ports = [
        p
        for s in services_on_port(index, proxy, container_port)
        for p in s.ports
        if p.target_port == container_port
    ]
    return not ports or any(p.is_http for p in ports)


def inbound_is_http2(index: MeshIndex, proxy: ProxyNode, container_port: int) -> bool:
    """The app speaks HTTP/2 when a service port targeting it is grpc/http2 (Istio's naming)."""
    return any(
        p.protocol in ("grpc", "http2", "grpc-web")
        for s in services_on_port(index, proxy, container_port)
        for p in s.ports
        if p.target_port == container_port
    )


def build_inbound_route_config(container_port: int, proxy: ProxyNode, peer: str) -> EnvoyJson:
    cluster = names.inbound_cluster(container_port)
    return {
        "name": cluster,
        "validate_clusters": False,
        "virtual_hosts": [
            {
                "name": names.inbound_vhost(container_port),
                "domains": ["*"],
                "routes": [
                    {
                        "name": "default",
                        "match": {"prefix": "/"},
                        "route": actions.inbound_route_action(cluster),
                    }
                ],
            }
        ],
        "response_headers_to_add": [actions.header_value(names.DESTINATION_PEER_HEADER, peer)],
    }


def inbound_filters(index: MeshIndex, proxy: ProxyNode, container_port: int) -> list[JsonValue]:
    mesh = index.mesh
    if not inbound_is_http(index, proxy, container_port):
        tcp_rbac = rbac.build_rbac_filters(mesh, proxy, True, dict(proxy.ports.inbound))
        return [
            *tcp_rbac,
            tcp.tcp_proxy(
                f"inbound_{container_port}",
                names.inbound_cluster(container_port),
                (),
                telemetry.build_tcp_access_logs(proxy, "inbound", mesh.settings),
            ),
        ]
    peer = telemetry.peer_info(proxy, mesh.settings).encode()
    http_filters = [
        *rbac.build_rbac_filters(mesh, proxy, False, dict(proxy.ports.inbound)),
        router_filter(),
    ]
    hcm = build_hcm(
        f"inbound_{container_port}",
        {"route_config": build_inbound_route_config(container_port, proxy, peer)},
        http_filters,
        telemetry.build_access_logs(proxy, "inbound", mesh.settings),
        {
            # The app sees the caller's SPIFFE id, as with Istio (envoy-notes, mTLS section).
            "forward_client_cert_details": "SANITIZE_SET",
            "set_current_client_cert_details": {"uri": True},
        },
        settings=mesh.settings,
    )
    return [hcm]


def build_inbound_listener(
    index: MeshIndex, proxy: ProxyNode, container_port: int, local_port: int
) -> EnvoyJson:
    mode = index.mtls_of(proxy).for_port(container_port)
    filters = inbound_filters(index, proxy, container_port)
    secure: EnvoyJson = {"filters": filters, "transport_socket": tls.downstream_mtls()}
    listener: EnvoyJson = {
        "name": names.inbound_listener(container_port),
        "address": socket_address(LOOPBACK, local_port),
        "traffic_direction": "INBOUND",
    }
    if mode == "STRICT":
        listener["filter_chains"] = [secure]
    elif mode == "DISABLE":
        listener["filter_chains"] = [{"filters": filters}]
    else:
        secure["filter_chain_match"] = {"transport_protocol": "tls"}
        plain: EnvoyJson = {
            "filter_chain_match": {"transport_protocol": "raw_buffer"},
            "filters": filters,
        }
        listener["listener_filters"] = [tls.TLS_INSPECTOR]
        listener["filter_chains"] = [secure, plain]
    return listener


def build_sidecar_listeners(index: MeshIndex, proxy: ProxyNode) -> list[EnvoyJson]:
    listeners = [build_outbound_http_listener(index, proxy)]
    for container_port, local_port in proxy.ports.inbound:
        listeners.append(build_inbound_listener(index, proxy, container_port, local_port))
    for (host, port), local_port in proxy.ports.outbound_tcp:
        service = index.service(host)
        if service is not None and service.port(port) is not None:
            listeners.append(
                tcp.build_outbound_tcp_listener(index, proxy, service, port, local_port)
            )
    return listeners

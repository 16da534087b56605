"""``generate(mesh, proxy) -> XdsSnapshot``: everything one proxy receives, deterministically.

Called by the runtime's xDS server on every config change (for the proxies
``mesh.index.affected_proxies`` names), by ``canarymesh render`` and by the bench. Pure: no
clock, no environment, no randomness; lists are sorted by name in ``build_snapshot``, and the
version is a hash of the content, so equal inputs give byte-identical snapshots.
"""

from __future__ import annotations

from canarymesh.mesh.index import MeshIndex
from canarymesh.mesh.model import MeshSnapshot, ProxyNode
from canarymesh.xds import clusters, gateway, gateway_api, listeners, names, routes, telemetry, tls
from canarymesh.xds.snapshot import XdsSnapshot, build_snapshot, collect_references
from canarymesh.xds.types import EnvoyJson


def generate(mesh: MeshSnapshot, proxy: ProxyNode, index: MeshIndex | None = None) -> XdsSnapshot:
    """The snapshot of ``proxy``; pass a shared ``index`` when generating many proxies."""
    index = index or MeshIndex.of(mesh)
    outbound = clusters.build_outbound_clusters(index, proxy)
    cluster_list = [*outbound.clusters, clusters.build_blackhole_cluster()]
    if mesh.settings.telemetry_port is not None:
        cluster_list.append(clusters.build_telemetry_cluster(mesh.settings.telemetry_port))
    if proxy.kind == "sidecar":
        listener_list, route_list = sidecar_resources(index, proxy, cluster_list)
    else:
        listener_list, route_list = gateway.build_gateway_resources(index, proxy)
        api_listeners, api_routes = gateway_api.build_gateway_api_resources(index, proxy)
        listener_list += api_listeners
        route_list += api_routes
    secrets = build_secrets(mesh, proxy, [*listener_list, *cluster_list])
    return build_snapshot(
        proxy.id,
        {
            names.CLUSTER: cluster_list,
            names.ENDPOINT: list(outbound.load_assignments),
            names.LISTENER: listener_list,
            names.ROUTE: route_list,
            names.SECRET: secrets,
        },
        external_secrets=proxy.identity is None,
    )


def sidecar_resources(
    index: MeshIndex, proxy: ProxyNode, cluster_list: list[EnvoyJson]
) -> tuple[list[EnvoyJson], list[EnvoyJson]]:
    for container_port, _ in proxy.ports.inbound:
        app_port = proxy.ports.app_port(container_port)
        if app_port is not None:
            cluster_list.append(clusters.build_inbound_cluster(container_port, app_port))
    if index.mesh.settings.allow_any:
        cluster_list.append(clusters.build_passthrough_cluster())
    peer = telemetry.peer_info(proxy, index.mesh.settings).encode()
    route_list = [routes.build_outbound_route_config(index, proxy, peer)]
    return listeners.build_sidecar_listeners(index, proxy), route_list


def build_secrets(
    mesh: MeshSnapshot, proxy: ProxyNode, resources: list[EnvoyJson]
) -> list[EnvoyJson]:
    """The workload's ``default``/``ROOTCA`` (when the CA issued them) and gateway credentials."""
    secrets = tls.build_workload_secrets(proxy.identity) if proxy.identity else []
    wanted = collect_references(list(resources)).secrets
    for secret in mesh.secrets:
        built = tls.build_credential_secret(secret)
        if built["name"] in wanted:
            secrets.append(built)
    return secrets

"""``generate(mesh, proxy) -> XdsSnapshot``: everything one proxy receives, deterministically.

Called by the runtime's xDS server on every config change (for the proxies
``mesh.index.affected_proxies`` names), by ``canarymesh render`` and by the bench. Pure: no
clock, no environment, no randomness; lists are sorted by name in ``build_snapshot``, and the
version is a hash of the content, so equal inputs give byte-identical snapshots.
"""

from __future__ import annotations

from collections.abc import Collection

from canarymesh.mesh.index import MeshIndex
from canarymesh.mesh.model import MeshSnapshot, ProxyNode
from canarymesh.xds import (
    clusters,
    gateway,
    gateway_api,
    listeners,
    names,
    pod_listeners,
    routes,
    tls,
    tracing,
)
from canarymesh.xds.snapshot import XdsSnapshot, build_snapshot, collect_references
from canarymesh.xds.types import EnvoyJson, JsonValue


def generate(mesh: MeshSnapshot, proxy: ProxyNode, index: MeshIndex | None = None) -> XdsSnapshot:
    """The snapshot of ``proxy``; pass a shared ``index`` when generating many proxies."""
    index = index or MeshIndex.of(mesh)
    outbound = clusters.build_outbound_clusters(index, proxy)
    cluster_list = [*outbound.clusters, clusters.build_blackhole_cluster()]
    if mesh.settings.has_telemetry:
        cluster_list.append(clusters.build_telemetry_cluster(mesh.settings))
    if mesh.settings.has_tracing:
        cluster_list.append(tracing.build_tracing_cluster(mesh.settings))
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
    pod_ip = proxy.ip
    for container_port, _ in proxy.ports.inbound:
        app_port = proxy.ports.app_port(container_port)
        if app_port is not None:
            http2 = listeners.inbound_is_http2(index, proxy, container_port)
            pool = clusters.inbound_connection_pool(index, proxy, container_port)
            cluster_list.append(
                clusters.build_inbound_cluster(container_port, app_port, http2, pod_ip, pool)
            )
    if pod_ip is not None:
        # The pod's own network: Istio's capture listeners and one route config per port.
        if index.mesh.settings.allow_any:
            cluster_list.append(clusters.build_original_dst_cluster(names.PASSTHROUGH_CLUSTER))
        cluster_list.append(clusters.inbound_passthrough_cluster())
        route_list = routes.build_port_route_configs(index, proxy)
        return pod_listeners.build_pod_sidecar_listeners(index, proxy), route_list
    if index.mesh.settings.allow_any:
        cluster_list.append(clusters.build_passthrough_cluster())
    route_list = [routes.build_outbound_route_config(index, proxy)]
    return listeners.build_sidecar_listeners(index, proxy), route_list


def build_secrets(
    mesh: MeshSnapshot, proxy: ProxyNode, resources: list[EnvoyJson]
) -> list[EnvoyJson]:
    """The workload's ``default``/``ROOTCA`` (when the CA issued them) and gateway credentials."""
    secrets = tls.build_workload_secrets(proxy.identity) if proxy.identity else []
    if not mesh.secrets or proxy.kind != "gateway":
        return secrets
    wanted = collect_references(list(resources)).secrets
    for secret in mesh.secrets:
        built = tls.build_credential_secret(secret)
        if built["name"] in wanted:
            secrets.append(built)
    return secrets


def update_virtual_services(
    previous: XdsSnapshot,
    mesh: MeshSnapshot,
    proxy: ProxyNode,
    index: MeshIndex,
    hosts: Collection[str],
) -> XdsSnapshot:
    """``previous`` with the virtual hosts of ``hosts`` rebuilt after a VirtualService change.

    Equal to ``generate(mesh, proxy, index)`` (the bench asserts it), but only the changed
    virtual hosts are translated and only the route type is re-hashed. Changes this shortcut
    cannot express (a gateway, TCP/TLS routes, a host without a service) fall back to
    ``generate``.
    """
    services = [index.service(h) for h in sorted(hosts)]
    bound = [vs for h in hosts for vs in index.virtual_services(h, "mesh", proxy.namespace)]
    if (
        proxy.kind != "sidecar"
        or any(s is None for s in services)
        or any(vs.spec.tcp or vs.spec.tls for vs in bound)
    ):
        return generate(mesh, proxy, index)
    # Route config name -> its rebuilt virtual hosts by name (one config, or one per port).
    fresh: dict[str, dict[str, EnvoyJson]] = {}
    for service in services:
        assert service is not None
        for port in service.ports:
            if port.is_http:
                vhost = routes.build_service_vhost(index, proxy, service, port)
                config_name = names.port_route(port.port) if proxy.ip else names.OUTBOUND_HTTP_ROUTE
                fresh.setdefault(config_name, {})[str(vhost["name"])] = vhost
    previous_configs = previous.named(names.ROUTE)
    if any(name not in previous_configs for name in fresh):
        return generate(mesh, proxy, index)
    replaced: dict[str, EnvoyJson] = {}
    for config_name, vhosts_by_name in fresh.items():
        config = previous_configs[config_name]
        vhosts: list[JsonValue] = []
        for old in config["virtual_hosts"] if isinstance(config["virtual_hosts"], list) else []:
            name = str(old["name"]) if isinstance(old, dict) else ""
            if name in vhosts_by_name and isinstance(old, dict):
                # Domains depend on the services only, and were de-duplicated across vhosts.
                vhosts.append({**vhosts_by_name[name], "domains": old["domains"]})
            else:
                vhosts.append(old)
        replaced[config_name] = {**config, "virtual_hosts": vhosts}
    by_type = {url: list(items) for url, items in previous.resources}
    by_type[names.ROUTE] = [
        r for r in by_type.get(names.ROUTE, []) if r.get("name") not in replaced
    ] + list(replaced.values())
    reuse = {url: digest for url, digest in previous.digests if url != names.ROUTE}
    rebuilt = {f"{config}/{name}" for config, vhosts in fresh.items() for name in vhosts}
    known = {k: d for k, d in previous.vhost_digests if k not in rebuilt}
    return build_snapshot(
        proxy.id,
        by_type,
        external_secrets=previous.external_secrets,
        reuse=reuse,
        vhost_digests=known,
    )

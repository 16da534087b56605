"""Envoy bootstrap configs: the ADS bootstrap a live proxy starts with, and a complete STATIC
config (every resource of a snapshot inlined) for ``canarymesh render --bootstrap`` and
``envoy --mode validate``.

Called by the runtime (``build_ads_bootstrap``) and by ``canarymesh render``. Stats tags give
per-subset and per-service labels from Istio-style cluster names (envoy-notes, stats section).
"""

from __future__ import annotations

import copy

from canarymesh.mesh.capture import ADMIN_PORT, DNS_PORT, STATS_PORT
from canarymesh.mesh.model import MeshSettings, ProxyNode, StatsInclusion
from canarymesh.xds import names, telemetry, tracing
from canarymesh.xds.endpoints import pipe_address, socket_address
from canarymesh.xds.snapshot import XdsSnapshot, walk
from canarymesh.xds.types import EnvoyJson, JsonValue, typed

# Cluster stat names are ``outbound|9080|v1|reviews_default_svc_cluster_local`` (alt_stat_name);
# an empty first group keeps the stat name whole and the second becomes the tag value.
STATS_TAGS: list[JsonValue] = [
    {"tag_name": "mesh_subset", "regex": r"^cluster\.outbound\|\d+\|()([^|]*)\|"},
    {"tag_name": "mesh_service", "regex": r"^cluster\.outbound\|\d+\|[^|]*\|()([^_|]+)_"},
]
HISTOGRAM_BUCKETS: list[JsonValue] = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]


# The Envoy stats istio-agent's bootstrap keeps (pkg/bootstrap/config.go, required*Inclusion*;
# tools/packaging/common/envoy_bootstrap.json adds reporter=, component and istio): what its
# readiness, draining and metrics need. Every other stat (cluster.outbound|..., http.*,
# listener.*) is never made, which is most of a sidecar's stats memory and of Prometheus'
# series; a pod asks for more with sidecar.istio.io/statsInclusion{Prefixes,Suffixes,Regexps}.
ISTIO_STATS_PREFIXES = (
    "reporter=", "cluster_manager", "listener_manager", "server", "cluster.xds-grpc", "wasm",
    "component", "istio",
)  # fmt: skip
ISTIO_STATS_SUFFIXES = ("rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied")
ISTIO_STATS_REGEXPS = (r"vhost\..*\.route\..*",)


def stats_matcher(extra: StatsInclusion) -> EnvoyJson:
    patterns: list[JsonValue] = []
    patterns += [{"prefix": p} for p in (*ISTIO_STATS_PREFIXES, *extra.prefixes)]
    patterns += [{"suffix": s} for s in (*ISTIO_STATS_SUFFIXES, *extra.suffixes)]
    patterns += [{"safe_regex": {"regex": r}} for r in (*ISTIO_STATS_REGEXPS, *extra.regexps)]
    return {"inclusion_list": {"patterns": patterns}}


def stats_config(extra: StatsInclusion | None = None) -> EnvoyJson:
    return {
        "stats_matcher": stats_matcher(extra or StatsInclusion()),
        "use_all_default_tags": True,
        "stats_tags": copy.deepcopy(STATS_TAGS),
        "histogram_bucket_settings": [
            {"match": {"prefix": "cluster."}, "buckets": list(HISTOGRAM_BUCKETS)}
        ],
    }


def layered_runtime() -> EnvoyJson:
    """A static layer (the Zipkin reporter's flush settings) under Envoy's admin layer, as
    istio-proxy's bootstrap has them."""
    return {
        "layers": [
            {"name": "static", "static_layer": tracing.zipkin_runtime()},
            {"name": "admin", "admin_layer": {}},
        ]
    }


def node(proxy: ProxyNode, settings: MeshSettings) -> EnvoyJson:
    peer = telemetry.peer_info(proxy, settings)
    return {
        "id": proxy.id,
        "cluster": proxy.workload,
        "metadata": {
            "WORKLOAD_NAME": proxy.workload,
            "NAMESPACE": proxy.namespace,
            "SERVICE_ACCOUNT": proxy.service_account,
            "LABELS": {k: v for k, v in proxy.labels},
            "PROXY_KIND": proxy.kind,
            "PEER": peer.encode(),
        },
    }


def pod_dns_resolver() -> EnvoyJson:
    """Envoy's own resolver in a pod network (for DNS-resolved clusters): the pod's DNS proxy.

    The pod's nameserver is the DNS proxy only through the capture rules, and those leave
    Envoy's uid 1337 alone, as istio-iptables does: on a cluster Envoy then reaches kube-dns
    directly, here it would reach nothing and every lookup would wait out c-ares' timeouts
    (5 s, 4 tries). A new proxy's clusters warm until their first lookup ends, so a
    ServiceEntry with ``resolution: DNS`` held each new pod unready for about a minute.
    Asking the DNS proxy answers mesh names as kube-dns would and others at once
    (NXDOMAIN: pods have no route out); before its listener exists the refusal is as quick."""
    config: EnvoyJson = {
        "resolvers": [
            {"socket_address": {"protocol": "UDP", "address": "127.0.0.1", "port_value": DNS_PORT}}
        ],
        "dns_resolver_options": {"no_default_search_domain": True},
        "query_timeout_seconds": 1,
        "query_tries": 2,
    }
    return {
        "name": "envoy.network.dns_resolver.cares",
        "typed_config": typed(
            "envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig", config
        ),
    }


def admin(proxy: ProxyNode) -> EnvoyJson:
    return {"address": socket_address("127.0.0.1", proxy.ports.admin)}


def build_stats_listener(
    address: EnvoyJson | None = None, admin_address: EnvoyJson | None = None
) -> tuple[EnvoyJson, EnvoyJson]:
    """Istio's ``0.0.0.0:15090`` stats listener and its admin cluster: the admin stays private
    (the pod's loopback, or a 0600 Unix socket on the shared network) and Prometheus reads
    ``/stats/prometheus`` here, the listener's one route (``address``: where it listens)."""
    cluster: EnvoyJson = {
        "name": names.STATS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": names.STATS_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": admin_address or socket_address("127.0.0.1", ADMIN_PORT)
                            }
                        }
                    ]
                }
            ],
        },
    }
    route: EnvoyJson = {
        "match": {"path": "/stats/prometheus"},
        "route": {"cluster": names.STATS_CLUSTER, "timeout": "5s"},
    }
    hcm = typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        {
            "stat_prefix": "stats",
            "route_config": {
                "virtual_hosts": [{"name": "stats", "domains": ["*"], "routes": [route]}]
            },
            "http_filters": [
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": typed("envoy.extensions.filters.http.router.v3.Router", {}),
                }
            ],
        },
    )
    listener: EnvoyJson = {
        "name": names.STATS_LISTENER,
        "address": address or socket_address("0.0.0.0", STATS_PORT),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }
    return listener, cluster


def xds_address(xds: int | str) -> EnvoyJson:
    """The control plane's ADS endpoint: 127.0.0.1:<port>, or a Unix socket path."""
    return pipe_address(xds) if isinstance(xds, str) else socket_address("127.0.0.1", xds)


def ads_service(token: str | None) -> EnvoyJson:
    service: EnvoyJson = {
        "envoy_grpc": {
            "cluster_name": names.XDS_CLUSTER,
            # Reconnect quickly after a control-plane restart (default base 0.5s).
            "retry_policy": {"retry_back_off": {"base_interval": "0.1s", "max_interval": "1s"}},
        }
    }
    if token:
        service["initial_metadata"] = [{"key": names.PROXY_TOKEN_METADATA, "value": token}]
    return service


def build_ads_bootstrap(
    proxy: ProxyNode,
    settings: MeshSettings,
    xds: int | str,
    token: str | None = None,
    admin_socket: str | None = None,
) -> EnvoyJson:
    """What a live proxy starts with: its node, admin, and one gRPC ADS cluster (``xds`` is the
    server's loopback port or Unix socket path; ``token`` the proxy's credential, sent as gRPC
    metadata on the ADS stream); in a pod network also the 15090 stats port.

    ``admin_socket`` (the shared network): the admin listens on that Unix socket, mode 0600,
    and ``proxy.ports.admin`` serves only ``/stats/prometheus``, as 15090 does in a pod."""
    http2 = typed(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        {"explicit_http_config": {"http2_protocol_options": {}}},
    )
    xds_cluster: EnvoyJson = {
        "name": names.XDS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": names.XDS_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": xds_address(xds)}}]}],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": http2
        },
    }
    ads: EnvoyJson = {"ads": {}, "resource_api_version": "V3"}
    static: EnvoyJson = {"clusters": [xds_cluster]}
    admin_config = admin(proxy)
    if admin_socket is not None:
        private: EnvoyJson = {"pipe": {"path": admin_socket, "mode": 0o600}}
        admin_config = {"address": private}
        stats_listener, stats_cluster = build_stats_listener(
            socket_address("127.0.0.1", proxy.ports.admin), {"pipe": {"path": admin_socket}}
        )
        static = {"listeners": [stats_listener], "clusters": [xds_cluster, stats_cluster]}
    elif proxy.network is not None:
        stats_listener, stats_cluster = build_stats_listener()
        static = {"listeners": [stats_listener], "clusters": [xds_cluster, stats_cluster]}
    resolver = {"typed_dns_resolver_config": pod_dns_resolver()} if proxy.network else {}
    return {
        "node": node(proxy, settings),
        "admin": admin_config,
        "stats_config": stats_config(proxy.stats_inclusion),
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "set_node_on_first_message_only": True,
                "grpc_services": [ads_service(token)],
            },
            "cds_config": dict(ads),
            "lds_config": copy.deepcopy(ads),
        },
        "static_resources": static,
        "layered_runtime": layered_runtime(),
        **resolver,
    }


def inline_routes(listener: EnvoyJson, routes: dict[str, EnvoyJson]) -> EnvoyJson:
    """A copy of ``listener`` whose HCMs carry their route configs instead of RDS names."""
    copied = copy.deepcopy(listener)
    for node_ in walk(copied):
        rds = node_.get("rds")
        if isinstance(rds, dict) and isinstance(node_, dict):
            name = str(rds.get("route_config_name"))
            del node_["rds"]
            node_["route_config"] = copy.deepcopy(routes[name])
    return strip_sds_sources(copied)


def strip_sds_sources(resource: EnvoyJson) -> EnvoyJson:
    """Static secrets are referenced by name alone (no ``sds_config``)."""
    for node_ in walk(resource):
        if "sds_config" in node_ and "name" in node_ and isinstance(node_, dict):
            del node_["sds_config"]
    return resource


def static_cluster(cluster: EnvoyJson, loads: dict[str, EnvoyJson]) -> EnvoyJson:
    copied = strip_sds_sources(copy.deepcopy(cluster))
    if copied.get("type") == "EDS":
        name = str(copied["name"])
        del copied["eds_cluster_config"]
        copied["type"] = "STATIC"
        copied["load_assignment"] = copy.deepcopy(loads.get(name, {"cluster_name": name}))
    return copied


def build_static_bootstrap(
    snapshot: XdsSnapshot, proxy: ProxyNode, settings: MeshSettings
) -> EnvoyJson:
    """A self-contained config: ``envoy --mode validate -c`` accepts it without a server."""
    routes = snapshot.named(names.ROUTE)
    loads = snapshot.named(names.ENDPOINT)
    static: EnvoyJson = {
        "listeners": [inline_routes(item, routes) for item in snapshot.listeners],
        "clusters": [static_cluster(item, loads) for item in snapshot.clusters],
    }
    if snapshot.secrets:
        static["secrets"] = [copy.deepcopy(item) for item in snapshot.secrets]
    return {
        "node": node(proxy, settings),
        "admin": admin(proxy),
        "stats_config": stats_config(proxy.stats_inclusion),
        "static_resources": static,
        "layered_runtime": layered_runtime(),
    }

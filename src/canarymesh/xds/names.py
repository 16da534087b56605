"""Every generated Envoy name, in Istio's spelling, plus the type URLs of xDS resources.

Called by all ``xds`` modules (nothing else spells a cluster or policy name) and by the runtime
when it parses cluster names back (telemetry). Istio's names are kept so that users' knowledge
carries over: ``outbound|9080|v2|reviews.default.svc.cluster.local``, ``inbound|9080||``,
``ns[default]-policy[deny-ratings]-rule[0]``.
"""

from __future__ import annotations

from typing import NamedTuple, NewType

from canarymesh.mesh.model import fqdn, resolve_host

ClusterName = NewType("ClusterName", str)
Host = NewType("Host", str)

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
# CDS before EDS before LDS before RDS: the make-before-break order of ADS pushes.
TYPE_ORDER = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)

PASSTHROUGH_CLUSTER = ClusterName("PassthroughCluster")
INBOUND_PASSTHROUGH_CLUSTER = ClusterName("InboundPassthroughCluster")
BLACKHOLE_CLUSTER = ClusterName("BlackHoleCluster")
TELEMETRY_CLUSTER = ClusterName("canarymesh_telemetry")
TRACING_CLUSTER = ClusterName("canarymesh_tracing")
XDS_CLUSTER = ClusterName("xds-grpc")
STATS_CLUSTER = ClusterName("prometheus_stats")
STATS_LISTENER = "stats"
# Istio's SDS names for the workload certificate and the mesh root.
WORKLOAD_SECRET = "default"
ROOT_SECRET = "ROOTCA"

OUTBOUND_HTTP_LISTENER = "outbound_http_proxy"
# Pod networks: Istio's capture listeners and its DNS proxy.
VIRTUAL_OUTBOUND = "virtualOutbound"
VIRTUAL_INBOUND = "virtualInbound"
DNS_LISTENER = "dns"
OUTBOUND_HTTP_ROUTE = "outbound_http_proxy"
PASSTHROUGH_VHOST = "allow_any"
BLOCK_ALL_VHOST = "block_all"
# gRPC metadata carrying a proxy's credential to the runtime's xDS and access-log servers.
PROXY_TOKEN_METADATA = "x-canarymesh-proxy-token"
# The local mesh's metadata-exchange headers (Istio's x-envoy-peer-metadata, simplified).
SOURCE_PEER_HEADER = "x-canarymesh-source"
DESTINATION_PEER_HEADER = "x-canarymesh-destination"
DESTINATION_SERVICE_HEADER = "x-canarymesh-service"


def service_host(name: str, namespace: str, domain_suffix: str = "cluster.local") -> Host:
    return Host(fqdn(name, namespace, domain_suffix))


def config_host(host: str, namespace: str, domain_suffix: str = "cluster.local") -> Host:
    return Host(resolve_host(host, namespace, domain_suffix))


def outbound_cluster(port: int, subset: str, host: str) -> ClusterName:
    return ClusterName(f"outbound|{port}|{subset}|{host}")


def inbound_cluster(port: int) -> ClusterName:
    return ClusterName(f"inbound|{port}||")


class ParsedCluster(NamedTuple):
    direction: str
    port: int
    subset: str
    host: str


def parse_cluster(name: str) -> ParsedCluster | None:
    """The parts of an Istio cluster name, or None for other clusters (PassthroughCluster)."""
    parts = name.split("|")
    if len(parts) != 4 or parts[0] not in ("outbound", "inbound") or not parts[1].isdigit():
        return None
    return ParsedCluster(parts[0], int(parts[1]), parts[2], parts[3])


def cluster_stat_name(name: str) -> str:
    """A dot-free ``alt_stat_name``: dots in a stat name break Envoy's tag extraction.

    See envoy-notes pitfall 10: ``...|reviews.default.svc.cluster.local`` turned the metric into
    ``envoy_cluster_default_svc_cluster_local_upstream_rq_xx``.
    """
    return name.replace(".", "_")


def sni(port: int, subset: str, host: str) -> str:
    """Istio's SNI for ISTIO_MUTUAL clusters: ``outbound_.9080_.v1_.reviews.default.svc...``."""
    return f"outbound_.{port}_.{subset}_.{host}"


def spiffe_id(namespace: str, service_account: str, trust_domain: str = "cluster.local") -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def spiffe_principal(principal: str) -> str:
    """AuthorizationPolicy writes ``cluster.local/ns/x/sa/y``; Envoy sees the SPIFFE URI."""
    return principal if principal.startswith("spiffe://") else f"spiffe://{principal}"


def rbac_policy(namespace: str, policy: str, rule: int) -> str:
    return f"ns[{namespace}]-policy[{policy}]-rule[{rule}]"


def vhost(host: str, port: int) -> str:
    return f"{host}:{port}"


def inbound_vhost(port: int) -> str:
    return f"inbound|http|{port}"


def inbound_listener(port: int) -> str:
    return f"inbound_{port}"


def outbound_tcp_listener(host: str, port: int) -> str:
    return f"outbound_tcp|{port}|{host}"


def pod_listener(address: str, port: int) -> str:
    """Istio's outbound listener names in a pod: ``0.0.0.0_9080``, ``10.96.0.12_3306``."""
    return f"{address}_{port}"


def port_route(port: int) -> str:
    """Istio's outbound route config of a port in a pod: ``9080``."""
    return str(port)


def gateway_listener(port: int) -> str:
    return f"0.0.0.0_{port}"


def gateway_http_route(port: int) -> str:
    """Istio's gateway route config names: ``http.8080``."""
    return f"http.{port}"


def gateway_https_route(port: int, server_name: str, gateway: str, namespace: str) -> str:
    return f"https.{port}.{server_name}.{gateway}.{namespace}"


def gateway_credential(namespace: str, credential_name: str) -> str:
    """Istio's SDS name for a gateway credential: ``kubernetes://<name>`` (namespaced here)."""
    return f"kubernetes://{namespace}/{credential_name}"


def config_path(kind_plural: str, group: str, namespace: str, name: str) -> str:
    """Istio's route metadata: ``/apis/networking.istio.io/v1/namespaces/ns/virtual-service/x``."""
    return f"/apis/{group}/v1/namespaces/{namespace}/{kind_plural}/{name}"


def access_log_name(proxy_id: str, direction: str) -> str:
    return f"{proxy_id}|{direction}"

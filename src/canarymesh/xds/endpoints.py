"""ClusterLoadAssignments (EDS): the addresses behind each outbound cluster.

Called by ``xds.generate`` for every EDS cluster that ``xds.clusters`` builds. On the local mesh
an endpoint of a service port is a destination replica's sidecar inbound listener on 127.0.0.1.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from canarymesh.mesh.index import Endpoint
from canarymesh.mesh.model import MeshSettings, ProxyNode
from canarymesh.xds.types import EnvoyJson, JsonValue


def socket_address(address: str, port: int) -> EnvoyJson:
    return {"socket_address": {"address": address, "port_value": port}}


@functools.lru_cache(maxsize=65536)
def lb_endpoint(address: str, port: int) -> EnvoyJson:
    """Shared between the service cluster and its subset clusters; never mutated in place."""
    return {"endpoint": {"address": socket_address(address, port)}}


def build_load_assignment(cluster_name: str, endpoints: Sequence[Endpoint]) -> EnvoyJson:
    # ``MeshIndex.endpoints`` returns them sorted by address and port already.
    lb_endpoints: list[JsonValue] = [lb_endpoint(e.address, e.port) for e in endpoints]
    return {"cluster_name": cluster_name, "endpoints": [{"lb_endpoints": lb_endpoints}]}


def build_static_assignment(cluster_name: str, address: str, port: int) -> EnvoyJson:
    lb: list[JsonValue] = [{"endpoint": {"address": socket_address(address, port)}}]
    return {"cluster_name": cluster_name, "endpoints": [{"lb_endpoints": lb}]}


def pipe_address(path: str) -> EnvoyJson:
    return {"pipe": {"path": path}}


def build_local_assignment(cluster_name: str, port: int | None, path: str | None) -> EnvoyJson:
    """One endpoint of the runtime's own: a Unix socket ``path`` if given, else 127.0.0.1:port."""
    address = pipe_address(path) if path else socket_address("127.0.0.1", port or 0)
    lb: list[JsonValue] = [{"endpoint": {"address": address}}]
    return {"cluster_name": cluster_name, "endpoints": [{"lb_endpoints": lb}]}


def gateway_address(settings: MeshSettings, proxy: ProxyNode, port: int) -> EnvoyJson:
    """A gateway server port on the host's loopback. A gateway in a pod network has Envoy create
    the socket in the host's network namespace (``network_namespace_filepath``; Envoy needs
    CAP_SYS_ADMIN for it), so the host reaches it while it reaches the pods."""
    inner: EnvoyJson = {"address": "127.0.0.1", "port_value": port}
    if proxy.network is not None and settings.host_netns is not None:
        inner["network_namespace_filepath"] = settings.host_netns
    return {"socket_address": inner}

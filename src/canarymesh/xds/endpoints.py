"""ClusterLoadAssignments (EDS): the addresses behind each outbound cluster.

Called by ``xds.generate`` for every EDS cluster that ``xds.clusters`` builds. On the local mesh
an endpoint of a service port is a destination replica's sidecar inbound listener on 127.0.0.1.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from canarymesh.mesh.index import Endpoint
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

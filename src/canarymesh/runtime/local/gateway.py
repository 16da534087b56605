"""Which local port each server port of the built-in ingress gateway listens on.

Called by :mod:`canarymesh.runtime.local.reconcile` before every ``build_mesh``. On a cluster the
``istio-ingressgateway`` Service maps port 80 to the gateway pod's 8080; locally there is no
Service in front, so ``canarymesh up --ingress-port P`` decides:

* the *first* HTTP server port of the ingress gateway listens on ``127.0.0.1:P``: 8080 when a
  Gateway declares it (Istio's samples since 1.20, and ours), else 80, else the lowest port;
* every other server port gets a free local port, kept while the mesh runs and shown by
  ``canarymesh status`` (``gateways[].ports`` in ``-o json``: server port -> local port).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from canarymesh.api import istio_networking
from canarymesh.api.objects import Resource
from canarymesh.mesh.build import INGRESS_LABELS
from canarymesh.mesh.model import labels_match

__all__ = ["PREFERRED_PORTS", "ingress_server_ports", "primary_server_port"]

PREFERRED_PORTS = (8080, 80)


def ingress_server_ports(resources: Sequence[Resource[BaseModel]]) -> list[int]:
    """The server ports of the Gateways that select the built-in ingress gateway."""
    ports = {
        server.port.number
        for r in resources
        if isinstance(r.spec, istio_networking.Gateway)
        and r.spec.selector
        and labels_match(r.spec.selector, INGRESS_LABELS)
        for server in r.spec.servers
        if server.port is not None
        and server.port.number is not None
        and (server.port.protocol or "HTTP").upper() in ("HTTP", "HTTP2")
    }
    return sorted(ports)


def primary_server_port(server_ports: Sequence[int]) -> int | None:
    """The server port that gets ``--ingress-port``; None when there is no HTTP server."""
    for port in PREFERRED_PORTS:
        if port in server_ports:
            return port
    return min(server_ports) if server_ports else None

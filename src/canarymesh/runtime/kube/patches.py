"""The server-side-apply bodies the Kubernetes router sends: the managed object the route writer
computed (:mod:`canarymesh.routing`, the same functions the local mesh uses), cut down to its
identity and the one list the controller owns. Pure: no client, no clock;
:class:`canarymesh.runtime.kube.router.KubeRouter` fetches the live object, has the writer
rewrite it and sends the body.

Why the body holds the whole ``spec.http`` list: Istio's CRDs declare no list keys, so for
server-side apply ``http`` is an atomic list and a partial list would drop the user's routes.
The field manager ``canarymesh-controller`` therefore owns ``spec.http`` of the VirtualService
it manages (and ``spec.rules`` of an HTTPRoute); a GitOps tool must ignore those fields (see
docs/cluster.md), while ``hosts``, ``gateways``, ``tcp``, ``tls``, labels and annotations stay
its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["FIELD_MANAGER", "http_route_body", "identity", "virtual_service_body"]

FIELD_MANAGER = "canarymesh-controller"

Obj = dict[str, Any]


def virtual_service_body(managed: Mapping[str, Any]) -> Obj:
    """The apply body of a managed VirtualService: its identity and ``spec.http``."""
    return _body(managed, "VirtualService", "http")


def http_route_body(managed: Mapping[str, Any]) -> Obj:
    """The apply body of a managed HTTPRoute: its identity and ``spec.rules``."""
    return _body(managed, "HTTPRoute", "rules")


def identity(obj: Mapping[str, Any]) -> Obj:
    metadata = obj.get("metadata", {})
    return {"name": metadata["name"], "namespace": metadata.get("namespace", "default")}


def _body(managed: Mapping[str, Any], kind: str, field: str) -> Obj:
    return {
        "apiVersion": managed["apiVersion"],
        "kind": kind,
        "metadata": identity(managed),
        "spec": {field: managed["spec"][field]},
    }

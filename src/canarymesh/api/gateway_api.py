"""Kubernetes Gateway API (``gateway.networking.k8s.io``) messages: Gateway and HTTPRoute.

Pure input schemas, read by the loader and consumed by :mod:`canarymesh.mesh`. Names follow the
Go types of https://gateway-api.sigs.k8s.io/reference/spec/. Unknown fields are refused (the
CRD schema refuses them); filter bodies and TLS settings pass through as JSON objects.
An HTTPRoute whose ``parent_refs`` name a core ``Service`` is a mesh (GAMMA) route, as in
Istio's ``samples/bookinfo/gateway-api/route-*.yaml``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from canarymesh.api.base import Duration, Int, IstioModel, JsonObject, Str, Strs

__all__ = [
    "AllowedRoutes",
    "Gateway",
    "HTTPBackendRef",
    "HTTPHeaderMatch",
    "HTTPPathMatch",
    "HTTPQueryParamMatch",
    "HTTPRoute",
    "HTTPRouteFilter",
    "HTTPRouteMatch",
    "HTTPRouteRule",
    "HTTPRouteTimeouts",
    "Listener",
    "ParentReference",
]


class AllowedRoutes(IstioModel):
    """Which namespaces' routes may attach (``namespaces.from``: Same, All, Selector)."""

    namespaces: JsonObject | None = None
    kinds: tuple[JsonObject, ...] = ()


class Listener(IstioModel):
    name: Str
    hostname: Str | None = None
    port: Int
    protocol: Str
    tls: JsonObject | None = None
    allowed_routes: AllowedRoutes | None = None


class Gateway(IstioModel):
    gateway_class_name: Str
    listeners: tuple[Listener, ...] = ()
    addresses: tuple[JsonObject, ...] = ()
    infrastructure: JsonObject | None = None
    backend_tls: JsonObject | None = Field(default=None, alias="backendTLS")
    allowed_listeners: JsonObject | None = None


class ParentReference(IstioModel):
    """A Gateway (default group/kind) or a core Service (group "", kind Service: a mesh route)."""

    group: Str | None = None
    kind: Str | None = None
    namespace: Str | None = None
    name: Str
    section_name: Str | None = None
    port: Int | None = None


class HTTPPathMatch(IstioModel):
    type: Literal["Exact", "PathPrefix", "RegularExpression"] | None = None
    value: Str | None = None


class HTTPHeaderMatch(IstioModel):
    type: Literal["Exact", "RegularExpression"] | None = None
    name: Str
    value: Str


class HTTPQueryParamMatch(IstioModel):
    type: Literal["Exact", "RegularExpression"] | None = None
    name: Str
    value: Str


class HTTPRouteMatch(IstioModel):
    path: HTTPPathMatch | None = None
    headers: tuple[HTTPHeaderMatch, ...] = ()
    query_params: tuple[HTTPQueryParamMatch, ...] = ()
    method: Str | None = None


class HTTPRouteFilter(IstioModel):
    """A filter; the body named by ``type`` is passed through as a JSON object."""

    type: Str
    request_header_modifier: JsonObject | None = None
    response_header_modifier: JsonObject | None = None
    request_mirror: JsonObject | None = None
    request_redirect: JsonObject | None = None
    url_rewrite: JsonObject | None = Field(default=None, alias="urlRewrite")
    extension_ref: JsonObject | None = None
    cors: JsonObject | None = None
    external_auth: JsonObject | None = None


class HTTPBackendRef(IstioModel):
    """A backend Service and its share of traffic (``weight`` defaults to 1)."""

    group: Str | None = None
    kind: Str | None = None
    name: Str
    namespace: Str | None = None
    port: Int | None = None
    weight: Int | None = None
    filters: tuple[HTTPRouteFilter, ...] = ()


class HTTPRouteTimeouts(IstioModel):
    request: Duration | None = None
    backend_request: Duration | None = None


class HTTPRouteRule(IstioModel):
    name: Str | None = None
    matches: tuple[HTTPRouteMatch, ...] = ()
    filters: tuple[HTTPRouteFilter, ...] = ()
    backend_refs: tuple[HTTPBackendRef, ...] = ()
    timeouts: HTTPRouteTimeouts | None = None
    retry: JsonObject | None = None
    session_persistence: JsonObject | None = None


class HTTPRoute(IstioModel):
    parent_refs: tuple[ParentReference, ...] = ()
    hostnames: Strs = ()
    rules: tuple[HTTPRouteRule, ...] = ()

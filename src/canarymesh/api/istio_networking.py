"""Istio ``networking.istio.io`` messages: VirtualService, DestinationRule, Gateway, ServiceEntry,
Sidecar. Pure input schemas, read by the loader and consumed by :mod:`canarymesh.mesh`.

Class names are Istio's proto message names and fields are their snake_case form, with the
camelCase YAML name as alias, so https://istio.io/latest/docs/reference/config/networking/ reads
as documentation of this module. Every field of Istio's schema is accepted (unknown ones are
refused, as Istio's CRD schema refuses them); parts the local mesh does not interpret are kept
as plain JSON objects (:data:`JsonObject`) and named so in their docstring.

The models check types only. Rules that span fields (one of exact/prefix/regex, weights that
add up to 100, durations) live in :mod:`canarymesh.api.validate`, so that a document with
several mistakes reports all of them.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from canarymesh.api.base import (
    Bool,
    Duration,
    Int,
    IstioModel,
    JsonObject,
    Labels,
    Number,
    Str,
    Strs,
)

__all__ = [
    "ClientTLSSettings",
    "ConnectionPoolSettings",
    "ConsistentHashLB",
    "CorsPolicy",
    "Delegate",
    "Destination",
    "DestinationRule",
    "HTTPCookie",
    "HTTPDirectResponse",
    "HTTPFaultInjection",
    "HTTPMatchRequest",
    "HTTPMirrorPolicy",
    "HTTPRedirect",
    "HTTPRetry",
    "HTTPRewrite",
    "HTTPRoute",
    "HTTPRouteDestination",
    "HTTPSettings",
    "HeaderOperations",
    "Headers",
    "L4MatchAttributes",
    "LoadBalancerSettings",
    "OutlierDetection",
    "Percent",
    "Port",
    "PortSelector",
    "PortTrafficPolicy",
    "RegexRewrite",
    "RouteDestination",
    "Server",
    "ServerTLSSettings",
    "ServiceEntry",
    "ServiceEntryPort",
    "Sidecar",
    "StringMatch",
    "Subset",
    "TCPRoute",
    "TCPSettings",
    "TLSMatchAttributes",
    "TLSRoute",
    "TrafficPolicy",
    "VirtualService",
    "WorkloadEntry",
    "WorkloadSelector",
]


# --- shared -----------------------------------------------------------------------------------


class Percent(IstioModel):
    """A percentage 0.0-100.0 (``percentage: {value: 50}``)."""

    value: Number | None = None


class PortSelector(IstioModel):
    number: Int | None = None


class StringMatch(IstioModel):
    """At most one of ``exact``, ``prefix``, ``regex`` (RE2 syntax); checked by validation.

    None set is valid: on ``headers`` (and ``withoutHeaders``) it matches the presence of the
    header, whatever its value (``headers: {end-user: {}}``).
    """

    exact: Str | None = None
    prefix: Str | None = None
    regex: Str | None = None

    @property
    def kinds_set(self) -> tuple[str, ...]:
        """The names of the match kinds that are set; validation requires exactly one."""
        pairs = (("exact", self.exact), ("prefix", self.prefix), ("regex", self.regex))
        return tuple(name for name, value in pairs if value is not None)


class Destination(IstioModel):
    """A service (``host``, short name resolved in the config's namespace), subset and port."""

    host: Str
    subset: Str | None = None
    port: PortSelector | None = None


class HeaderOperations(IstioModel):
    set: Labels = Field(default_factory=dict)
    add: Labels = Field(default_factory=dict)
    remove: Strs = ()


class Headers(IstioModel):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


# --- VirtualService ---------------------------------------------------------------------------


class HTTPMatchRequest(IstioModel):
    """One match entry; conditions inside it are ANDed, entries of a ``match`` list are ORed."""

    name: Str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[Str, StringMatch] = Field(default_factory=dict)
    port: Int | None = None
    source_labels: Labels = Field(default_factory=dict)
    gateways: Strs = ()
    query_params: dict[Str, StringMatch] = Field(default_factory=dict)
    ignore_uri_case: Bool | None = None
    without_headers: dict[Str, StringMatch] = Field(default_factory=dict)
    source_namespace: Str | None = None
    stat_prefix: Str | None = None


class HTTPRouteDestination(IstioModel):
    """A weighted destination; a missing weight counts as 0 except on a lone destination."""

    destination: Destination
    weight: Int | None = None
    headers: Headers | None = None


class RouteDestination(IstioModel):
    """A weighted L4 (TCP/TLS) destination."""

    destination: Destination
    weight: Int | None = None


class HTTPRedirect(IstioModel):
    uri: Str | None = None
    prefix_rewrite: Str | None = None
    authority: Str | None = None
    port: Int | None = None
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: Str | None = None
    redirect_code: Int | None = None


class HTTPDirectResponse(IstioModel):
    """``status`` and an optional ``body`` (``{string: ...}`` or ``{bytes: ...}``, as is)."""

    status: Int
    body: dict[Str, Str] | None = None


class RegexRewrite(IstioModel):
    match: Str | None = None
    rewrite: Str | None = None


class HTTPRewrite(IstioModel):
    uri: Str | None = None
    authority: Str | None = None
    uri_regex_rewrite: RegexRewrite | None = None


class HTTPRetry(IstioModel):
    attempts: Int | None = None
    per_try_timeout: Duration | None = None
    retry_on: Str | None = None
    retry_remote_localities: Bool | None = None
    retry_ignore_previous_hosts: Bool | None = None
    backoff: Duration | None = None


class HTTPFaultInjectionDelay(IstioModel):
    """Hold the request ``fixed_delay`` before forwarding it, for ``percentage`` of requests.

    ``percent`` (an integer) is Istio's deprecated spelling of ``percentage``.
    """

    fixed_delay: Duration | None = None
    exponential_delay: Duration | None = None
    percentage: Percent | None = None
    percent: Int | None = None


class HTTPFaultInjectionAbort(IstioModel):
    """Answer ``http_status`` at once, without calling the upstream, for ``percentage``."""

    http_status: Int | None = None
    grpc_status: Str | None = None
    http2_error: Str | None = Field(default=None, alias="http2Error")
    percentage: Percent | None = None


class HTTPFaultInjection(IstioModel):
    """Faults the client-side proxy injects: a ``delay``, an ``abort``, or both."""

    Delay: ClassVar[type[HTTPFaultInjectionDelay]] = HTTPFaultInjectionDelay
    Abort: ClassVar[type[HTTPFaultInjectionAbort]] = HTTPFaultInjectionAbort

    delay: HTTPFaultInjectionDelay | None = None
    abort: HTTPFaultInjectionAbort | None = None


class HTTPMirrorPolicy(IstioModel):
    destination: Destination
    percentage: Percent | None = None


class CorsPolicy(IstioModel):
    allow_origins: tuple[StringMatch, ...] = ()
    allow_origin: Strs = ()
    allow_methods: Strs = ()
    allow_headers: Strs = ()
    expose_headers: Strs = ()
    max_age: Duration | None = None
    allow_credentials: Bool | None = None
    unmatched_preflights: Literal["UNSPECIFIED", "FORWARD", "IGNORE"] | None = None


class Delegate(IstioModel):
    name: Str | None = None
    namespace: Str | None = None


class HTTPRoute(IstioModel):
    """One HTTP rule; rules are tried in order and the first whose ``match`` holds wins."""

    name: Str | None = None
    match: tuple[HTTPMatchRequest, ...] = ()
    route: tuple[HTTPRouteDestination, ...] = ()
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: tuple[HTTPMirrorPolicy, ...] = ()
    # Istio also accepts the snake_case ``mirror_percent``; populate_by_name covers it.
    mirror_percent: Int | None = None
    mirror_percentage: Percent | None = None
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None


class L4MatchAttributes(IstioModel):
    destination_subnets: Strs = ()
    port: Int | None = None
    source_labels: Labels = Field(default_factory=dict)
    gateways: Strs = ()
    source_namespace: Str | None = None
    source_subnet: Str | None = None


class TLSMatchAttributes(IstioModel):
    sni_hosts: Strs = ()
    destination_subnets: Strs = ()
    port: Int | None = None
    source_labels: Labels = Field(default_factory=dict)
    gateways: Strs = ()
    source_namespace: Str | None = None


class TCPRoute(IstioModel):
    match: tuple[L4MatchAttributes, ...] = ()
    route: tuple[RouteDestination, ...] = ()


class TLSRoute(IstioModel):
    match: tuple[TLSMatchAttributes, ...] = ()
    route: tuple[RouteDestination, ...] = ()


class VirtualService(IstioModel):
    """Routing for ``hosts``; bound to sidecars (``mesh``) and/or named ``gateways``."""

    hosts: Strs = ()
    gateways: Strs = ()
    http: tuple[HTTPRoute, ...] = ()
    tls: tuple[TLSRoute, ...] = ()
    tcp: tuple[TCPRoute, ...] = ()
    export_to: Strs = ()


# --- DestinationRule --------------------------------------------------------------------------


class HTTPCookie(IstioModel):
    """Cookie for consistent hashing; ``attributes`` are passed through uninterpreted."""

    name: Str
    path: Str | None = None
    ttl: Duration | None = None
    attributes: tuple[JsonObject, ...] = ()


class ConsistentHashLB(IstioModel):
    """Hash key: one of header, cookie, source IP, query parameter (checked by validation).

    ``ring_hash``/``maglev`` tuning is passed through uninterpreted.
    """

    http_header_name: Str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: Bool | None = None
    http_query_parameter_name: Str | None = None
    ring_hash: JsonObject | None = None
    maglev: JsonObject | None = None
    minimum_ring_size: Int | None = None


class LoadBalancerSettings(IstioModel):
    """``simple`` or ``consistent_hash``; locality and warmup settings pass through."""

    simple: (
        Literal[
            "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"
        ]
        | None
    ) = None
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: JsonObject | None = None
    zone_aware_lb_setting: JsonObject | None = None
    warmup_duration_secs: Str | None = None
    warmup: JsonObject | None = None
    backend_utilization: JsonObject | None = None


class TCPSettings(IstioModel):
    max_connections: Int | None = None
    connect_timeout: Duration | None = None
    tcp_keepalive: JsonObject | None = None
    max_connection_duration: Duration | None = None
    idle_timeout: Duration | None = None


class HTTPSettings(IstioModel):
    http1_max_pending_requests: Int | None = None
    http2_max_requests: Int | None = None
    max_requests_per_connection: Int | None = None
    max_retries: Int | None = None
    idle_timeout: Duration | None = None
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    use_client_protocol: Bool | None = None
    max_concurrent_streams: Int | None = None
    http2_keep_alive: JsonObject | None = Field(default=None, alias="http2KeepAlive")


class ConnectionPoolSettings(IstioModel):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class OutlierDetection(IstioModel):
    split_external_local_origin_errors: Bool | None = None
    consecutive_local_origin_failures: Int | None = None
    consecutive_gateway_errors: Int | None = None
    consecutive_5xx_errors: Int | None = Field(default=None, alias="consecutive5xxErrors")
    consecutive_errors: Int | None = None
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: Int | None = None
    min_health_percent: Int | None = None
    outlier_detection_http_error_codes: tuple[Int, ...] = ()


class ClientTLSSettings(IstioModel):
    """How a sidecar originates TLS to the destination (ISTIO_MUTUAL: the mesh's certificates)."""

    mode: Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] | None = None
    client_certificate: Str | None = None
    private_key: Str | None = None
    ca_certificates: Str | None = None
    credential_name: Str | None = None
    subject_alt_names: Strs = ()
    sni: Str | None = None
    insecure_skip_verify: Bool | None = None
    ca_crl: Str | None = None


class PortTrafficPolicy(IstioModel):
    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


class TrafficPolicy(IstioModel):
    """Client-side policy; ``proxy_protocol``, ``tunnel``, ``retry_budget`` pass through."""

    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: tuple[PortTrafficPolicy, ...] = ()
    proxy_protocol: JsonObject | None = None
    tunnel: JsonObject | None = None
    retry_budget: JsonObject | None = None


class Subset(IstioModel):
    """A named version of a service: the endpoints whose pods carry all of ``labels``."""

    name: Str | None = None
    labels: Labels = Field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


class WorkloadSelector(IstioModel):
    """``matchLabels`` (DestinationRule) or ``labels`` (ServiceEntry, Sidecar) of workloads."""

    match_labels: Labels = Field(default_factory=dict)
    labels: Labels = Field(default_factory=dict)


class DestinationRule(IstioModel):
    host: Str | None = None
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = ()
    export_to: Strs = ()
    workload_selector: WorkloadSelector | None = None


# --- Gateway ----------------------------------------------------------------------------------


class Port(IstioModel):
    """A gateway or service-entry port; ``protocol`` is HTTP|HTTPS|GRPC|HTTP2|MONGO|TCP|TLS."""

    number: Int | None = None
    protocol: Str | None = None
    name: Str | None = None
    target_port: Int | None = None


class ServerTLSSettings(IstioModel):
    """TLS termination on a gateway server; certificate material by file or ``credential_name``."""

    https_redirect: Bool | None = None
    mode: (
        Literal[
            "PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"
        ]
        | None
    ) = None
    server_certificate: Str | None = None
    private_key: Str | None = None
    ca_certificates: Str | None = None
    ca_crl: Str | None = None
    credential_name: Str | None = None
    credential_names: Strs = ()
    ca_cert_credential_name: Str | None = None
    tls_certificates: tuple[JsonObject, ...] = ()
    subject_alt_names: Strs = ()
    verify_certificate_spki: Strs = ()
    verify_certificate_hash: Strs = ()
    min_protocol_version: Str | None = None
    max_protocol_version: Str | None = None
    cipher_suites: Strs = ()
    ecdh_curves: Strs = ()
    insecure_skip_verify: Bool | None = None


class Server(IstioModel):
    port: Port | None = None
    bind: Str | None = None
    hosts: Strs = ()
    tls: ServerTLSSettings | None = None
    default_endpoint: Str | None = None
    name: Str | None = None


class Gateway(IstioModel):
    """A load balancer at the mesh edge: the pods matching ``selector`` serve ``servers``."""

    servers: tuple[Server, ...] = ()
    selector: Labels = Field(default_factory=dict)


# --- ServiceEntry and Sidecar -----------------------------------------------------------------


class ServiceEntryPort(IstioModel):
    number: Int | None = None
    protocol: Str | None = None
    name: Str | None = None
    target_port: Int | None = None


class WorkloadEntry(IstioModel):
    address: Str | None = None
    ports: dict[Str, Int] = Field(default_factory=dict)
    labels: Labels = Field(default_factory=dict)
    network: Str | None = None
    locality: Str | None = None
    weight: Int | None = None
    service_account: Str | None = None


class ServiceEntry(IstioModel):
    """Adds ``hosts`` (usually outside the mesh) to the registry."""

    hosts: Strs = ()
    addresses: Strs = ()
    ports: tuple[ServiceEntryPort, ...] = ()
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] | None = None
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"] | None = None
    endpoints: tuple[WorkloadEntry, ...] = ()
    workload_selector: WorkloadSelector | None = None
    export_to: Strs = ()
    subject_alt_names: Strs = ()


class Sidecar(IstioModel):
    """Scopes a sidecar's config; ``ingress``/``egress`` listeners pass through uninterpreted."""

    workload_selector: WorkloadSelector | None = None
    ingress: tuple[JsonObject, ...] = ()
    egress: tuple[JsonObject, ...] = ()
    inbound_connection_pool: ConnectionPoolSettings | None = None
    outbound_traffic_policy: JsonObject | None = None

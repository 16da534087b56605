"""Telemetry hooks: gRPC access logs on every HCM and the pure mapping from one access-log
entry to Istio's standard metric labels.

How the local mesh reproduces Istio's metadata exchange: the outbound route config adds a
request header ``x-canarymesh-source`` (the caller's workload, app, version, principal) and each
service's virtual host adds ``x-canarymesh-service`` (its FQDN); every inbound listener adds the
response header ``x-canarymesh-destination`` (the callee's identity). Every HCM logs, through
``envoy.access_loggers.http_grpc``, to the static cluster ``canarymesh_telemetry`` (the runtime's
ALS server), with those headers included, and the release group header ``x-canarymesh-group``,
which becomes the label ``canarymesh_group`` (as a Telemetry ``tagOverrides`` would on Istio).
The runtime then calls ``labels_from_log_entry`` with the entry (proto3 JSON, snake_case field
names) and the reporting proxy's own ``PeerInfo`` to get the label set of ``istio_requests_total``
and ``istio_request_duration_milliseconds``.
Sidecar outbound and gateway logs report ``source``; sidecar inbound logs report
``destination`` (Istio's gateways count as the source of the requests they forward).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from canarymesh.api.canary import GROUP_HEADER, GROUP_LABEL
from canarymesh.mesh.model import MeshSettings, ProxyNode, resolve_host
from canarymesh.xds import names
from canarymesh.xds.types import JsonValue, typed

Reporter = Literal["source", "destination"]
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
UNKNOWN = "unknown"
# Envoy's ResponseFlags fields -> the short flags Istio puts in ``response_flags``.
RESPONSE_FLAGS = {
    "failed_local_healthcheck": "LH",
    "no_healthy_upstream": "UH",
    "upstream_request_timeout": "UT",
    "local_reset": "LR",
    "upstream_remote_reset": "UR",
    "upstream_connection_failure": "UF",
    "upstream_connection_termination": "UC",
    "upstream_overflow": "UO",
    "no_route_found": "NR",
    "delay_injected": "DI",
    "fault_injected": "FI",
    "rate_limited": "RL",
    "upstream_retry_limit_exceeded": "URX",
    "stream_idle_timeout": "SI",
    "downstream_connection_termination": "DC",
    "no_cluster_found": "NC",
    "duration_timeout": "DT",
    "dns_resolution_failure": "DF",
    "overload_manager": "OM",
}
# Istio's order of flags when several are set.
FLAG_ORDER = tuple(RESPONSE_FLAGS.values())


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """What one proxy knows of its own workload (or of a peer, from the exchange header)."""

    workload: str = UNKNOWN
    namespace: str = UNKNOWN
    app: str = UNKNOWN
    version: str = UNKNOWN
    principal: str = UNKNOWN

    def encode(self) -> str:
        """``workload=x;namespace=y;...``: plain text, because Envoy reads ``%`` in added header
        values as a format command (URL-encoding broke validation)."""
        fields = (
            ("workload", self.workload),
            ("namespace", self.namespace),
            ("app", self.app),
            ("version", self.version),
            ("principal", self.principal),
        )
        return ";".join(f"{key}={value}" for key, value in fields)

    @classmethod
    def decode(cls, value: str | None) -> PeerInfo:
        if not value:
            return cls()
        fields = dict(part.partition("=")[::2] for part in value.split(";") if "=" in part)
        return cls(
            workload=fields.get("workload", UNKNOWN),
            namespace=fields.get("namespace", UNKNOWN),
            app=fields.get("app", UNKNOWN),
            version=fields.get("version", UNKNOWN),
            principal=fields.get("principal", UNKNOWN),
        )


def peer_info(proxy: ProxyNode, settings: MeshSettings) -> PeerInfo:
    labels = proxy.label_map
    return PeerInfo(
        workload=proxy.workload,
        namespace=proxy.namespace,
        app=labels.get("app", UNKNOWN),
        version=labels.get("version", UNKNOWN),
        principal=names.spiffe_id(proxy.namespace, proxy.service_account, settings.trust_domain),
    )


def grpc_service(proxy: ProxyNode) -> dict[str, JsonValue]:
    """The telemetry server, with the proxy's token when the runtime issued one."""
    service: dict[str, JsonValue] = {"envoy_grpc": {"cluster_name": names.TELEMETRY_CLUSTER}}
    token = proxy.identity.telemetry_token if proxy.identity is not None else ""
    if token:
        service["initial_metadata"] = [{"key": names.PROXY_TOKEN_METADATA, "value": token}]
    return service


def build_access_logs(proxy: ProxyNode, direction: str, settings: MeshSettings) -> list[JsonValue]:
    """The HCM ``access_log`` list: empty when the mesh runs without a telemetry server."""
    if not settings.has_telemetry:
        return []
    config = typed(
        "envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
        {
            "common_config": {
                "log_name": names.access_log_name(proxy.id, direction),
                "grpc_service": grpc_service(proxy),
                "transport_api_version": "V3",
            },
            "additional_request_headers_to_log": [
                names.SOURCE_PEER_HEADER,
                names.DESTINATION_SERVICE_HEADER,
                GROUP_HEADER,
            ],
            "additional_response_headers_to_log": [names.DESTINATION_PEER_HEADER],
        },
    )
    return [{"name": "envoy.access_loggers.http_grpc", "typed_config": config}]


def build_tcp_access_logs(
    proxy: ProxyNode, direction: str, settings: MeshSettings
) -> list[JsonValue]:
    """A ``tcp_proxy`` access log for Istio's TCP metrics (bytes, connections opened/closed)."""
    if not settings.has_telemetry:
        return []
    config = typed(
        "envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig",
        {
            "common_config": {
                "log_name": names.access_log_name(proxy.id, direction),
                "grpc_service": grpc_service(proxy),
                "transport_api_version": "V3",
            }
        },
    )
    return [{"name": "envoy.access_loggers.tcp_grpc", "typed_config": config}]


def child(entry: Mapping[str, JsonValue], *path: str) -> Mapping[str, JsonValue]:
    node: JsonValue = dict(entry)
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def text(node: Mapping[str, JsonValue], key: str) -> str | None:
    value = node.get(key)
    return value if isinstance(value, str) else None


def response_flags(flags: Mapping[str, JsonValue]) -> str:
    set_flags = {RESPONSE_FLAGS[k] for k, v in flags.items() if v is True and k in RESPONSE_FLAGS}
    return ",".join(f for f in FLAG_ORDER if f in set_flags) or "-"


def response_code(response: Mapping[str, JsonValue]) -> str:
    code = response.get("response_code")
    if isinstance(code, dict):
        code = code.get("value")
    return str(code) if isinstance(code, int) else "0"


def service_of(request_headers: Mapping[str, JsonValue], upstream_cluster: str | None) -> str:
    header = text(request_headers, names.DESTINATION_SERVICE_HEADER)
    if header:
        return header
    parsed = names.parse_cluster(upstream_cluster or "")
    return parsed.host if parsed and parsed.host else UNKNOWN


def peer_principal(common: Mapping[str, JsonValue]) -> str:
    sans = child(common, "tls_properties", "peer_certificate_properties").get("subject_alt_name")
    if isinstance(sans, list):
        for san in sans:
            if isinstance(san, dict) and isinstance(san.get("uri"), str):
                return str(san["uri"])
    return UNKNOWN


def sni_service(common: Mapping[str, JsonValue]) -> str | None:
    """The service a mesh client asked for, from its mTLS SNI (``names.sni``): set by the
    caller's sidecar, so no application header can change it."""
    sni = text(child(common, "tls_properties"), "tls_sni_hostname") or ""
    parts = sni.split("_.", 3)
    return parts[3] if len(parts) == 4 and parts[0] == "outbound" else None


def claimed_source(principal: str, claimed: PeerInfo) -> PeerInfo:
    """The caller's identity: its workload as claimed only when the verified certificate's
    principal (its namespace and service account) backs the claim."""
    if principal == UNKNOWN:
        return claimed
    if claimed.principal in (principal, UNKNOWN) and claimed.namespace in (
        principal_namespace(principal),
        UNKNOWN,
    ):
        return PeerInfo(
            claimed.workload, claimed.namespace, claimed.app, claimed.version, principal
        )
    return PeerInfo(namespace=principal_namespace(principal), principal=principal)


def principal_namespace(principal: str) -> str:
    return principal.split("/ns/", 1)[1].split("/", 1)[0] if "/ns/" in principal else UNKNOWN


def labels_from_log_entry(
    entry: Mapping[str, JsonValue],
    reporter: Reporter,
    local: PeerInfo,
    peer: PeerInfo | None = None,
    services: frozenset[str] | None = None,
) -> dict[str, str]:
    """Istio's standard labels of one HTTP request, from the reporter's point of view.

    ``peer``: the other side as the runtime knows it (a pod network: the pod behind the remote
    address); then no exchange header is read, since a caller's app could have written it.
    ``services``: on the destination side, the services that select the reporting pod; a
    service name outside them (a forged header) is not believed.
    """
    common = child(entry, "common_properties")
    request_headers = child(entry, "request", "request_headers")
    response_headers = child(entry, "response", "response_headers")
    if reporter == "source":
        source = local
        destination = (
            peer
            if peer is not None
            else PeerInfo.decode(text(response_headers, names.DESTINATION_PEER_HEADER))
        )
        security = UNKNOWN
    else:
        principal = peer_principal(common)
        claimed = (
            peer
            if peer is not None
            else PeerInfo.decode(text(request_headers, names.SOURCE_PEER_HEADER))
        )
        source = claimed_source(principal, claimed)
        destination = local
        tls = child(common, "tls_properties")
        security = "mutual_tls" if principal != UNKNOWN or tls.get("tls_version") else "none"
    service: str = service_of(request_headers, text(common, "upstream_cluster"))
    if reporter == "destination":
        from_sni = sni_service(common)
        if from_sni is not None:
            service = from_sni
        elif services is not None and service not in services:
            asked = text(child(entry, "request"), "authority") or ""
            host = resolve_host(asked.rpartition(":")[0] or asked, local.namespace)
            service = host if host in services else UNKNOWN
    authority = text(child(entry, "request"), "authority")
    if service == UNKNOWN and reporter == "source" and authority:
        # A fault abort or direct response never reaches the router, which adds the service
        # header and picks the cluster: Istio then names the service the caller asked for.
        service = resolve_host(authority.rpartition(":")[0] or authority, local.namespace)
    content_type = text(request_headers, "content-type") or ""
    return {
        **peer_labels(reporter, source, destination, service),
        "request_protocol": "grpc" if content_type.startswith("application/grpc") else "http",
        "response_code": response_code(child(entry, "response")),
        "response_flags": response_flags(child(common, "response_flags")),
        "connection_security_policy": security,
        "grpc_response_status": "",
        GROUP_LABEL: group_tag(text(request_headers, GROUP_HEADER)),
    }


def group_tag(value: str | None) -> str:
    """The ``canarymesh_group`` label: the release group the request's session is in (a Canary
    name), empty otherwise. Anything but a Kubernetes name is dropped: the header comes from a
    client, and a label value must not be theirs to pick freely."""
    if value is None or not _NAME.fullmatch(value):
        return ""
    return value


def peer_labels(
    reporter: Reporter, source: PeerInfo, destination: PeerInfo, service: str
) -> dict[str, str]:
    """The labels HTTP and TCP metrics share: who called whom, as which service (Istio's order)."""
    return {
        "reporter": reporter,
        "source_workload": source.workload,
        "source_workload_namespace": source.namespace,
        "source_principal": source.principal,
        "source_app": source.app,
        "source_version": source.version,
        "source_canonical_service": source.app,
        "source_canonical_revision": source.version if source.version != UNKNOWN else "latest",
        "source_cluster": "Kubernetes",
        "destination_workload": destination.workload,
        "destination_workload_namespace": destination.namespace,
        "destination_principal": destination.principal,
        "destination_app": destination.app,
        "destination_version": destination.version,
        "destination_service": service,
        "destination_service_name": service.split(".")[0] if service != UNKNOWN else UNKNOWN,
        "destination_service_namespace": service_namespace(service),
        "destination_canonical_service": destination.app,
        "destination_canonical_revision": (
            destination.version if destination.version != UNKNOWN else "latest"
        ),
        "destination_cluster": "Kubernetes",
    }


def service_namespace(service: str) -> str:
    parts = service.split(".")
    return parts[1] if len(parts) > 2 and parts[2] == "svc" else UNKNOWN


def duration_ms(entry: Mapping[str, JsonValue]) -> float:
    """Request duration for ``istio_request_duration_milliseconds`` (last byte sent downstream)."""
    value = text(child(entry, "common_properties"), "time_to_last_downstream_tx_byte")
    if not value or not value.endswith("s"):
        return 0.0
    return float(value[:-1]) * 1000.0


def labels_from_tcp_entry(
    entry: Mapping[str, JsonValue], reporter: Reporter, local: PeerInfo, peer: PeerInfo
) -> dict[str, str]:
    """Istio's TCP metric labels of one connection (no response code).

    TCP carries no exchange headers, so the runtime names the ``peer``: on the source side the
    destination pod behind ``upstream_remote_address`` (a sidecar inbound port it allocated),
    on the destination side the caller it finds by the certificate's principal.
    """
    common = child(entry, "common_properties")
    service = service_of({}, text(common, "upstream_cluster"))
    if service == UNKNOWN:
        # The inbound cluster names no service; the caller's mTLS SNI does (names.sni).
        service = sni_service(common) or UNKNOWN
    source, destination = (local, peer) if reporter == "source" else (peer, local)
    security = UNKNOWN
    if reporter == "destination":
        security = "mutual_tls" if peer_principal(common) != UNKNOWN else "none"
    return {
        **peer_labels(reporter, source, destination, service),
        "request_protocol": "tcp",
        "response_flags": response_flags(child(common, "response_flags")),
        "connection_security_policy": security,
    }


def tcp_bytes(entry: Mapping[str, JsonValue]) -> tuple[int, int]:
    """(received, sent) bytes of a TCP entry, for ``istio_tcp_{received,sent}_bytes_total``."""
    props = child(entry, "connection_properties")
    received, sent = props.get("received_bytes", 0), props.get("sent_bytes", 0)
    # proto3 JSON renders uint64 as strings.
    return int(str(received or 0)), int(str(sent or 0))

"""TLS fragments: upstream contexts for DestinationRule tls modes, downstream contexts for
PeerAuthentication and gateway servers, and the SDS secrets the runtime's CA fills.

Called by ``xds.clusters`` (outbound), ``xds.listeners`` (inbound) and ``xds.gateway``. Secrets
use Istio's SDS names: ``default`` (the workload certificate) and ``ROOTCA`` (the mesh root).
As istiod 1.31 (pilot/pkg/networking/core/cluster_tls.go, pilot/pkg/security/authn/utils):
TLS 1.2 to 1.3 both ways, Istio's cipher suites on inbound mTLS, and SIMPLE/MUTUAL origination
that verifies the server against the system's roots unless ``caCertificates`` names others
(``insecureSkipVerify`` turns that off) and takes its SNI and SAN check from the request's
host (auto_sni, auto_san_validation) unless ``sni``/``subjectAltNames`` are set.
"""

from __future__ import annotations

from collections.abc import Sequence

from canarymesh.api.istio_networking import ClientTLSSettings
from canarymesh.mesh.model import TlsSecret, WorkloadIdentity
from canarymesh.xds import names
from canarymesh.xds.types import EnvoyJson, JsonValue, typed

TLS_INSPECTOR: EnvoyJson = {
    "name": "envoy.filters.listener.tls_inspector",
    "typed_config": typed("envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector", {}),
}
TLS_SOCKET = "envoy.transport_sockets.tls"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
# TLS 1.3 must be asked for explicitly upstream (envoy-notes pitfall 13); 1.2 is the floor.
TLS_PARAMS: EnvoyJson = {
    "tls_minimum_protocol_version": "TLSv1_2",
    "tls_maximum_protocol_version": "TLSv1_3",
}
# Istio's SupportedCiphers for inbound mTLS (TLS 1.2; TLS 1.3 suites are not configurable).
MESH_CIPHERS = (
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
)
# istiod's caCertificates default "system" is the node's trust bundle; this is Debian's.
SYSTEM_ROOTS = "/etc/ssl/certs/ca-certificates.crt"


def sds_config() -> EnvoyJson:
    return {"ads": {}, "resource_api_version": "V3"}


def sds_ref(name: str) -> EnvoyJson:
    return {"name": name, "sds_config": sds_config()}


def san_matchers(sans: Sequence[str]) -> list[JsonValue]:
    return [{"san_type": "URI", "matcher": {"exact": san}} for san in sorted(set(sans))]


def istio_mutual_context(sans: Sequence[str]) -> EnvoyJson:
    """The mesh's mTLS context: our ``default`` certificate, peers checked against ``ROOTCA``."""
    default_validation: EnvoyJson = {}
    if sans:
        default_validation["match_typed_subject_alt_names"] = san_matchers(sans)
    return {
        "tls_params": dict(TLS_PARAMS),
        "tls_certificate_sds_secret_configs": [sds_ref(names.WORKLOAD_SECRET)],
        "combined_validation_context": {
            "default_validation_context": default_validation,
            "validation_context_sds_secret_config": sds_ref(names.ROOT_SECRET),
        },
    }


def transport_socket(type_name: str, body: EnvoyJson) -> EnvoyJson:
    return {"name": TLS_SOCKET, "typed_config": typed(type_name, body)}


def translate_client_tls(
    settings: ClientTLSSettings | None, sni: str, sans: Sequence[str]
) -> EnvoyJson | None:
    """A cluster's ``transport_socket`` for a DestinationRule ``tls`` (None: plaintext).

    ISTIO_MUTUAL uses Istio's internal SNI (``outbound_.9080_.v1_.host``); SIMPLE and MUTUAL
    send ``sni`` only when set, leaving it (and the SAN check) to :func:`auto_sni_options`.
    """
    if settings is None or settings.mode in (None, "DISABLE"):
        return None
    if settings.mode == "ISTIO_MUTUAL":
        body: EnvoyJson = {"common_tls_context": istio_mutual_context(sans), "sni": sni}
        return transport_socket(UPSTREAM_TLS, body)
    context: EnvoyJson = {"tls_params": dict(TLS_PARAMS)}
    if not settings.insecure_skip_verify:
        validation: EnvoyJson = {
            "trusted_ca": {"filename": settings.ca_certificates or SYSTEM_ROOTS}
        }
        if settings.subject_alt_names:
            validation["match_typed_subject_alt_names"] = [
                {"san_type": "DNS", "matcher": {"exact": san}} for san in settings.subject_alt_names
            ]
        if settings.ca_crl:
            validation["crl"] = {"filename": settings.ca_crl}
        context["validation_context"] = validation
    if settings.mode == "MUTUAL" and settings.client_certificate and settings.private_key:
        context["tls_certificates"] = [
            {
                "certificate_chain": {"filename": settings.client_certificate},
                "private_key": {"filename": settings.private_key},
            }
        ]
    body = {"common_tls_context": context}
    if settings.sni:
        body["sni"] = settings.sni
    return transport_socket(UPSTREAM_TLS, body)


def auto_sni_options(settings: ClientTLSSettings | None) -> EnvoyJson:
    """istiod's setAutoSniAndAutoSanValidation for SIMPLE/MUTUAL: without ``sni`` the SNI is the
    request's host, and without ``subjectAltNames`` (and not ``insecureSkipVerify``) the
    server's certificate must name that host. For the cluster's upstream HTTP options."""
    if settings is None or settings.mode not in ("SIMPLE", "MUTUAL") or settings.sni:
        return {}
    out: EnvoyJson = {"auto_sni": True}
    if not settings.subject_alt_names and not settings.insecure_skip_verify:
        out["auto_san_validation"] = True
    return out


def downstream_mtls() -> EnvoyJson:
    """An inbound mTLS context: client certificates from the mesh are required (istiod's
    BuildInboundTLS: TLS 1.2 to 1.3, Istio's cipher suites, h2 and http/1.1 offered)."""
    body: EnvoyJson = {
        "common_tls_context": {
            "tls_params": {**TLS_PARAMS, "cipher_suites": list(MESH_CIPHERS)},
            "alpn_protocols": ["h2", "http/1.1"],
            "tls_certificate_sds_secret_configs": [sds_ref(names.WORKLOAD_SECRET)],
            "validation_context_sds_secret_config": sds_ref(names.ROOT_SECRET),
        },
        "require_client_certificate": True,
    }
    return transport_socket(DOWNSTREAM_TLS, body)


def downstream_simple(secret_name: str) -> EnvoyJson:
    """A gateway server terminating TLS with a credential (``credentialName``)."""
    body: EnvoyJson = {
        "common_tls_context": {"tls_certificate_sds_secret_configs": [sds_ref(secret_name)]}
    }
    return transport_socket(DOWNSTREAM_TLS, body)


def build_workload_secrets(identity: WorkloadIdentity) -> list[EnvoyJson]:
    return [
        {
            "name": names.WORKLOAD_SECRET,
            "tls_certificate": {
                "certificate_chain": {"inline_string": identity.cert_chain},
                "private_key": {"inline_string": identity.private_key},
            },
        },
        {
            "name": names.ROOT_SECRET,
            "validation_context": {"trusted_ca": {"inline_string": identity.root_cert}},
        },
    ]


def build_credential_secret(secret: TlsSecret) -> EnvoyJson:
    return {
        "name": names.gateway_credential(secret.namespace, secret.name),
        "tls_certificate": {
            "certificate_chain": {"inline_string": secret.cert_chain},
            "private_key": {"inline_string": secret.private_key},
        },
    }

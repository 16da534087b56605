"""TLS fragments: upstream contexts for DestinationRule tls modes, downstream contexts for
PeerAuthentication and gateway servers, and the SDS secrets the runtime's CA fills.

Called by ``xds.clusters`` (outbound), ``xds.listeners`` (inbound) and ``xds.gateway``. Secrets
use Istio's SDS names: ``default`` (the workload certificate) and ``ROOTCA`` (the mesh root).
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
# TLS 1.3 must be asked for explicitly upstream (envoy-notes pitfall 13).
TLS_PARAMS: EnvoyJson = {"tls_maximum_protocol_version": "TLSv1_3"}


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
    settings: ClientTLSSettings | None, sni: str, sans: Sequence[str], host: str = ""
) -> EnvoyJson | None:
    """A cluster's ``transport_socket`` for a DestinationRule ``tls`` (None: plaintext).

    ISTIO_MUTUAL uses Istio's internal SNI (``outbound_.9080_.v1_.host``); SIMPLE and MUTUAL
    present the destination's own host name unless ``sni`` is set, as a TLS origination to
    ``www.googleapis.com`` must.
    """
    if settings is None or settings.mode in (None, "DISABLE"):
        return None
    if settings.mode == "ISTIO_MUTUAL":
        body: EnvoyJson = {"common_tls_context": istio_mutual_context(sans), "sni": sni}
        return transport_socket(UPSTREAM_TLS, body)
    context: EnvoyJson = {"tls_params": dict(TLS_PARAMS)}
    validation: EnvoyJson = {}
    if settings.ca_certificates:
        validation["trusted_ca"] = {"filename": settings.ca_certificates}
    wanted_sans = list(settings.subject_alt_names)
    if wanted_sans:
        validation["match_typed_subject_alt_names"] = [
            {"san_type": "DNS", "matcher": {"exact": san}} for san in wanted_sans
        ]
    if validation and not settings.insecure_skip_verify:
        context["validation_context"] = validation
    if settings.mode == "MUTUAL" and settings.client_certificate and settings.private_key:
        context["tls_certificates"] = [
            {
                "certificate_chain": {"filename": settings.client_certificate},
                "private_key": {"filename": settings.private_key},
            }
        ]
    body = {"common_tls_context": context, "sni": settings.sni or host or sni}
    return transport_socket(UPSTREAM_TLS, body)


def downstream_mtls() -> EnvoyJson:
    """An inbound mTLS context: client certificates from the mesh are required."""
    body: EnvoyJson = {
        "common_tls_context": {
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

"""Istio ``security.istio.io`` messages: PeerAuthentication, AuthorizationPolicy,
RequestAuthentication. Pure input schemas, read by the loader, consumed by :mod:`canarymesh.mesh`
(mTLS composition) and :mod:`canarymesh.xds` (Envoy RBAC).

Names follow Istio's protos (https://istio.io/latest/docs/reference/config/security/). ``from`` is
a Python keyword, so :class:`Rule` spells it ``from_`` (alias ``from``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from canarymesh.api.base import Bool, Duration, IstioModel, JsonObject, Labels, Str, Strs

__all__ = [
    "AuthorizationPolicy",
    "Condition",
    "ExtensionProvider",
    "JWTRule",
    "MTLSMode",
    "Operation",
    "PeerAuthentication",
    "PeerAuthenticationMutualTLS",
    "PolicyTargetReference",
    "RequestAuthentication",
    "Rule",
    "RuleFrom",
    "RuleTo",
    "Source",
    "WorkloadSelector",
]

MTLSMode = Literal["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]


class WorkloadSelector(IstioModel):
    match_labels: Labels = Field(default_factory=dict)


class PolicyTargetReference(IstioModel):
    group: Str | None = None
    kind: Str | None = None
    name: Str | None = None
    namespace: Str | None = None


class PeerAuthenticationMutualTLS(IstioModel):
    mode: MTLSMode | None = None


class PeerAuthentication(IstioModel):
    """Inbound mTLS for the workloads of ``selector`` (all of the namespace when absent).

    ``port_level_mtls`` keys are port numbers written as strings, as in Istio's YAML.
    """

    selector: WorkloadSelector | None = None
    mtls: PeerAuthenticationMutualTLS | None = None
    port_level_mtls: dict[Str, PeerAuthenticationMutualTLS] = Field(default_factory=dict)


class Source(IstioModel):
    """Who is calling; every field set must match (``not_*`` fields must not match)."""

    principals: Strs = ()
    not_principals: Strs = ()
    request_principals: Strs = ()
    not_request_principals: Strs = ()
    namespaces: Strs = ()
    not_namespaces: Strs = ()
    ip_blocks: Strs = ()
    not_ip_blocks: Strs = ()
    remote_ip_blocks: Strs = ()
    not_remote_ip_blocks: Strs = ()
    service_accounts: Strs = ()
    not_service_accounts: Strs = ()
    trust_domains: Strs = ()
    not_trust_domains: Strs = ()


class Operation(IstioModel):
    """What is called (host, port, method, path); ``ports`` are strings, as in Istio."""

    hosts: Strs = ()
    not_hosts: Strs = ()
    ports: Strs = ()
    not_ports: Strs = ()
    methods: Strs = ()
    not_methods: Strs = ()
    paths: Strs = ()
    not_paths: Strs = ()


class Condition(IstioModel):
    key: Str
    values: Strs = ()
    not_values: Strs = ()


class RuleFrom(IstioModel):
    source: Source | None = None


class RuleTo(IstioModel):
    operation: Operation | None = None


class Rule(IstioModel):
    """Matches when any ``from`` AND any ``to`` AND every ``when`` holds (empty = any)."""

    from_: tuple[RuleFrom, ...] = Field(default=(), alias="from")
    to: tuple[RuleTo, ...] = ()
    when: tuple[Condition, ...] = ()


class ExtensionProvider(IstioModel):
    name: Str | None = None


class AuthorizationPolicy(IstioModel):
    """Access control for the workloads of ``selector``; ``action`` defaults to ALLOW."""

    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: tuple[PolicyTargetReference, ...] = ()
    rules: tuple[Rule, ...] = ()
    action: Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"] | None = None
    provider: ExtensionProvider | None = None


class JWTRule(IstioModel):
    """One accepted JWT issuer; header/claim plumbing fields pass through uninterpreted."""

    issuer: Str | None = None
    audiences: Strs = ()
    jwks_uri: Str | None = None
    jwks: Str | None = None
    from_headers: tuple[JsonObject, ...] = ()
    from_params: Strs = ()
    from_cookies: Strs = ()
    output_payload_to_header: Str | None = None
    forward_original_token: Bool | None = None
    output_claim_to_headers: tuple[JsonObject, ...] = ()
    space_delimited_claims: Strs = ()
    timeout: Duration | None = None
    presence: Literal["OPTIONAL", "REQUIRED"] | None = None


class RequestAuthentication(IstioModel):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: tuple[PolicyTargetReference, ...] = ()
    jwt_rules: tuple[JWTRule, ...] = ()

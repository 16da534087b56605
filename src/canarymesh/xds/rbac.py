"""AuthorizationPolicy as Envoy RBAC filters on a workload's inbound listeners.

Called by ``xds.listeners``. Istio's semantics: AUDIT policies log, DENY policies are checked
before ALLOW policies; if any ALLOW policy applies to the workload, a request must match one of
their rules (so ``spec: {}`` allows nothing); a DENY policy without rules denies nothing. A
denied request gets 403 ``RBAC: access denied``. Policy names are Istio's
``ns[<namespace>]-policy[<name>]-rule[<index>]``. On TCP ports, rules using HTTP-only fields are
dropped from ALLOW policies and stripped of those fields in DENY policies (Istio does the same,
erring toward denial). Matchers follow istiod 1.31's (pilot/pkg/security/authz/model/generator.go
and matcher/): ``*`` wildcards in principals, namespaces, methods, hosts, paths and header
values, service accounts in any trust domain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from canarymesh.api.istio_security import AuthorizationPolicy, Condition, Operation, Rule, Source
from canarymesh.mesh.model import Config, MeshSnapshot, ProxyNode, labels_match
from canarymesh.xds import names
from canarymesh.xds.types import EnvoyJson, JsonValue, typed

HTTP_RBAC = "envoy.filters.http.rbac"
NETWORK_RBAC = "envoy.filters.network.rbac"
ACTIONS = (("AUDIT", "LOG"), ("DENY", "DENY"), ("ALLOW", "ALLOW"))
Maker = Callable[[str], EnvoyJson]
# Workload port -> the local port Envoy really listens on: on the local mesh the inbound
# listener of container port 9080 is some other loopback port, and Envoy's destination_port
# is the port it accepted the connection on.
PortMap = Mapping[int, int]
NEVER: EnvoyJson = {"not_id": {"any": True}}
NEVER_RULE: EnvoyJson = {"not_rule": {"any": True}}


def applicable_policies(mesh: MeshSnapshot, proxy: ProxyNode) -> list[Config[AuthorizationPolicy]]:
    """Policies in the root namespace without selector, and the workload's namespace ones
    whose selector matches (or that have none)."""
    chosen = []
    for policy in mesh.authorization_policies:
        selector = policy.spec.selector.match_labels if policy.spec.selector else {}
        if (
            policy.namespace == mesh.settings.root_namespace
            and not selector
            or policy.namespace == proxy.namespace
            and labels_match(selector, proxy.label_map)
        ):
            chosen.append(policy)
    return sorted(chosen, key=lambda p: (p.namespace, p.name))


def string_pattern(value: str, prefix: str = "") -> EnvoyJson:
    """Istio's ``*`` wildcards: ``*`` any, ``abc*`` prefix, ``*abc`` suffix, else exact."""
    if value == "*":
        return {"safe_regex": {"regex": ".+"}}
    if value.endswith("*"):
        return {"prefix": prefix + value[:-1]}
    if value.startswith("*"):
        return {"suffix": value[1:]}
    return {"exact": prefix + value}


def authenticated(matcher: EnvoyJson) -> EnvoyJson:
    return {"authenticated": {"principal_name": matcher}}


def principal_id(value: str) -> EnvoyJson:
    if value == "*" or value.startswith("*"):
        return authenticated(string_pattern(value))
    return authenticated(
        string_pattern(value, "" if value.startswith("spiffe://") else "spiffe://")
    )


def wildcard_regex(value: str) -> str:
    """A value with Istio's ``*`` wildcards as a regex of its literal parts."""
    return ".*".join(re.escape(part) for part in value.split("*"))


def namespace_id(namespace: str) -> EnvoyJson:
    return authenticated({"safe_regex": {"regex": f".*/ns/{wildcard_regex(namespace)}/.*"}})


def service_account_id(value: str, namespace: str) -> EnvoyJson:
    """istiod's serviceAccountRegex: any trust domain, ``<ns>/<sa>`` or the policy's namespace."""
    sa_namespace, _, account = value.rpartition("/")
    ns, sa = re.escape(sa_namespace or namespace), re.escape(account)
    return authenticated({"safe_regex": {"regex": f"spiffe://.+/ns/{ns}/(.+/|)sa/{sa}(/.+)?"}})


def ip_id(cidr: str, field: str) -> EnvoyJson:
    address, _, length = cidr.partition("/")
    default_length = 128 if ":" in address else 32
    return {field: {"address_prefix": address, "prefix_len": int(length or default_length)}}


def request_principal_id(value: str) -> EnvoyJson:
    return {
        "metadata": {
            "filter": "istio_authn",
            "path": [{"key": "request.auth.principal"}],
            "value": {"string_match": string_pattern(value)},
        }
    }


def any_of(items: Sequence[EnvoyJson], kind: str) -> EnvoyJson:
    key = "or_ids" if kind == "id" else "or_rules"
    inner = "ids" if kind == "id" else "rules"
    return items[0] if len(items) == 1 else {key: {inner: list(items)}}


def negate(item: EnvoyJson, kind: str) -> EnvoyJson:
    return {"not_id": item} if kind == "id" else {"not_rule": item}


def field_matchers(
    values: Sequence[str], negated: Sequence[str], make: Maker, kind: str
) -> list[EnvoyJson]:
    out: list[EnvoyJson] = []
    if values:
        out.append(any_of([make(v) for v in values], kind))
    if negated:
        out.append(negate(any_of([make(v) for v in negated], kind), kind))
    return out


def translate_source(source: Source | None, namespace: str, tcp: bool) -> EnvoyJson:
    if source is None:
        return {"any": True}
    ids = field_matchers(source.principals, source.not_principals, principal_id, "id")
    ids += field_matchers(source.namespaces, source.not_namespaces, namespace_id, "id")
    ids += field_matchers(
        source.ip_blocks, source.not_ip_blocks, lambda c: ip_id(c, "direct_remote_ip"), "id"
    )
    ids += field_matchers(
        source.remote_ip_blocks, source.not_remote_ip_blocks, lambda c: ip_id(c, "remote_ip"), "id"
    )
    ids += field_matchers(
        source.service_accounts,
        source.not_service_accounts,
        lambda sa: service_account_id(sa, namespace),
        "id",
    )
    if not tcp:
        ids += field_matchers(
            source.request_principals, source.not_request_principals, request_principal_id, "id"
        )
    return and_all(ids, "id")


def header_rule(name: str, matcher: EnvoyJson) -> EnvoyJson:
    return {"header": {"name": name, **matcher}}


def header_pattern(value: str, ignore_case: bool = False) -> EnvoyJson:
    """istiod's HeaderMatcher/HostMatcher: ``*`` is a presence test, ``*x``/``x*`` suffix and
    prefix, else exact (case-insensitive for hosts)."""
    if value == "*":
        return {"present_match": True}
    matcher = string_pattern(value)
    if ignore_case:
        matcher["ignore_case"] = True
    return {"string_match": matcher}


def path_rule(value: str) -> EnvoyJson:
    return {"url_path": {"path": string_pattern(value)}}


def host_rule(value: str) -> EnvoyJson:
    return header_rule(":authority", header_pattern(value, ignore_case=True))


def translate_operation(operation: Operation | None, tcp: bool, ports: PortMap) -> EnvoyJson:
    if operation is None:
        return {"any": True}
    rules = field_matchers(
        operation.ports, operation.not_ports, lambda p: destination_port(p, ports), "rule"
    )
    if not tcp:
        rules += field_matchers(
            operation.methods,
            operation.not_methods,
            lambda m: header_rule(":method", header_pattern(m)),
            "rule",
        )
        rules += field_matchers(operation.paths, operation.not_paths, path_rule, "rule")
        rules += field_matchers(operation.hosts, operation.not_hosts, host_rule, "rule")
    return and_all(rules, "rule")


def and_all(items: Sequence[EnvoyJson], kind: str) -> EnvoyJson:
    if not items:
        return {"any": True}
    if len(items) == 1:
        return items[0]
    key, inner = ("and_ids", "ids") if kind == "id" else ("and_rules", "rules")
    return {key: {inner: list(items)}}


def destination_port(value: str, ports: PortMap) -> EnvoyJson:
    return {"destination_port": ports.get(int(value), int(value))}


def header_maker(header: str) -> Maker:
    def make(value: str) -> EnvoyJson:
        return header_rule(header, header_pattern(value))

    return make


def translate_condition(
    condition: Condition, namespace: str, ports: PortMap
) -> tuple[str, EnvoyJson]:
    """A ``when`` condition as ("id", principal) or ("rule", permission)."""
    key = condition.key
    makers: dict[str, tuple[str, Maker]] = {
        "source.ip": ("id", lambda v: ip_id(v, "direct_remote_ip")),
        "remote.ip": ("id", lambda v: ip_id(v, "remote_ip")),
        "source.namespace": ("id", namespace_id),
        "source.principal": ("id", principal_id),
        "request.auth.principal": ("id", request_principal_id),
        "destination.port": ("rule", lambda v: destination_port(v, ports)),
        "destination.ip": ("rule", lambda v: ip_id(v, "destination_ip")),
        "connection.sni": ("rule", lambda v: {"requested_server_name": string_pattern(v)}),
    }
    if key.startswith("request.headers[") and key.endswith("]"):
        header = key[len("request.headers[") : -1]
        kind, make = "id", header_maker(header)
    elif key in makers:
        kind, make = makers[key]
    else:
        # Keys we cannot evaluate (JWT claims...) never match, so ALLOW stays closed.
        return "id", NEVER
    matchers = field_matchers(condition.values, condition.not_values, make, kind)
    return kind, and_all(matchers, kind)


def uses_http_fields(rule: Rule) -> bool:
    for to in rule.to:
        op = to.operation
        if op and (
            op.methods or op.not_methods or op.paths or op.not_paths or op.hosts or op.not_hosts
        ):
            return True
    for source in rule.from_:
        if source.source and (
            source.source.request_principals or source.source.not_request_principals
        ):
            return True
    return any(c.key.startswith("request.") for c in rule.when)


def translate_rule(rule: Rule, namespace: str, tcp: bool, ports: PortMap) -> EnvoyJson:
    sources = [translate_source(f.source, namespace, tcp) for f in rule.from_]
    operations = [translate_operation(t.operation, tcp, ports) for t in rule.to]
    ids: list[EnvoyJson] = [any_of(sources, "id")] if sources else []
    perms: list[EnvoyJson] = [any_of(operations, "rule")] if operations else []
    for condition in rule.when:
        if tcp and condition.key.startswith("request."):
            continue
        kind, matcher = translate_condition(condition, namespace, ports)
        (ids if kind == "id" else perms).append(matcher)
    return {"permissions": [and_all(perms, "rule")], "principals": [and_all(ids, "id")]}


def build_rbac_rules(
    policies: Sequence[Config[AuthorizationPolicy]], action: str, tcp: bool, ports: PortMap
) -> EnvoyJson | None:
    """One RBAC ``rules`` block for an Istio action, or None when no policy has that action."""
    chosen = [p for p in policies if (p.spec.action or "ALLOW") == action]
    if not chosen:
        return None
    envoy_policies: EnvoyJson = {}
    for policy in chosen:
        for index, rule in enumerate(policy.spec.rules):
            if tcp and uses_http_fields(rule) and action == "ALLOW":
                continue
            name = names.rbac_policy(policy.namespace, policy.name, index)
            envoy_policies[name] = translate_rule(rule, policy.namespace, tcp, ports)
    return {"action": dict(ACTIONS)[action], "policies": envoy_policies}


def build_rbac_filters(
    mesh: MeshSnapshot, proxy: ProxyNode, tcp: bool, ports: PortMap
) -> list[JsonValue]:
    """The RBAC filters of an inbound chain, AUDIT then DENY then ALLOW (Istio's order)."""
    policies = applicable_policies(mesh, proxy)
    filters: list[JsonValue] = []
    for action, _ in ACTIONS:
        rules = build_rbac_rules(policies, action, tcp, ports)
        if rules is None:
            continue
        if tcp:
            body: EnvoyJson = {"rules": rules, "stat_prefix": f"tcp.{action.lower()}."}
            config = typed("envoy.extensions.filters.network.rbac.v3.RBAC", body)
            filters.append({"name": NETWORK_RBAC, "typed_config": config})
        else:
            config = typed("envoy.extensions.filters.http.rbac.v3.RBAC", {"rules": rules})
            filters.append({"name": HTTP_RBAC, "typed_config": config})
    return filters

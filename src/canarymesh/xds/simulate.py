"""A pure request simulator over an ``XdsSnapshot``: which listener, filter chain, RBAC decision,
virtual host, route and cluster(s) one request meets, the way Envoy would decide.

Called by tests (the Bookinfo intents: "jason -> reviews v2", "allow-nothing -> 403") and by
``canarymesh render`` users who want to check a config without running Envoy. It reads only the
generated JSON, so it proves the translation, not our intentions. Envoy semantics reproduced:
virtual host by domain (exact, then longest suffix wildcard, longest prefix wildcard, ``*``),
first matching route, RE2-style full-match regexes, RBAC DENY before ALLOW, and mTLS filter
chain selection (plaintext to a STRICT listener is reset).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from canarymesh.xds import names
from canarymesh.xds.snapshot import XdsSnapshot
from canarymesh.xds.types import EnvoyJson, JsonValue

DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}


@dataclass(frozen=True, slots=True)
class Request:
    """One request as a proxy sees it. ``port`` is the local listener port (None: the sidecar's
    outbound HTTP proxy listener, or a gateway's only listener); ``source_principal`` is the
    client certificate's SPIFFE id (None: plaintext)."""

    host: str
    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None
    source_principal: str | None = None
    source_ip: str = "127.0.0.1"
    scheme: str = "http"
    tls: bool = False  # TLS without a client certificate (a browser to an HTTPS gateway)

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.source_principal is not None


@dataclass(frozen=True, slots=True)
class Fault:
    delay: str | None = None
    delay_percent: float = 0.0
    abort_status: int | None = None
    abort_percent: float = 0.0


@dataclass(frozen=True, slots=True)
class RbacDecision:
    allowed: bool
    policy: str | None = None
    action: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome; ``error`` is None when the request is forwarded to ``clusters``."""

    listener: str | None = None
    route_config: str | None = None
    virtual_host: str | None = None
    route: str | None = None
    clusters: tuple[tuple[str, int], ...] = ()
    fault: Fault | None = None
    rbac: RbacDecision | None = None
    redirect: EnvoyJson | None = None
    status: int | None = None
    error: str | None = None

    @property
    def cluster(self) -> str | None:
        return self.clusters[0][0] if len(self.clusters) == 1 else None


def obj(value: JsonValue) -> EnvoyJson:
    return value if isinstance(value, dict) else {}


def seq(value: JsonValue) -> list[JsonValue]:
    return value if isinstance(value, list) else []


def typed_body(node: EnvoyJson) -> EnvoyJson:
    return obj(node.get("typed_config"))


def listener_port(listener: EnvoyJson) -> int | None:
    port = obj(obj(listener.get("address")).get("socket_address")).get("port_value")
    return port if isinstance(port, int) else None


def find_listener(snapshot: XdsSnapshot, port: int | None) -> EnvoyJson | None:
    listeners = list(snapshot.listeners)
    if port is None:
        named = snapshot.named(names.LISTENER)
        if names.OUTBOUND_HTTP_LISTENER in named:
            return named[names.OUTBOUND_HTTP_LISTENER]
        return listeners[0] if len(listeners) == 1 else None
    return next((item for item in listeners if listener_port(item) == port), None)


def choose_chain(listener: EnvoyJson, request: Request) -> EnvoyJson | None:
    transport = "tls" if request.uses_tls else "raw_buffer"
    default: EnvoyJson | None = None
    for chain_value in seq(listener.get("filter_chains")):
        chain = obj(chain_value)
        match = obj(chain.get("filter_chain_match"))
        if not match:
            default = default or chain
            continue
        wanted = match.get("transport_protocol")
        if wanted is not None and wanted != transport:
            continue
        server_names = seq(match.get("server_names"))
        if server_names and request.host.split(":")[0] not in server_names:
            continue
        return chain
    return default


def string_matches(matcher: EnvoyJson, value: str | None) -> bool:
    if value is None:
        return False
    if matcher.get("ignore_case"):
        value = value.lower()
        matcher = {k: (v.lower() if isinstance(v, str) else v) for k, v in matcher.items()}
    if "exact" in matcher:
        return value == matcher["exact"]
    if "prefix" in matcher:
        return value.startswith(str(matcher["prefix"]))
    if "suffix" in matcher:
        return value.endswith(str(matcher["suffix"]))
    if "contains" in matcher:
        return str(matcher["contains"]) in value
    if "safe_regex" in matcher:
        return re.fullmatch(str(obj(matcher["safe_regex"]).get("regex")), value) is not None
    return False


def request_header(request: Request, name: str) -> str | None:
    pseudo = {
        ":method": request.method,
        ":path": request.path,
        ":authority": request.host,
        ":scheme": request.scheme,
    }
    if name in pseudo:
        return pseudo[name]
    lowered = {k.lower(): v for k, v in request.headers.items()}
    return lowered.get(name.lower())


def header_matches(matcher: EnvoyJson, request: Request) -> bool:
    """Envoy's HeaderUtility::matchHeaders: a missing header fails every matcher but a presence
    test (``present_match: false`` asks for absence), inverted or not, unless
    ``treat_missing_header_as_empty`` makes it the value ""."""
    value = request_header(request, str(matcher.get("name")))
    invert = bool(matcher.get("invert_match"))
    present = matcher.get("present_match")
    if value is None and not matcher.get("treat_missing_header_as_empty"):
        return present is invert
    value = "" if value is None else value
    if "string_match" in matcher:
        result = string_matches(obj(matcher["string_match"]), value)
    else:
        result = present is not False
    return result != invert


def path_only(request: Request) -> str:
    return request.path.split("?", 1)[0]


def query_params(request: Request) -> dict[str, str]:
    query = request.path.split("?", 1)[1] if "?" in request.path else ""
    pairs = (part.partition("=") for part in query.split("&") if part)
    return {key: value for key, _, value in pairs}


def path_matches(match: EnvoyJson, request: Request) -> bool:
    path = path_only(request)
    sensitive = match.get("case_sensitive", True) is not False
    compare = path if sensitive else path.lower()

    def norm(value: JsonValue) -> str:
        return str(value) if sensitive else str(value).lower()

    if "path" in match:
        return compare == norm(match["path"])
    if "prefix" in match:
        return compare.startswith(norm(match["prefix"]))
    if "path_separated_prefix" in match:
        prefix = norm(match["path_separated_prefix"])
        return compare == prefix or compare.startswith(prefix + "/")
    if "safe_regex" in match:
        return re.fullmatch(str(obj(match["safe_regex"]).get("regex")), path) is not None
    return False


def route_matches(match: EnvoyJson, request: Request) -> bool:
    if not path_matches(match, request):
        return False
    if not all(header_matches(obj(h), request) for h in seq(match.get("headers"))):
        return False
    params = query_params(request)
    for param_value in seq(match.get("query_parameters")):
        param = obj(param_value)
        if not string_matches(obj(param.get("string_match")), params.get(str(param.get("name")))):
            return False
    return True


def domain_rank(domain: str, host: str) -> tuple[int, int] | None:
    """Envoy's virtual host order: exact, suffix wildcard, prefix wildcard, then ``*``."""
    domain, host = domain.lower(), host.lower()
    if domain == host:
        return (0, 0)
    if domain == "*":
        return (3, 0)
    if domain.startswith("*") and host.endswith(domain[1:]):
        return (1, -len(domain))
    if domain.endswith("*") and host.startswith(domain[:-1]):
        return (2, -len(domain))
    return None


def choose_vhost(route_config: EnvoyJson, host: str) -> EnvoyJson | None:
    best: tuple[tuple[int, int], EnvoyJson] | None = None
    for vhost_value in seq(route_config.get("virtual_hosts")):
        vhost = obj(vhost_value)
        for domain in seq(vhost.get("domains")):
            rank = domain_rank(str(domain), host)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, vhost)
    return best[1] if best else None


def percent(fraction: JsonValue) -> float:
    node = obj(fraction)
    numerator = node.get("numerator", 0)
    denominator = DENOMINATORS.get(str(node.get("denominator", "HUNDRED")), 100)
    return 100.0 * float(numerator if isinstance(numerator, int | float) else 0) / denominator


def fault_of(route: EnvoyJson) -> Fault | None:
    config = obj(obj(route.get("typed_per_filter_config")).get("envoy.filters.http.fault"))
    if not config:
        return None
    delay, abort = obj(config.get("delay")), obj(config.get("abort"))
    status = abort.get("http_status")
    return Fault(
        delay=str(delay["fixed_delay"]) if "fixed_delay" in delay else None,
        delay_percent=percent(delay.get("percentage")) if delay else 0.0,
        abort_status=status if isinstance(status, int) else None,
        abort_percent=percent(abort.get("percentage")) if abort else 0.0,
    )


def clusters_of(action: EnvoyJson) -> tuple[tuple[str, int], ...]:
    if "cluster" in action:
        return ((str(action["cluster"]), 100),)
    entries = seq(obj(action.get("weighted_clusters")).get("clusters"))
    out = []
    for entry_value in entries:
        entry = obj(entry_value)
        weight = entry.get("weight", 0)
        out.append((str(entry.get("name")), weight if isinstance(weight, int) else 0))
    return tuple(out)


# --- RBAC ---------------------------------------------------------------------------------------


def principal_matches(node: EnvoyJson, request: Request) -> bool:
    if node.get("any"):
        return True
    if "and_ids" in node:
        return all(principal_matches(obj(i), request) for i in seq(obj(node["and_ids"]).get("ids")))
    if "or_ids" in node:
        return any(principal_matches(obj(i), request) for i in seq(obj(node["or_ids"]).get("ids")))
    if "not_id" in node:
        return not principal_matches(obj(node["not_id"]), request)
    if "authenticated" in node:
        matcher = obj(obj(node["authenticated"]).get("principal_name"))
        return string_matches(matcher, request.source_principal)
    if "header" in node:
        return header_matches(obj(node["header"]), request)
    for key in ("direct_remote_ip", "remote_ip"):
        if key in node:
            return in_cidr(obj(node[key]), request.source_ip)
    return False  # metadata (JWT) and anything else: not present on the local mesh


def in_cidr(cidr: EnvoyJson, address: str) -> bool:
    network = ipaddress.ip_network(
        f"{cidr.get('address_prefix')}/{cidr.get('prefix_len')}", strict=False
    )
    return ipaddress.ip_address(address) in network


def permission_matches(node: EnvoyJson, request: Request, port: int) -> bool:
    if node.get("any"):
        return True
    if "and_rules" in node:
        rules = seq(obj(node["and_rules"]).get("rules"))
        return all(permission_matches(obj(r), request, port) for r in rules)
    if "or_rules" in node:
        rules = seq(obj(node["or_rules"]).get("rules"))
        return any(permission_matches(obj(r), request, port) for r in rules)
    if "not_rule" in node:
        return not permission_matches(obj(node["not_rule"]), request, port)
    if "header" in node:
        return header_matches(obj(node["header"]), request)
    if "url_path" in node:
        return string_matches(obj(obj(node["url_path"]).get("path")), path_only(request))
    if "destination_port" in node:
        return node["destination_port"] == port
    if "requested_server_name" in node:
        return string_matches(obj(node["requested_server_name"]), request.host.split(":")[0])
    return False


def matching_policy(rules: EnvoyJson, request: Request, port: int) -> str | None:
    policies = obj(rules.get("policies"))
    for name in sorted(policies):
        policy = obj(policies[name])
        perms = seq(policy.get("permissions"))
        ids = seq(policy.get("principals"))
        if any(permission_matches(obj(p), request, port) for p in perms) and any(
            principal_matches(obj(i), request) for i in ids
        ):
            return name
    return None


def evaluate_rbac(
    http_filters: Sequence[JsonValue], request: Request, port: int
) -> RbacDecision | None:
    decision: RbacDecision | None = None
    for filter_value in http_filters:
        flt = obj(filter_value)
        if flt.get("name") != "envoy.filters.http.rbac":
            continue
        rules = obj(typed_body(flt).get("rules"))
        action = str(rules.get("action", "ALLOW"))
        matched = matching_policy(rules, request, port)
        if action == "DENY" and matched is not None:
            return RbacDecision(False, matched, "DENY")
        if action == "ALLOW":
            if matched is None:
                return RbacDecision(False, None, "ALLOW")
            decision = RbacDecision(True, matched, "ALLOW")
    return decision


# --- the whole walk -----------------------------------------------------------------------------


def simulate(snapshot: XdsSnapshot, request: Request) -> Result:
    listener = find_listener(snapshot, request.port)
    if listener is None:
        return Result(error="NoListener")
    listener_name = str(listener.get("name"))
    chain = choose_chain(listener, request)
    if chain is None:
        return Result(listener=listener_name, error="NoFilterChain")
    tls_chain = "transport_socket" in chain
    if tls_chain != request.uses_tls:
        return Result(listener=listener_name, error="ConnectionReset")
    hcm = next(
        (
            typed_body(obj(f))
            for f in seq(chain.get("filters"))
            if obj(f).get("name") == "envoy.filters.network.http_connection_manager"
        ),
        None,
    )
    if hcm is None:
        return Result(listener=listener_name, error="NotHttp")
    port = listener_port(listener) or 0
    rbac = evaluate_rbac(seq(hcm.get("http_filters")), request, port)
    if rbac is not None and not rbac.allowed:
        return Result(listener=listener_name, rbac=rbac, status=403, error="RBAC: access denied")
    route_config = route_config_of(snapshot, hcm)
    config_name = str(route_config.get("name"))
    vhost = choose_vhost(route_config, request.host)
    if vhost is None:
        return Result(listener_name, config_name, rbac=rbac, status=404, error="NoRoute")
    if vhost.get("require_tls") == "ALL" and not request.uses_tls:
        return Result(listener_name, config_name, str(vhost.get("name")), rbac=rbac, status=301)
    for route_value in seq(vhost.get("routes")):
        route = obj(route_value)
        if route_matches(obj(route.get("match")), request):
            return route_result(listener_name, config_name, vhost, route, rbac)
    return Result(
        listener_name, config_name, str(vhost.get("name")), rbac=rbac, status=404, error="NoRoute"
    )


def route_config_of(snapshot: XdsSnapshot, hcm: EnvoyJson) -> EnvoyJson:
    if "route_config" in hcm:
        return obj(hcm["route_config"])
    name = str(obj(hcm.get("rds")).get("route_config_name"))
    return snapshot.named(names.ROUTE).get(name, {"name": name})


def route_result(
    listener: str, config: str, vhost: EnvoyJson, route: EnvoyJson, rbac: RbacDecision | None
) -> Result:
    base = Result(
        listener,
        config,
        str(vhost.get("name")),
        str(route.get("name")),
        rbac=rbac,
        fault=fault_of(route),
    )
    if "redirect" in route:
        return dataclasses.replace(base, redirect=obj(route["redirect"]), status=301)
    if "direct_response" in route:
        status = obj(route["direct_response"]).get("status")
        return dataclasses.replace(base, status=status if isinstance(status, int) else None)
    return dataclasses.replace(base, clusters=clusters_of(obj(route.get("route"))))

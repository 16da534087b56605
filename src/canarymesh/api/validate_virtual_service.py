"""Validation of VirtualService, following Istio's ``pkg/config/validation/validation.go``.
Pure; called by :mod:`canarymesh.api.validate` for one resource at a time.

Notable rule, checked against Istio's source: weights are *relative* (a destination gets
weight/sum), so Istio refuses only a negative weight and an all-zero split; a split that does
not add up to 100 is a warning here (CM0203), because canary steps read weights as percentages.
"""

from __future__ import annotations

from canarymesh.api import istio_networking as net
from canarymesh.api.checks import is_dns1123_label, problem_with_host
from canarymesh.api.limits import MAX_ENVOY_TOTAL_WEIGHT, MAX_WEIGHT
from canarymesh.api.objects import FieldPath
from canarymesh.api.reporter import Reporter
from canarymesh.api.validate_common import (
    check_duration,
    check_host,
    check_labels,
    check_percent,
    check_port,
    check_regex,
    check_string_match,
    check_string_matches,
)
from canarymesh.api.validate_route_order import check_rule_order

__all__ = ["validate_virtual_service"]

SPEC: FieldPath = ("spec",)
_RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
    "refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
    "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal",
    "resource-exhausted", "unavailable",
})  # fmt: skip


def validate_virtual_service(report: Reporter, vs: net.VirtualService) -> None:
    on_mesh = not vs.gateways or "mesh" in vs.gateways
    if not vs.hosts:
        # No hosts makes it a delegate (Istio's validation), which only an http list may follow.
        for field, present in (("gateways", vs.gateways), ("tcp", vs.tcp), ("tls", vs.tls)):
            if present:
                report("CM0204", (*SPEC, field), kind=field)
    valid = True
    for index, host in enumerate(vs.hosts):
        path = (*SPEC, "hosts", index)
        if host == "*" and on_mesh:
            report("CM0214", path, host)
            valid = False
        elif problem_with_host(host, allow_star=True, allow_ip=True) is not None:
            check_host(report, path, host, allow_star=True, allow_ip=True)
            valid = False
    if valid:
        _check_duplicate_hosts(report, vs.hosts)
    if not (vs.http or vs.tcp or vs.tls):
        report("CM0205", SPEC)
    for index, rule in enumerate(vs.http):
        _validate_http_route(report, (*SPEC, "http", index), rule)
    check_rule_order(report, vs)
    for index, tcp in enumerate(vs.tcp):
        path = (*SPEC, "tcp", index)
        if not tcp.route:
            report("CM0215", (*path, "route"), problem="a tcp rule needs a route")
        _validate_weights(report, path, [(r.weight, r.destination) for r in tcp.route])
        for m_index, match in enumerate(tcp.match):
            check_port(report, (*path, "match", m_index, "port"), match.port)
    for index, tls in enumerate(vs.tls):
        path = (*SPEC, "tls", index)
        if not tls.match or any(not m.sni_hosts for m in tls.match):
            report("CM0215", (*path, "match"), problem="a tls rule needs a match with sniHosts")
        for m_index, tls_match in enumerate(tls.match):
            for s_index, sni in enumerate(tls_match.sni_hosts):
                # An IP is only a warning for Istio (it goes against the SNI spec).
                check_host(report, (*path, "match", m_index, "sniHosts", s_index), sni,
                           allow_star=True, allow_ip=True)  # fmt: skip
        if not tls.route:
            report("CM0215", (*path, "route"), problem="a tls rule needs a route")
        _validate_weights(report, path, [(r.weight, r.destination) for r in tls.route])


def _validate_http_route(report: Reporter, path: FieldPath, rule: net.HTTPRoute) -> None:
    actions = [name for name, value in (
        ("route", rule.route), ("redirect", rule.redirect),
        ("directResponse", rule.direct_response), ("delegate", rule.delegate),
    ) if value]  # fmt: skip
    if not actions:
        report("CM0206", path)
    elif rule.redirect is not None and rule.direct_response is not None:
        report("CM0207", path, problem="redirect and directResponse cannot both be set")
    elif rule.route and (rule.redirect is not None or rule.direct_response is not None):
        other = "redirect" if rule.redirect is not None else "directResponse"
        report("CM0207", path, problem=f"route and {other} cannot both be set")
    for index, match in enumerate(rule.match):
        _validate_match(report, (*path, "match", index), match)
    _validate_weights(report, path, [(d.weight, d.destination) for d in rule.route])
    check_duration(report, (*path, "timeout"), rule.timeout)
    _validate_retries(report, (*path, "retries"), rule.retries)
    _validate_fault(report, (*path, "fault"), rule.fault)
    _validate_redirect(report, (*path, "redirect"), rule.redirect)
    _validate_rewrite(report, (*path, "rewrite"), rule.rewrite)
    if rule.direct_response is not None:
        status = rule.direct_response.status
        if not 200 <= status <= 599:
            report("CM0103", (*path, "directResponse", "status"), status,
                   expected="an HTTP status between 200 and 599")  # fmt: skip
    if rule.mirror is not None:
        _validate_destination(report, (*path, "mirror"), rule.mirror)
    check_percent(report, (*path, "mirrorPercentage"), rule.mirror_percentage)
    for index, mirror in enumerate(rule.mirrors):
        _validate_destination(report, (*path, "mirrors", index, "destination"), mirror.destination)
        check_percent(report, (*path, "mirrors", index, "percentage"), mirror.percentage)
    if rule.cors_policy is not None:
        for index, origin in enumerate(rule.cors_policy.allow_origins):
            check_string_match(report, (*path, "corsPolicy", "allowOrigins", index), origin)
        check_duration(report, (*path, "corsPolicy", "maxAge"), rule.cors_policy.max_age)


def _validate_match(report: Reporter, path: FieldPath, match: net.HTTPMatchRequest) -> None:
    for name, value in (("uri", match.uri), ("scheme", match.scheme), ("method", match.method),
                        ("authority", match.authority)):  # fmt: skip
        check_string_match(report, (*path, name), value)
    check_string_matches(report, (*path, "headers"), match.headers)
    check_string_matches(report, (*path, "queryParams"), match.query_params)
    check_string_matches(report, (*path, "withoutHeaders"), match.without_headers)
    for name in match.headers:
        if not name:
            report("CM0112", (*path, "headers", name), name)
    check_port(report, (*path, "port"), match.port)
    check_labels(report, (*path, "sourceLabels"), match.source_labels)


def _check_duplicate_hosts(report: Reporter, hosts: tuple[str, ...]) -> None:
    """Istio refuses two hosts of one VirtualService that overlap (reviews and reviews, or
    *.example.com and shop.example.com): which rules would a request follow?"""
    for index, host in enumerate(hosts):
        for other in hosts[:index]:
            if _overlap(host, other):
                problem = f"host {host!r} overlaps host {other!r} of this VirtualService"
                if host == other:
                    problem = f"host {host!r} is listed twice"
                report("CM0111", (*SPEC, "hosts", index), host, problem=problem)
                break


def _overlap(one: str, other: str) -> bool:
    one, other = one.lower().rstrip("."), other.lower().rstrip(".")
    if one == other or "*" in (one, other):
        return True
    for wild, name in ((one, other), (other, one)):
        if wild.startswith("*") and name.endswith(wild[1:]):
            return True
    return False


def _validate_weights(
    report: Reporter, path: FieldPath, routes: list[tuple[int | None, net.Destination]]
) -> None:
    total = 0
    for index, (weight, destination) in enumerate(routes):
        _validate_destination(report, (*path, "route", index, "destination"), destination)
        if weight is not None and weight < 0:
            report("CM0201", (*path, "route", index, "weight"), weight)
        elif weight is not None and weight > MAX_WEIGHT:
            expected = f"between 0 and {MAX_WEIGHT} (Istio's weight is a 32-bit integer)"
            report("CM0103", (*path, "route", index, "weight"), weight, expected=expected)
            return  # the sum of weights Istio refuses says nothing more
        total += max(weight or 0, 0)
    if total > MAX_ENVOY_TOTAL_WEIGHT:
        expected = f"weights adding up to at most {MAX_ENVOY_TOTAL_WEIGHT} (Envoy's limit)"
        report("CM0103", (*path, "route"), total, expected=expected)
    elif len(routes) > 1:
        if total == 0:
            report("CM0202", (*path, "route"), count=len(routes))
        elif total != 100:
            report("CM0203", (*path, "route"), total=total)


def _validate_destination(report: Reporter, path: FieldPath, destination: net.Destination) -> None:
    if not destination.host:
        report("CM0104", (*path, "host"))
    elif destination.host == "*":
        report("CM0111", (*path, "host"), "*", problem="a destination host cannot be *")
    else:
        # Not an IP: Istio validates a destination host as a domain (10.0.0.1 has an
        # all-digit top-level domain).
        check_host(report, (*path, "host"), destination.host, allow_star=False)
    if destination.subset is not None and not is_dns1123_label(destination.subset):
        report("CM0106", (*path, "subset"), destination.subset, what="a subset name",
               form="a DNS-1123 label")  # fmt: skip
    if destination.port is not None:
        check_port(report, (*path, "port", "number"), destination.port.number)


def _validate_retries(report: Reporter, path: FieldPath, retries: net.HTTPRetry | None) -> None:
    if retries is None:
        return
    attempts = retries.attempts or 0
    if attempts < 0:
        report("CM0103", (*path, "attempts"), attempts, expected="0 or more")
    elif attempts == 0 and (retries.per_try_timeout is not None or retries.retry_on):
        problem = "perTryTimeout or retryOn is set but attempts is 0 (retries disabled)"
        report("CM0211", path, problem=problem)
    check_duration(report, (*path, "perTryTimeout"), retries.per_try_timeout)
    check_duration(report, (*path, "backoff"), retries.backoff)
    for policy in (retries.retry_on or "").split(",") if retries.retry_on else []:
        if policy not in _RETRY_ON and not (policy.isdigit() and 100 <= int(policy) <= 599):
            report("CM0211", (*path, "retryOn"), retries.retry_on,
                   problem=f"{policy!r} is not a valid retryOn policy")  # fmt: skip


def _validate_fault(
    report: Reporter, path: FieldPath, fault: net.HTTPFaultInjection | None
) -> None:
    if fault is None:
        return
    if fault.delay is None and fault.abort is None:
        report("CM0208", path)
    if fault.delay is not None:
        delay = fault.delay
        check_percent(report, (*path, "delay", "percentage"), delay.percentage)
        if delay.percent is not None and not 0 <= delay.percent <= 100:
            report("CM0103", (*path, "delay", "percent"), delay.percent,
                   expected="between 0 and 100")  # fmt: skip
        if delay.fixed_delay is None and delay.exponential_delay is None:
            report("CM0104", (*path, "delay", "fixedDelay"))
        check_duration(report, (*path, "delay", "fixedDelay"), delay.fixed_delay)
    if fault.abort is not None:
        abort = fault.abort
        check_percent(report, (*path, "abort", "percentage"), abort.percentage)
        status = abort.http_status
        if status is not None and not 200 <= status <= 599:
            report("CM0103", (*path, "abort", "httpStatus"), status,
                   expected="an HTTP status between 200 and 599")  # fmt: skip
        if status is None and abort.grpc_status is None and abort.http2_error is None:
            report("CM0209", (*path, "abort"))


def _validate_redirect(
    report: Reporter, path: FieldPath, redirect: net.HTTPRedirect | None
) -> None:
    if redirect is None:
        return
    if not (redirect.uri or redirect.prefix_rewrite or redirect.authority or redirect.scheme
            or redirect.port or redirect.derive_port):  # fmt: skip
        report("CM0210", path, problem="redirect must specify uri, authority, scheme or port")
    code = redirect.redirect_code
    if code is not None and code != 0 and not 300 <= code <= 399:
        report("CM0103", (*path, "redirectCode"), code, expected="a 3xx redirect code")
    if redirect.scheme is not None and redirect.scheme not in ("http", "https"):
        report("CM0105", (*path, "scheme"), redirect.scheme, choices="http, https")
    check_port(report, (*path, "port"), redirect.port)


def _validate_rewrite(report: Reporter, path: FieldPath, rewrite: net.HTTPRewrite | None) -> None:
    if rewrite is None:
        return
    if rewrite.uri and rewrite.uri_regex_rewrite is not None:
        report("CM0212", path, problem="rewrite may contain only one of uri or uriRegexRewrite")
    if not rewrite.uri and rewrite.uri_regex_rewrite is None and not rewrite.authority:
        report("CM0212", path, problem="rewrite must set uri, uriRegexRewrite or authority")
    regex = rewrite.uri_regex_rewrite
    if regex is not None and regex.match is not None:
        check_regex(report, (*path, "uriRegexRewrite", "match"), regex.match)

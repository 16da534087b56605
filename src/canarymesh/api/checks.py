"""Single-value checks shared by validation: names, labels, hosts, regexes, ports. Pure.

Each returns a reason (a sentence fragment) when the value is wrong, or None. The rules follow
Kubernetes' apimachinery (DNS-1123 names, label syntax) and Istio's ``pkg/config/validation``
(hosts, RE2 regexes).
"""

from __future__ import annotations

import ipaddress
import re

__all__ = [
    "problem_with_host",
    "problem_with_label_key",
    "problem_with_label_value",
    "problem_with_regex",
    "is_dns1123_label",
    "is_dns1123_subdomain",
]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_LABEL_ANY_CASE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# Constructs Python's ``re`` accepts but RE2 (Envoy's regex engine) does not.
_NOT_RE2 = (
    (re.compile(r"\(\?<?[=!]"), "lookaround assertions are not supported"),
    (re.compile(r"\\[1-9]|\(\?P=|\\k<"), "backreferences are not supported"),
    (re.compile(r"\(\?>"), "atomic groups are not supported"),
    (re.compile(r"\(\?\("), "conditional groups are not supported"),
    (re.compile(r"(?<!\\)[*+?}][+]"), "possessive quantifiers are not supported"),
)


def is_dns1123_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


def is_dns1123_subdomain(name: str) -> bool:
    return len(name) <= 253 and all(is_dns1123_label(part) for part in name.split("."))


def problem_with_label_key(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and not is_dns1123_subdomain(prefix):
        return f"label key {key!r} has an invalid prefix (a DNS subdomain is required)"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return (
            f"label key {key!r} is invalid: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def problem_with_label_value(value: str) -> str | None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (
            f"label value {value!r} is invalid: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def problem_with_regex(pattern: str) -> str | None:
    if len(pattern) > 1024:
        return "regex is too large, max length allowed is 1024"
    for construct, reason in _NOT_RE2:
        if construct.search(pattern):
            return reason
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"invalid regex: {exc}"
    return None


def problem_with_host(host: str, *, allow_star: bool) -> str | None:
    """Istio's ValidateWildcardDomain: DNS labels, an optional leading ``*.``, or an IP."""
    if host == "*":
        return None if allow_star else "the host * is not allowed here"
    if not host:
        return "host must not be empty"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if len(host) > 255:
        return f"host {host!r} is longer than 255 characters"
    name = host.removeprefix("*.") if host.startswith("*.") else host
    if name.startswith("*") and name != "*":
        return f"host {host!r}: a wildcard is allowed only as the whole first label (*.example.com)"
    labels = name.rstrip(".").split(".")
    for label in labels:
        if not _DNS_LABEL_ANY_CASE.match(label) or len(label) > 63:
            return f"host {host!r} is not a valid DNS name (label {label!r})"
    return None

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
# Istio's IsWildcardDNS1123Label: "*", or a DNS label with an optional "*" or "*-" before it.
_WILDCARD_LABEL = re.compile(r"^(\*|(\*|\*-)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)$")
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


def problem_with_host(host: str, *, allow_star: bool, allow_ip: bool = False) -> str | None:
    """Istio's ValidateWildcardDomain: at most 255 characters, a first label that may be a
    wildcard (``*``, ``*.example.com``, even ``*foo.example.com``), DNS labels after it, a
    top-level domain that is not all digits (so ``10.0.0.1`` is not a host name), one optional
    trailing dot. ``allow_ip``: where Istio also takes an IP address (VirtualService hosts)."""
    if host == "*":
        return None if allow_star else "the host * is not allowed here"
    if not host:
        return "host must not be empty"
    if len(host) > 255:
        return f"host {host[:40]!r}... is longer than 255 characters"
    if _is_ip(host):
        return None if allow_ip else f"host {host!r} is an IP address; a host name is required here"
    first, dot, rest = host.partition(".")
    if not _WILDCARD_LABEL.match(first) or len(first) > 63:
        if "*" in first:
            return f"host {host!r}: a wildcard is allowed only at the start of the first label"
        return f"host {host!r} is not a valid DNS name (label {first!r})"
    if not dot:
        return None
    labels = rest.split(".")
    if labels[-1].isdigit():
        return f"host {host!r}: the top-level domain {labels[-1]!r} cannot be all digits"
    for index, label in enumerate(labels):
        if index == len(labels) - 1 and label == "":
            break  # one trailing dot: an unambiguous name such as istio.io.
        if not _DNS_LABEL_ANY_CASE.match(label) or len(label) > 63:
            return f"host {host!r} is not a valid DNS name (label {label!r})"
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True

"""Single-value rules: durations, regexes (RE2 subset), hosts, DNS names, labels."""

from __future__ import annotations

import datetime

import pytest

from canarymesh.api.checks import (
    is_dns1123_label,
    is_dns1123_subdomain,
    problem_with_host,
    problem_with_label_key,
    problem_with_label_value,
    problem_with_regex,
)
from canarymesh.api.durations import parse_duration, problem_with_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7s", datetime.timedelta(seconds=7)),
        ("0.5s", datetime.timedelta(milliseconds=500)),
        ("100ms", datetime.timedelta(milliseconds=100)),
        ("1m", datetime.timedelta(minutes=1)),
        ("1h30m", datetime.timedelta(hours=1, minutes=30)),
        (".25s", datetime.timedelta(milliseconds=250)),
    ],
)
def test_valid_durations(text: str, expected: datetime.timedelta) -> None:
    assert parse_duration(text) == expected
    assert not problem_with_duration(text)


@pytest.mark.parametrize(
    "text", ["7", "-1s", "+1s", "", "1 s", "s", "1d", "0s", "500us", "1.0005s"]
)
def test_durations_istio_refuses(text: str) -> None:
    assert problem_with_duration(text)


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("^/api/v[0-9]+/.*$", None),
        ("(?P<version>v[0-9])", None),
        ("a(?=b)", "lookaround assertions are not supported"),
        ("(?<!a)b", "lookaround assertions are not supported"),
        ("(a)\\1", "backreferences are not supported"),
        ("(?>a)", "atomic groups are not supported"),
        ("a++", "possessive quantifiers are not supported"),
        ("c\\++", None),
        ("a" * 1025, "regex is too large, max length allowed is 1024"),
        ("(", "invalid regex: missing ), unterminated subpattern at position 0"),
    ],
)
def test_regexes_follow_re2(pattern: str, problem: str | None) -> None:
    assert problem_with_regex(pattern) == problem


@pytest.mark.parametrize(
    ("host", "allow_star", "ok"),
    [
        ("reviews", False, True),
        ("reviews.default.svc.cluster.local", False, True),
        ("*.example.com", False, True),
        ("10.0.0.1", False, False),  # an IP only where Istio takes one (allow_ip)
        ("*foo.example.com", False, True),  # Istio's wildcard label: * or *- before a label
        ("*-foo.example.com", False, True),
        ("istio.io.", False, True),  # one trailing dot
        ("istio.io..", False, False),
        ("reviews.123", False, False),  # an all-digit top-level domain
        ("a" * 64 + ".example.com", False, False),
        ("x." * 127 + "com", False, False),  # 257 characters
        ("*", True, True),
        ("*", False, False),
        ("reviews_v1", False, False),
        ("foo.*.com", False, False),
        ("-bad.example.com", False, False),
        ("", False, False),
    ],
)
def test_hosts(host: str, allow_star: bool, ok: bool) -> None:
    assert (problem_with_host(host, allow_star=allow_star) is None) is ok


@pytest.mark.parametrize("host", ["10.0.0.1", "::1", "2001:db8::1"])
def test_ip_hosts_only_where_istio_takes_them(host: str) -> None:
    assert problem_with_host(host, allow_star=False, allow_ip=True) is None
    assert "IP address" in str(problem_with_host(host, allow_star=False))


def test_dns_names() -> None:
    assert is_dns1123_label("reviews-v1")
    assert not is_dns1123_label("reviews.v1")
    assert not is_dns1123_label("Reviews")
    assert not is_dns1123_label("a" * 64)
    assert is_dns1123_subdomain("reviews.v1")
    assert not is_dns1123_subdomain("reviews..v1")


def test_labels() -> None:
    assert problem_with_label_key("app.kubernetes.io/name") is None
    assert problem_with_label_key("version") is None
    assert problem_with_label_key("Bad_Prefix/name") is not None
    assert problem_with_label_key("a" * 64) is not None
    assert problem_with_label_value("") is None
    assert problem_with_label_value("v2-mysql-vm") is None
    assert problem_with_label_value("two words") is not None

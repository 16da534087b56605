"""Checks of values that appear in many kinds: durations, string matches, percentages, ports,
labels, hosts. Pure; called by the per-kind validation modules.
"""

from __future__ import annotations

from collections.abc import Mapping

from canarymesh.api.checks import (
    problem_with_host,
    problem_with_label_key,
    problem_with_label_value,
    problem_with_regex,
)
from canarymesh.api.durations import problem_with_duration
from canarymesh.api.istio_networking import Percent, StringMatch
from canarymesh.api.objects import FieldPath
from canarymesh.api.reporter import Reporter

__all__ = [
    "check_duration",
    "check_host",
    "check_labels",
    "check_percent",
    "check_port",
    "check_regex",
    "check_string_match",
]


def check_duration(
    report: Reporter, path: FieldPath, value: str | None, *, allow_zero: bool = False
) -> None:
    if value is None or (allow_zero and value.strip("0.") in ("s", "ms", "m", "h")):
        return
    if problem_with_duration(value):
        report("CM0107", path, value)


def check_regex(report: Reporter, path: FieldPath, pattern: str) -> None:
    if not pattern:
        report("CM0112", path, pattern)
        return
    problem = problem_with_regex(pattern)
    if problem is not None:
        report("CM0108", path, pattern, problem=problem)


def check_string_match(report: Reporter, path: FieldPath, match: StringMatch | None) -> None:
    if match is None:
        return
    kinds = match.kinds_set
    # An empty match is valid: on a header it matches the header's presence (Istio's docs).
    if len(kinds) > 1:
        report("CM0109", path, found=" and ".join(kinds))
        return
    if match.prefix == "":
        report("CM0112", (*path, "prefix"), "")
    if match.regex is not None:
        check_regex(report, (*path, "regex"), match.regex)


def check_string_matches(
    report: Reporter, path: FieldPath, matches: Mapping[str, StringMatch]
) -> None:
    for name, match in matches.items():
        check_string_match(report, (*path, name), match)


def check_percent(report: Reporter, path: FieldPath, percent: Percent | None) -> None:
    """Istio's validatePercentage: 0, or between 0.0001 and 100."""
    if percent is None or percent.value is None:
        return
    value = percent.value
    if value < 0 or value > 100 or 0 < value < 0.0001:
        report("CM0103", (*path, "value"), value, expected="between 0 and 100")


def check_port(report: Reporter, path: FieldPath, number: int | None) -> None:
    if number is not None and not 1 <= number <= 65535:
        report("CM0103", path, number, expected="a port between 1 and 65535")


def check_labels(report: Reporter, path: FieldPath, labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        problem = problem_with_label_key(key) or problem_with_label_value(value)
        if problem is not None:
            report("CM0110", (*path, key), value, problem=problem)


def check_host(
    report: Reporter, path: FieldPath, host: str, *, allow_star: bool, allow_ip: bool = False
) -> None:
    problem = problem_with_host(host, allow_star=allow_star, allow_ip=allow_ip)
    if problem is not None:
        report("CM0111", path, host, problem=problem)

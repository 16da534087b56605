"""Rules and matches of a VirtualService that can never be used: CM0213 (Istio's IST0130,
VirtualServiceUnreachableRule) and CM0216 (IST0131, VirtualServiceIneffectiveMatch), as
Istio's validation finds them (analyzeUnreachableHTTPRules and its TCP and TLS twins in
pkg/config/validation/validation.go). Pure; called by
:mod:`canarymesh.api.validate_virtual_service`.

Rules are tried in order. After a rule without match nothing is reachable; a match equal to an
earlier one (its name aside) is ineffective, and a rule whose matches all are is unreachable;
an HTTP match whose URI prefix starts with an earlier match's prefix, with the same port and
equal or narrower method, authority, headers, query parameters and withoutHeaders, is
ineffective too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from canarymesh.api import istio_networking as net
from canarymesh.api.objects import FieldPath
from canarymesh.api.reporter import Reporter

__all__ = ["check_rule_order"]

SPEC: FieldPath = ("spec",)


@dataclass(frozen=True, slots=True)
class PrefixMatch:
    """An HTTP match with a URI prefix, reduced to what decides whether another covers it."""

    path: FieldPath
    rule: str
    match: str
    prefix: str
    port: int | None
    method: str
    authority: str
    headers: dict[str, str]
    query: dict[str, str]
    without: dict[str, str]


def check_rule_order(report: Reporter, vs: net.VirtualService) -> None:
    prefixes = check_kind(report, "http", [(r.name, r.match) for r in vs.http])
    for i, later in enumerate(prefixes):
        for earlier in prefixes[:i]:
            if later.prefix != earlier.prefix and covers(earlier, later):
                shown = f"{earlier.match} of prefix {earlier.prefix} on rule {earlier.rule}"
                report("CM0216", later.path, match=f"{later.match} of prefix {later.prefix}",
                       rule=later.rule, reason=f"covered by match {shown}")  # fmt: skip
    check_kind(report, "tcp", [(None, r.match) for r in vs.tcp])
    check_kind(report, "tls", [(None, r.match) for r in vs.tls])


def check_kind(
    report: Reporter, kind: str, rules: Sequence[tuple[str | None, Sequence[BaseModel]]]
) -> list[PrefixMatch]:
    seen: dict[str, int] = {}
    catch_all: int | None = None
    prefixes: list[PrefixMatch] = []
    for index, (name, matches) in enumerate(rules):
        path = (*SPEC, kind, index)
        shown = repr(name) if name else f"#{index}"
        if not matches:
            if catch_all is not None:
                reason = f"rule #{catch_all} before it has no match either; only the last may"
                report("CM0213", path, rule=shown, reason=reason)
            catch_all = index
            continue
        if catch_all is not None:
            reason = f"rule #{catch_all} before it has no match and takes every request"
            report("CM0213", path, rule=shown, reason=reason)
            continue
        repeated = 0
        for m_index, match in enumerate(matches):
            key = match_key(match)
            match_name = getattr(match, "name", None)
            match_shown = repr(match_name) if match_name else f"#{m_index}"
            if key in seen:
                first = rules[seen[key]][0]
                first_shown = repr(first) if first else f"#{seen[key]}"
                report("CM0216", (*path, "match", m_index), match=match_shown, rule=shown,
                       reason=f"the same match as rule {first_shown}")  # fmt: skip
                repeated += 1
                continue
            seen[key] = index
            if isinstance(match, net.HTTPMatchRequest):
                prefix = prefix_match(match, (*path, "match", m_index), shown, match_shown)
                if prefix is not None:
                    prefixes.append(prefix)
        if repeated == len(matches):
            report("CM0213", path, rule=shown, reason="all its matches are used by earlier rules")
    return prefixes


def match_key(match: BaseModel) -> str:
    data = match.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude={"name"})
    return json.dumps(data, sort_keys=True)


def exact_or_prefix(match: net.StringMatch | None) -> str:
    if match is None:
        return ""
    if match.exact:
        return f"exact:{match.exact}"
    return f"prefix:{match.prefix}" if match.prefix else ""


def prefix_match(
    match: net.HTTPMatchRequest, path: FieldPath, rule: str, shown: str
) -> PrefixMatch | None:
    if match.uri is None or not match.uri.prefix:
        return None
    return PrefixMatch(
        path, rule, shown, match.uri.prefix, match.port,
        # A match without method is read as GET, as Istio's check does.
        exact_or_prefix(match.method) or "exact:GET", exact_or_prefix(match.authority),
        {k: exact_or_prefix(v) for k, v in match.headers.items()},
        {k: exact_or_prefix(v) for k, v in match.query_params.items()},
        {k: exact_or_prefix(v) for k, v in match.without_headers.items()},
    )  # fmt: skip


def narrower(earlier: str, later: str) -> bool:
    """Istio's test: equal, or the earlier condition's text starts with the later's."""
    return earlier == later or earlier.startswith(later)


def same_keys_narrower(earlier: dict[str, str], later: dict[str, str]) -> bool:
    return earlier.keys() == later.keys() and all(
        narrower(value, later[key]) for key, value in earlier.items()
    )


def covers(earlier: PrefixMatch, later: PrefixMatch) -> bool:
    return (
        later.prefix.startswith(earlier.prefix)
        and later.port == earlier.port
        and narrower(earlier.method, later.method)
        and narrower(earlier.authority, later.authority)
        and same_keys_narrower(earlier.headers, later.headers)
        and same_keys_narrower(earlier.query, later.query)
        and same_keys_narrower(earlier.without, later.without)
    )

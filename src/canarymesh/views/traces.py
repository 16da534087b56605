"""Traces (Jaeger-like): search summaries and the waterfall of one trace. Pure.

Called by the dashboard's ``/api/traces`` and ``/api/trace/{id}`` with Zipkin v2 JSON spans (from
:mod:`canarymesh.runtime.local.tracing` or any Zipkin-compatible server). Times in Zipkin are
microseconds since the epoch; the views give milliseconds relative to the trace's start.

Proxies send their spans in batches (every ``tracing.zipkin.flush_interval_ms``), so a trace
arrives piece by piece and a view must not present a trace as whole while pieces are on their
way. :func:`completeness` tells: *receiving* while the newest span ended less than ``settle_us``
ago (the flush interval and a margin), or while a span's parent, or the server span a proxy
forwarded to inside the mesh, is missing; *partial* when such a gap is still there after
``give_up_us``; *complete* otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import urlsplit

__all__ = [
    "Completeness",
    "TraceState",
    "TraceSummary",
    "Waterfall",
    "WaterfallRow",
    "completeness",
    "request_of",
    "trace_summary",
    "waterfall",
]

Span = Mapping[str, object]
TraceState = Literal["complete", "receiving", "partial"]
# Without a clock (now_us None) a trace is judged by its shape alone.
GIVE_UP_US = 30_000_000
# An Envoy span that forwarded to a mesh service: the upstream's own server span will follow.
_MESH_UPSTREAM = re.compile(r"^outbound\|\d+\|[^|]*\|[^|]+\.svc\.cluster\.local$")


@dataclass(frozen=True, slots=True)
class Completeness:
    """Whether a trace may still grow: its state, its gaps, and the age of its newest span."""

    state: TraceState
    missing_parents: int
    missing_children: int
    age_ms: float | None


@dataclass(frozen=True, slots=True)
class TraceSummary:
    trace_id: str
    root_service: str
    root_operation: str
    root_request: str
    start_us: int
    duration_ms: float
    spans: int
    services: tuple[str, ...]
    errors: int
    state: TraceState = "complete"


@dataclass(frozen=True, slots=True)
class WaterfallRow:
    span_id: str
    parent_id: str | None
    depth: int
    service: str
    operation: str
    request: str
    kind: str
    offset_ms: float
    duration_ms: float
    status: str
    error: bool
    tags: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Waterfall:
    trace_id: str
    duration_ms: float
    rows: tuple[WaterfallRow, ...]
    state: TraceState = "complete"
    missing_parents: int = 0
    missing_children: int = 0


def _service(span: Span) -> str:
    endpoint = span.get("localEndpoint")
    return str(endpoint.get("serviceName", "unknown")) if isinstance(endpoint, dict) else "unknown"


def _tags(span: Span) -> dict[str, str]:
    tags = span.get("tags")
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def request_of(tags: Mapping[str, str]) -> str:
    """``GET /productpage`` from Envoy's ``http.method`` and ``http.url`` tags ("" without)."""
    url = tags.get("http.url", "")
    if not url:
        return ""
    return f"{tags.get('http.method', '')} {urlsplit(url).path or '/'}".strip()


def _error(span: Span) -> bool:
    tags = _tags(span)
    return "error" in tags or tags.get("http.status_code", "").startswith("5")


def _start(span: Span) -> int:
    return int(cast(int, span.get("timestamp", 0)))


def _duration(span: Span) -> int:
    return int(cast(int, span.get("duration", 0)))


def _root(spans: Sequence[Span]) -> Span:
    ids = {str(s.get("id")) for s in spans}
    roots = [s for s in spans if str(s.get("parentId")) not in ids]
    return min(roots or spans, key=_start)


def completeness(
    spans: Sequence[Span],
    now_us: int | None = None,
    settle_us: int = 0,
    give_up_us: int = GIVE_UP_US,
) -> Completeness:
    """Whether ``spans`` are the whole trace, at ``now_us`` (None: judge the shape only)."""
    ids = {str(s.get("id")) for s in spans}
    parents = {str(s.get("parentId")) for s in spans if s.get("parentId") is not None}
    missing_parents = len(parents - ids)
    missing_children = sum(
        1 for s in spans if _forwards_in_mesh(s) and str(s.get("id")) not in parents
    )
    gaps = missing_parents + missing_children > 0
    if now_us is None:
        return Completeness("partial" if gaps else "complete", missing_parents, missing_children,
                            None)  # fmt: skip
    age = now_us - max((_start(s) + _duration(s) for s in spans), default=now_us)
    if age < settle_us or (gaps and age < give_up_us):
        state: TraceState = "receiving"
    else:
        state = "partial" if gaps else "complete"
    return Completeness(state, missing_parents, missing_children, age / 1000)


def _forwards_in_mesh(span: Span) -> bool:
    """A gateway's or a sidecar's outbound span whose request reached an upstream in the mesh
    (Envoy's response_flags ``-``): that upstream's sidecar reports the next span."""
    tags = _tags(span)
    upstream = tags.get("upstream_cluster", "")
    return bool(_MESH_UPSTREAM.match(upstream)) and tags.get("response_flags") == "-"


def trace_summary(
    spans: Sequence[Span], now_us: int | None = None, settle_us: int = 0
) -> TraceSummary:
    if not spans:
        raise ValueError("a trace has at least one span")
    root = _root(spans)
    start = min(_start(s) for s in spans)
    end = max(_start(s) + _duration(s) for s in spans)
    return TraceSummary(
        trace_id=str(root.get("traceId", "")),
        root_service=_service(root),
        root_operation=str(root.get("name", "")),
        root_request=request_of(_tags(root)),
        start_us=start,
        duration_ms=(end - start) / 1000,
        spans=len(spans),
        services=tuple(sorted({_service(s) for s in spans})),
        errors=sum(_error(s) for s in spans),
        state=completeness(spans, now_us, settle_us).state,
    )


def waterfall(spans: Sequence[Span], now_us: int | None = None, settle_us: int = 0) -> Waterfall:
    """Rows in depth-first order, children by start time: the order a waterfall reads."""
    if not spans:
        raise ValueError("a trace has at least one span")
    start = min(_start(s) for s in spans)
    ids = {str(s.get("id")) for s in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span.get("parentId")
        key = str(parent) if parent is not None and str(parent) in ids else None
        children.setdefault(key, []).append(span)
    rows: list[WaterfallRow] = []

    def visit(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=_start):
            span_id = str(span.get("id"))
            rows.append(_row(span, parent, depth, start))
            visit(span_id, depth + 1)

    visit(None, 0)
    end = max(_start(s) + _duration(s) for s in spans)
    found = completeness(spans, now_us, settle_us)
    return Waterfall(
        str(spans[0].get("traceId", "")),
        (end - start) / 1000,
        tuple(rows),
        found.state,
        found.missing_parents,
        found.missing_children,
    )


def _row(span: Span, parent: str | None, depth: int, start: int) -> WaterfallRow:
    tags = _tags(span)
    return WaterfallRow(
        span_id=str(span.get("id")),
        parent_id=parent,
        depth=depth,
        service=_service(span),
        operation=str(span.get("name", "")),
        request=request_of(tags),
        kind=str(span.get("kind", "")),
        offset_ms=(_start(span) - start) / 1000,
        duration_ms=_duration(span) / 1000,
        status=tags.get("http.status_code", ""),
        error=_error(span),
        tags=tags,
    )

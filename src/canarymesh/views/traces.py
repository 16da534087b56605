"""Traces (Jaeger-like): search summaries and the waterfall of one trace. Pure.

Called by the dashboard's ``/api/traces`` and ``/api/trace/{id}`` with Zipkin v2 JSON spans (from
:mod:`canarymesh.runtime.local.tracing` or any Zipkin-compatible server). Times in Zipkin are
microseconds since the epoch; the views give milliseconds relative to the trace's start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

__all__ = [
    "TraceSummary",
    "Waterfall",
    "WaterfallRow",
    "request_of",
    "trace_summary",
    "waterfall",
]

Span = Mapping[str, object]


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


def trace_summary(spans: Sequence[Span]) -> TraceSummary:
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
    )


def waterfall(spans: Sequence[Span]) -> Waterfall:
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
    return Waterfall(str(spans[0].get("traceId", "")), (end - start) / 1000, tuple(rows))


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

"""Trace summaries and the waterfall from Zipkin v2 spans as Envoy sends them."""

from __future__ import annotations

import pytest

from canarymesh.views.traces import request_of, trace_summary, waterfall

TRACE = "c0667827a1da094436aefc40bb0e10d9"
T0 = 1_795_687_124_390_000


def span(
    span_id: str, parent: str | None, service: str, kind: str, start: int, dur: int, **tags: str
) -> dict[str, object]:
    body: dict[str, object] = {
        "traceId": TRACE,
        "id": span_id,
        "name": f"{service}:9080",
        "kind": kind,
        "timestamp": T0 + start,
        "duration": dur,
        "localEndpoint": {"serviceName": service},
        "tags": {"http.status_code": "200", **tags},
    }
    if parent:
        body["parentId"] = parent
    return body


# Shuffled on purpose: the collector stores spans in arrival order, children first.
SPANS = [
    span("d", "c", "details-v1", "SERVER", 1500, 1600),
    span(
        "a",
        None,
        "istio-ingressgateway",
        "SERVER",
        0,
        14000,
        **{"http.url": "http://127.0.0.1:8080/productpage?u=normal", "http.method": "GET"},
    ),
    span("e", "b", "productpage-v1", "CLIENT", 5000, 5600),
    span("c", "b", "productpage-v1", "CLIENT", 1000, 3500),
    span("b", "a", "productpage-v1", "SERVER", 400, 12500),
    span("f", "e", "reviews-v2", "SERVER", 5300, 5000, error="true", **{"http.status_code": "503"}),
]


def test_waterfall_is_depth_first_with_children_by_start_time() -> None:
    wf = waterfall(SPANS)
    assert [(r.span_id, r.parent_id, r.depth) for r in wf.rows] == [
        ("a", None, 0),
        ("b", "a", 1),
        ("c", "b", 2),
        ("d", "c", 3),
        ("e", "b", 2),
        ("f", "e", 3),
    ]
    assert wf.duration_ms == 14.0
    first, *_, last = wf.rows
    assert (first.offset_ms, first.duration_ms, first.request) == (0.0, 14.0, "GET /productpage")
    assert (last.offset_ms, last.status, last.error) == (5.3, "503", True)


def test_summary_names_the_root_request_services_and_errors() -> None:
    summary = trace_summary(SPANS)
    assert summary.root_service == "istio-ingressgateway"
    assert summary.root_request == "GET /productpage"
    assert summary.spans == 6 and summary.errors == 1
    assert summary.services == (
        "details-v1",
        "istio-ingressgateway",
        "productpage-v1",
        "reviews-v2",
    )


def test_a_span_whose_parent_never_arrived_is_a_root_and_empty_traces_are_refused() -> None:
    orphan = span("z", "missing", "ratings-v1", "SERVER", 20, 5)
    wf = waterfall([*SPANS, orphan])
    assert [r.span_id for r in wf.rows if r.depth == 0] == ["a", "z"]
    with pytest.raises(ValueError):
        waterfall([])
    assert request_of({}) == "" and request_of({"http.url": "http://x"}) == "/"

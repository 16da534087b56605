"""Trace summaries and the waterfall from Zipkin v2 spans as Envoy sends them."""

from __future__ import annotations

import pytest

from canarymesh.views.traces import completeness, request_of, trace_summary, waterfall

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


# Spans as Envoy tags them: the upstream cluster a proxy forwarded to and Envoy's response flags.
def hop(
    span_id: str, parent: str | None, service: str, kind: str, upstream: str, flags: str = "-"
) -> dict[str, object]:
    return span(span_id, parent, service, kind, 0, 1000, upstream_cluster=upstream,
                response_flags=flags)  # fmt: skip


GATEWAY = hop("g", None, "istio-ingressgateway", "SERVER",
              "outbound|9080||productpage.default.svc.cluster.local")  # fmt: skip
PRODUCTPAGE = hop("p", "g", "productpage-v1", "SERVER", "inbound|9080||")
TO_DETAILS = hop("c", "p", "productpage-v1", "CLIENT",
                 "outbound|9080||details.default.svc.cluster.local")  # fmt: skip
DETAILS = hop("d", "c", "details-v1", "SERVER", "inbound|9080||")
WHOLE = [GATEWAY, PRODUCTPAGE, TO_DETAILS, DETAILS]
END = T0 + 1000  # when the newest of these spans ended
SETTLE = 1_200_000


def test_a_whole_trace_is_complete_once_the_flush_interval_has_passed() -> None:
    assert completeness(WHOLE, END + SETTLE, SETTLE).state == "complete"
    assert completeness(WHOLE).state == "complete"  # its shape alone says so too
    # Its newest span ended a moment ago: other proxies may not have flushed theirs yet.
    young = completeness(WHOLE, END + SETTLE - 1, SETTLE)
    assert (young.state, young.age_ms) == ("receiving", (SETTLE - 1) / 1000)


@pytest.mark.parametrize(
    ("spans", "parents", "children"),
    [
        ([GATEWAY, TO_DETAILS, DETAILS], 1, 1),  # productpage's server span: a parent and a child
        ([GATEWAY, PRODUCTPAGE, TO_DETAILS], 0, 1),  # details has not reported yet
        ([PRODUCTPAGE, TO_DETAILS, DETAILS], 1, 0),  # the gateway's span is still in its buffer
    ],
)
def test_a_trace_with_a_gap_is_receiving_then_partial(
    spans: list[dict[str, object]], parents: int, children: int
) -> None:
    found = completeness(spans, END + SETTLE, SETTLE)
    assert (found.state, found.missing_parents, found.missing_children) == (
        "receiving", parents, children,
    )  # fmt: skip
    assert completeness(spans, END + 31_000_000, SETTLE).state == "partial"
    assert completeness(spans).state == "partial"


def test_only_requests_that_reached_a_mesh_upstream_expect_its_span() -> None:
    no_upstream = hop("c", "p", "productpage-v1", "CLIENT",
                      "outbound|9080||details.default.svc.cluster.local", flags="UH")  # fmt: skip
    outside = hop("c", "p", "productpage-v1", "CLIENT", "outbound|443||www.googleapis.com")
    for client in (no_upstream, outside):
        assert completeness([GATEWAY, PRODUCTPAGE, client], END + SETTLE, SETTLE).state == (
            "complete"
        )


def test_summary_and_waterfall_carry_the_state() -> None:
    assert trace_summary(WHOLE, END, SETTLE).state == "receiving"
    assert trace_summary(WHOLE, END + SETTLE, SETTLE).state == "complete"
    partial = waterfall([GATEWAY, PRODUCTPAGE, TO_DETAILS], END + 60_000_000, SETTLE)
    assert (partial.state, partial.missing_parents, partial.missing_children) == ("partial", 0, 1)

"""The mesh graph view model against canned Prometheus answers: nodes, edges, health, layout."""

from __future__ import annotations

import pytest

from canarymesh.errors import ConfigError
from canarymesh.views.mesh_graph import mesh_graph
from tests.unit.views.promdata import edge, matrix, vector

GW = "istio-ingressgateway"
EDGES = [
    (GW, "productpage-v1", 3.0),
    ("productpage-v1", "details-v1", 3.0),
    ("productpage-v1", "reviews-v1", 1.0),
    ("productpage-v1", "reviews-v2", 1.0),
    ("productpage-v1", "reviews-v3", 1.0),
    ("reviews-v2", "ratings-v1", 1.0),
    ("reviews-v3", "ratings-v1", 1.0),
]


def bookinfo_graph(errors: dict[tuple[str, str], float] | None = None):  # type: ignore[no-untyped-def]
    rates = vector([(edge(s, t), r) for s, t, r in EDGES])
    failing = vector([(edge(s, t), r) for (s, t), r in (errors or {}).items()])
    p99 = vector([(edge(s, t), 12.5) for s, t, _ in EDGES[:-1]] + [(edge(*EDGES[-1][:2]), "NaN")])
    return mesh_graph(rates, failing, p99, "1m")


def test_every_workload_is_a_node_grouped_by_app_with_its_version() -> None:
    graph = bookinfo_graph()
    assert {n.workload for n in graph.nodes} == {GW, *(t for _, t, _ in EDGES)}
    reviews = [n for n in graph.nodes if n.app == "reviews"]
    assert [n.version for n in reviews] == ["v1", "v2", "v3"]
    assert {g.app for g in graph.groups} == {GW, "productpage", "details", "reviews", "ratings"}
    gateway = next(n for n in graph.nodes if n.workload == GW)
    assert gateway.version == "" and gateway.namespace == "istio-system"


def test_edges_carry_rate_error_percentage_and_p99() -> None:
    graph = bookinfo_graph({("productpage-v1", "reviews-v3"): 0.25})
    by_pair = {(e.source, e.target): e for e in graph.edges}
    assert len(graph.edges) == 7
    bad = by_pair[("default/productpage-v1", "default/reviews-v3")]
    assert (bad.rps, bad.error_pct, bad.p99_ms, bad.health) == (1.0, 25.0, 12.5, "failing")
    good = by_pair[("default/productpage-v1", "default/details-v1")]
    assert (good.error_pct, good.health) == (0.0, "healthy")
    # A quantile over no requests is NaN in Prometheus and None (JSON null) here.
    assert by_pair[("default/reviews-v3", "default/ratings-v1")].p99_ms is None


def test_a_little_error_is_degraded_and_node_health_follows_incoming_edges() -> None:
    graph = bookinfo_graph({("productpage-v1", "details-v1"): 0.03})
    details = next(n for n in graph.nodes if n.workload == "details-v1")
    assert details.error_pct == pytest.approx(1.0)
    assert details.health == "degraded"
    productpage = next(n for n in graph.nodes if n.workload == "productpage-v1")
    assert (productpage.rps_in, productpage.rps_out) == (3.0, 6.0)


def test_layout_puts_apps_in_columns_by_call_depth_and_nothing_overlaps() -> None:
    graph = bookinfo_graph()
    x = {n.workload: n.x for n in graph.nodes}
    assert x[GW] < x["productpage-v1"] < x["details-v1"] == x["reviews-v1"] < x["ratings-v1"]
    boxes = [(n.x, n.y) for n in graph.nodes]
    assert len(set(boxes)) == len(boxes)
    assert all(n.x + 150 <= graph.width and n.y + 44 <= graph.height for n in graph.nodes)


def test_a_cycle_does_not_loop_forever() -> None:
    rates = vector([(edge("a-v1", "b-v1"), 1), (edge("b-v1", "a-v1"), 1)])
    graph = mesh_graph(rates, vector([]), vector([]), "5m")
    assert len(graph.nodes) == 2 and len(graph.edges) == 2


def test_no_traffic_is_an_empty_graph_and_a_matrix_is_refused() -> None:
    empty = mesh_graph(vector([]), vector([]), vector([]), "1m")
    assert (empty.nodes, empty.edges) == ((), ())
    with pytest.raises(ConfigError, match="expected a Prometheus vector"):
        mesh_graph(matrix([]), vector([]), vector([]), "1m")

"""PromQL of the dashboard's panels, as data: one definition per query, for two front ends.

The local dashboard (:mod:`canarymesh.dashboard`) renders these with concrete values
(``interval="1m"``, ``service="reviews.default.svc.cluster.local"``); the Grafana dashboards in
``addons/grafana.yaml`` carry the same text rendered with Grafana's variables
(:data:`GRAFANA_VARIABLES`), and :data:`GRAFANA_PANELS` names the panel target each one fills
(``tests/unit/dashboard/test_panels.py`` keeps the two equal). Rendering goes through
:func:`canarymesh.analysis.queries.render_query`, so a missing variable fails loudly.

The service panels read ``reporter="destination"``: each request counted once, at the server's
sidecar. The graph's edges read ``reporter="source"``: the caller's proxy knows both ends (the
gateway included, whose requests a server may see from an unknown peer), and its view of errors
and latency is what the caller lived through (fault injection and timeouts included), as in Kiali.
"""

from __future__ import annotations

from collections.abc import Mapping

from canarymesh.analysis.queries import render_query

__all__ = [
    "EDGE_LABELS",
    "GRAFANA_PANELS",
    "GRAFANA_VARIABLES",
    "PANEL_QUERIES",
    "QUANTILES",
    "panel_query",
]

# The labels that identify one edge of the mesh graph: caller workload -> served workload.
EDGE_LABELS = (
    "source_workload",
    "source_workload_namespace",
    "source_app",
    "source_version",
    "destination_workload",
    "destination_workload_namespace",
    "destination_app",
    "destination_version",
    "destination_service",
)
_EDGE = ", ".join(EDGE_LABELS)
_DEST = 'reporter="destination"'
_SRC = 'reporter="source"'
_SERVICE = 'reporter="destination", destination_service=~"{{ service }}"'
_RATE = "[{{ interval }}]"
QUANTILES = ("0.50", "0.90", "0.99")


def _by_version_quantile(q: str) -> str:
    return (
        f"histogram_quantile({q}, sum by (le, destination_version) (rate("
        f"istio_request_duration_milliseconds_bucket{{{_SERVICE}}}{_RATE})))"
    )


PANEL_QUERIES: Mapping[str, str] = {
    # Mesh graph: one series per edge.
    "edge-request-rate": f"sum by ({_EDGE}) (rate(istio_requests_total{{{_SRC}}}{_RATE}))",
    "edge-error-rate": (
        f'sum by ({_EDGE}) (rate(istio_requests_total{{{_SRC}, response_code=~"5.."}}{_RATE}))'
    ),
    "edge-p99": (
        f"histogram_quantile(0.99, sum by (le, {_EDGE}) (rate("
        f"istio_request_duration_milliseconds_bucket{{{_SRC}}}{_RATE})))"
    ),
    # Service view: one series per version of the service, over time.
    "version-request-rate": (
        f"sum by (destination_version) (rate(istio_requests_total{{{_SERVICE}}}{_RATE}))"
    ),
    "version-success-rate": (
        f"sum by (destination_version) (rate(istio_requests_total"
        f'{{{_SERVICE}, response_code!~"5.."}}{_RATE}))'
        f" / sum by (destination_version) (rate(istio_requests_total{{{_SERVICE}}}{_RATE}))"
    ),
    **{f"version-p{q[2:]}": _by_version_quantile(q) for q in QUANTILES},
    # Services that received traffic (the service view's picker).
    "services": f"sum by (destination_service) (rate(istio_requests_total{{{_DEST}}}{_RATE}))",
}

GRAFANA_VARIABLES: Mapping[str, str] = {"interval": "$__rate_interval", "service": "$service"}

# query name -> (dashboard file in addons/grafana.yaml, panel title, target refId)
GRAFANA_PANELS: Mapping[str, tuple[str, str, str]] = {
    "version-success-rate": ("istio-service-dashboard.json", "Success rate by version", "A"),
    "version-p50": ("istio-service-dashboard.json", "Latency by version", "A"),
    "version-p99": ("istio-service-dashboard.json", "Latency by version", "B"),
    "services": ("istio-mesh-dashboard.json", "Requests by service", "A"),
}


def panel_query(name: str, variables: Mapping[str, str]) -> str:
    """The PromQL of panel query ``name``; an unknown name is a KeyError naming the known ones."""
    if name not in PANEL_QUERIES:
        raise KeyError(f"no panel query {name!r}; known: {', '.join(sorted(PANEL_QUERIES))}")
    return render_query(PANEL_QUERIES[name], variables)

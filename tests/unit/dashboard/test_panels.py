"""Panel PromQL: the exact text the local dashboard and the Grafana dashboards query."""

from __future__ import annotations

import pytest

from canarymesh.analysis.panels import panel_query
from canarymesh.errors import ConfigError

EDGE = (
    "source_workload, source_workload_namespace, source_app, source_version, "
    "destination_workload, destination_workload_namespace, destination_app, "
    "destination_version, destination_service"
)
LOCAL = {"interval": "1m", "service": "reviews\\\\.default\\\\.svc\\\\.cluster\\\\.local"}


def test_graph_queries_render_exactly() -> None:
    assert panel_query("edge-request-rate", LOCAL) == (
        f'sum by ({EDGE}) (rate(istio_requests_total{{reporter="source"}}[1m]))'
    )
    assert panel_query("edge-error-rate", LOCAL) == (
        f"sum by ({EDGE}) (rate(istio_requests_total"
        '{reporter="source", response_code=~"5.."}[1m]))'
    )
    assert panel_query("edge-p99", {"interval": "30s"}) == (
        f"histogram_quantile(0.99, sum by (le, {EDGE}) (rate("
        'istio_request_duration_milliseconds_bucket{reporter="source"}[30s])))'
    )


def test_service_queries_render_exactly() -> None:
    host = "reviews\\\\.default\\\\.svc\\\\.cluster\\\\.local"
    selector = f'reporter="destination", destination_service=~"{host}"'
    assert panel_query("version-request-rate", LOCAL) == (
        f"sum by (destination_version) (rate(istio_requests_total{{{selector}}}[1m]))"
    )
    assert panel_query("version-p90", LOCAL) == (
        "histogram_quantile(0.90, sum by (le, destination_version) (rate("
        f"istio_request_duration_milliseconds_bucket{{{selector}}}[1m])))"
    )
    assert panel_query("version-success-rate", LOCAL) == (
        "sum by (destination_version) (rate(istio_requests_total"
        f'{{{selector}, response_code!~"5.."}}[1m]))'
        f" / sum by (destination_version) (rate(istio_requests_total{{{selector}}}[1m]))"
    )


def test_a_missing_variable_or_an_unknown_query_fails_loudly() -> None:
    with pytest.raises(ConfigError, match="uses service"):
        panel_query("version-p50", {"interval": "1m"})
    with pytest.raises(KeyError, match="known: edge-error-rate"):
        panel_query("edge-p95", LOCAL)

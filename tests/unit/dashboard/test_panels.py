"""Panel PromQL: exact text, and the same text in the Grafana dashboards of addons/grafana.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from canarymesh.analysis.panels import GRAFANA_PANELS, GRAFANA_VARIABLES, PANEL_QUERIES, panel_query
from canarymesh.dashboard.grafana import main as grafana_main
from canarymesh.dashboard.grafana import sync_grafana
from canarymesh.errors import ConfigError

REPO = Path(__file__).parents[3]
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


def _grafana_targets() -> dict[tuple[str, str, str], str]:
    found = {}
    for doc in yaml.safe_load_all((REPO / "addons" / "grafana.yaml").read_text()):
        if doc and doc.get("kind") == "ConfigMap":
            for key, text in doc["data"].items():
                if not key.endswith(".json"):
                    continue
                for panel in json.loads(text)["panels"]:
                    for target in panel["targets"]:
                        found[(key, panel["title"], target["refId"])] = target["expr"]
    return found


def test_grafana_dashboards_use_the_same_query_text() -> None:
    targets = _grafana_targets()
    assert set(GRAFANA_PANELS) <= set(PANEL_QUERIES)
    for name, where in GRAFANA_PANELS.items():
        assert where in targets, f"{name}: no panel target {where} in addons/grafana.yaml"
        assert targets[where] == panel_query(name, GRAFANA_VARIABLES), name


def test_sync_rewrites_a_drifted_expression_and_leaves_the_rest(tmp_path: Path) -> None:
    text = (REPO / "addons" / "grafana.yaml").read_text()
    assert sync_grafana(text) == text
    right = panel_query("version-p99", GRAFANA_VARIABLES)
    drifted = text.replace(json.dumps(right), json.dumps(right.replace("0.99", "0.95")))
    assert drifted != text
    assert sync_grafana(drifted) == text
    path = tmp_path / "grafana.yaml"
    path.write_text(drifted)
    assert grafana_main([str(path), "--check"]) == 1
    assert path.read_text() == drifted
    assert grafana_main([str(path)]) == 0
    assert path.read_text() == text

"""The Grafana dashboards of addons/grafana.yaml are the ones canarymesh.dashboard.grafana renders.

Every panel target's expression is one of canarymesh.analysis.panels' queries, so the Grafana
dashboards and the local dashboard cannot query different things; the committed file cannot drift
from the renderer; the writer replaces the dashboards' blocks and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.analysis.panels import GRAFANA_VARIABLES, PANEL_QUERIES, panel_query
from canarymesh.dashboard.grafana import (
    DASHBOARDS,
    Dashboard,
    Panel,
    Target,
    main,
    render_dashboard,
    render_dashboards,
    sync_grafana,
)
from canarymesh.errors import ConfigError

REPO = Path(__file__).parents[3]
ADDON = REPO / "addons" / "grafana.yaml"


def _committed() -> dict[str, Any]:
    found = {}
    for doc in yaml.safe_load_all(ADDON.read_text()):
        if doc and doc.get("kind") == "ConfigMap":
            for key, text in doc["data"].items():
                if key.endswith(".json"):
                    found[key] = json.loads(text)
    return found


def test_the_committed_dashboards_are_the_rendered_ones() -> None:
    assert _committed() == render_dashboards()
    assert sync_grafana(ADDON.read_text()) == ADDON.read_text()
    assert main([str(ADDON), "--check"]) == 0


def test_every_target_is_a_panel_query_rendered_for_grafana() -> None:
    grafana = {panel_query(name, GRAFANA_VARIABLES): name for name in PANEL_QUERIES}
    used = set()
    for board in _committed().values():
        for panel in board["panels"]:
            for target in panel["targets"]:
                assert target["expr"] in grafana, (board["title"], panel["title"])
                used.add(grafana[target["expr"]])
    # The local dashboard's service view and rollout timeline queries are on Grafana too.
    assert {"version-request-rate", "version-success-rate", "version-p50", "version-p99"} <= used
    # Only the mesh graph's per-edge queries (a graph, not a chart) are local-only.
    assert set(PANEL_QUERIES) - used == {"edge-request-rate", "edge-error-rate", "edge-p99"}


def test_the_local_dashboard_and_grafana_differ_only_in_variables() -> None:
    local = {"interval": "1m", "service": "reviews\\\\.default\\\\.svc\\\\.cluster\\\\.local"}
    grafana = panel_query("version-p99", GRAFANA_VARIABLES)
    assert grafana.replace("$__rate_interval", "1m").replace("$service", local["service"]) == (
        panel_query("version-p99", local)
    )


def test_service_and_canary_boards_show_the_split_and_each_versions_health() -> None:
    boards = render_dashboards()
    for key in ("istio-service-dashboard.json", "canarymesh-rollouts-dashboard.json"):
        targets = {
            t["legendFormat"]: t["expr"]
            for p in boards[key]["panels"]
            for t in p["targets"]
            if "legendFormat" in t
        }
        for legend in ("{{destination_version}} P50", "{{destination_version}} P99"):
            assert "by (le, destination_version)" in targets[legend]
        exprs = [t["expr"] for p in boards[key]["panels"] for t in p["targets"]]
        assert panel_query("version-traffic-share", GRAFANA_VARIABLES) in exprs
    canary = json.dumps(boards["canarymesh-rollouts-dashboard.json"])
    for metric in ("rollout_weight", "rollout_phase", "rollout_decisions_total"):
        assert f"canarymesh_{metric}" in canary


def test_layout_flows_left_to_right_and_wraps_rows() -> None:
    board = render_dashboards()["istio-mesh-dashboard.json"]
    grid = [p["gridPos"] for p in board["panels"]]
    assert [(g["x"], g["y"]) for g in grid[:6]] == [
        (0, 0),
        (6, 0),
        (12, 0),
        (18, 0),
        (0, 4),
        (12, 4),
    ]
    assert grid[-1] == {"h": 8, "w": 24, "x": 0, "y": 20}
    for board in render_dashboards().values():
        ids = [p["id"] for p in board["panels"]]
        assert ids == list(range(1, len(ids) + 1))
        assert all(g["gridPos"]["x"] + g["gridPos"]["w"] <= 24 for g in board["panels"])


def test_tables_are_instant_and_multi_target_panels_get_distinct_refs() -> None:
    board = render_dashboards()["istio-mesh-dashboard.json"]
    (table,) = [p for p in board["panels"] if p["type"] == "table"]
    assert table["targets"][0]["instant"] is True and table["targets"][0]["format"] == "table"
    (latency,) = [p for p in board["panels"] if p["title"].startswith("P50 / P90 / P99")]
    assert [t["refId"] for t in latency["targets"]] == ["A", "B", "C"]


def test_bad_specs_fail_loudly() -> None:
    wide = Dashboard("u", "T", "d", "t", (), (Panel("p", (Target("services"),), width=25),))
    with pytest.raises(ConfigError, match="width must be 1..24"):
        render_dashboard(wide)
    unknown = Dashboard("u", "T", "d", "t", (), (Panel("p", (Target("no-such-query"),)),))
    with pytest.raises(KeyError, match="no panel query 'no-such-query'"):
        render_dashboard(unknown)


def test_sync_rewrites_a_drifted_dashboard_and_leaves_the_rest(tmp_path: Path) -> None:
    text = ADDON.read_text()
    right = panel_query("version-p99", GRAFANA_VARIABLES)
    drifted = text.replace(json.dumps(right), json.dumps(right.replace("0.99", "0.95")))
    drifted = drifted.replace('"title": "Phase"', '"title": "Phase (edited by hand)"')
    assert drifted != text
    assert sync_grafana(drifted) == text
    path = tmp_path / "grafana.yaml"
    path.write_text(drifted)
    assert main([str(path), "--check"]) == 1
    assert path.read_text() == drifted
    assert main([str(path)]) == 0
    assert path.read_text() == text


def test_a_file_without_a_dashboard_block_is_an_error() -> None:
    text = ADDON.read_text().replace("  istio-workload-dashboard.json: |", "  renamed.json: |")
    with pytest.raises(ConfigError, match="istio-workload-dashboard.json: expected one"):
        sync_grafana(text)


def test_every_dashboard_is_in_the_spec() -> None:
    assert set(DASHBOARDS) == set(_committed())

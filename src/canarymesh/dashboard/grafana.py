"""The Grafana dashboards of ``addons/grafana.yaml``, generated from the dashboard's own PromQL.

Each dashboard is a small declarative spec here (variables, and panels naming their queries);
:func:`render_dashboards` turns the specs into Grafana's JSON, every target's ``expr`` being a
query of :data:`canarymesh.analysis.panels.PANEL_QUERIES` rendered with Grafana's variables, and
panels laid out left to right on Grafana's 24-column grid. Pure.

``python -m canarymesh.dashboard.grafana addons/grafana.yaml`` writes the rendered JSON into the
file's ConfigMaps in place (each ``<file>.json: |`` block; the rest of the file stays as written);
``--check`` only reports drift (exit 1). ``tests/unit/dashboard/test_grafana.py`` asserts the
committed file equals the rendered output.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canarymesh.analysis.panels import GRAFANA_VARIABLES, panel_query
from canarymesh.errors import ConfigError

__all__ = ["DASHBOARDS", "main", "render_dashboards", "sync_grafana"]

_GRID_WIDTH = 24
_PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}


@dataclass(frozen=True)
class Target:
    query: str  # a name in PANEL_QUERIES
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    targets: tuple[Target, ...]
    unit: str = ""
    kind: str = "timeseries"  # Grafana's panel type
    width: int = 12
    height: int = 8
    description: str = ""

    @property
    def instant(self) -> bool:
        # A table shows one row per series now, not a history.
        return self.kind == "table"


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str  # Grafana's label_values(...) variable query


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    tag: str
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]


def _stat(title: str, query: str, unit: str, width: int = 8, description: str = "") -> Panel:
    return Panel(title, (Target(query),), unit, "stat", width, 4, description)


def _quantiles(prefix: str, legend: str = "") -> tuple[Target, ...]:
    sep = " " if legend else ""
    return tuple(Target(f"{prefix}-p{q}", f"{legend}{sep}P{q}") for q in ("50", "90", "99"))


_DEST = 'istio_requests_total{reporter="destination"}'
_SERVICE = Variable("service", "Service", f"label_values({_DEST}, destination_service)")
_VERSION = "{{destination_version}}"

DASHBOARDS: Mapping[str, Dashboard] = {
    "istio-mesh-dashboard.json": Dashboard(
        "istio-mesh",
        "Istio Mesh Dashboard",
        "Every service of the mesh: request volume, success rate and latency, from Istio's "
        "standard metrics.",
        "istio",
        (),
        (
            _stat(
                "Global request volume",
                "mesh-request-rate",
                "reqps",
                6,
                "Requests per second across the mesh, counted once (by the caller).",
            ),
            _stat("Global success rate (non-5xx)", "mesh-success-rate", "percentunit", 6),
            _stat("4xx responses", "mesh-4xx-rate", "reqps", 6),
            _stat("5xx responses", "mesh-5xx-rate", "reqps", 6),
            Panel("Requests by service", (Target("services", "{{destination_service}}"),), "reqps"),
            Panel(
                "Success rate by service",
                (Target("services-success-rate", "{{destination_service}}"),),
                "percentunit",
            ),
            Panel(
                "P50 / P90 / P99 latency by service",
                _quantiles("services", "{{destination_service}}"),
                "ms",
            ),
            Panel(
                "TCP bytes received by service",
                (Target("services-tcp-received-bytes", "{{destination_service}}"),),
                "Bps",
            ),
            Panel("Workloads", (Target("workloads"),), "reqps", "table", 24),
        ),
    ),
    "istio-service-dashboard.json": Dashboard(
        "istio-service",
        "Istio Service Dashboard",
        "One service: what it receives (per version and per caller), how fast, and how often "
        "it fails.",
        "istio",
        (_SERVICE,),
        (
            _stat("Request volume", "service-request-rate", "reqps"),
            _stat("Success rate (non-5xx)", "service-success-rate", "percentunit"),
            _stat("P99 latency", "service-p99", "ms"),
            Panel("Requests by version", (Target("version-request-rate", _VERSION),), "reqps"),
            Panel(
                "Traffic split by version",
                (Target("version-traffic-share", _VERSION),),
                "percentunit",
                description="Each version's share of the service's requests.",
            ),
            Panel(
                "Success rate by version",
                (Target("version-success-rate", _VERSION),),
                "percentunit",
            ),
            Panel("Latency by version", _quantiles("version", _VERSION), "ms"),
            Panel(
                "Requests by version and response code",
                (Target("service-requests-by-code", f"{_VERSION} {{{{response_code}}}}"),),
                "reqps",
            ),
            Panel(
                "Requests by caller",
                (
                    Target(
                        "service-requests-by-caller",
                        "{{source_workload}}.{{source_workload_namespace}}",
                    ),
                ),
                "reqps",
            ),
            Panel(
                "Server-side mTLS share",
                (Target("service-mtls-share"),),
                "percentunit",
                description="Share of the requests that arrived over Istio mutual TLS.",
            ),
            Panel(
                "Response flags (faults, timeouts, no route)",
                (Target("service-response-flags", "{{response_flags}}"),),
                "reqps",
            ),
        ),
    ),
    "istio-workload-dashboard.json": Dashboard(
        "istio-workload",
        "Istio Workload Dashboard",
        "One workload (a Deployment): what it serves and what it calls.",
        "istio",
        (
            Variable(
                "namespace",
                "Namespace",
                f"label_values({_DEST}, destination_workload_namespace)",
            ),
            Variable(
                "workload",
                "Workload",
                'label_values(istio_requests_total{reporter="destination", '
                'destination_workload_namespace=~"$namespace"}, destination_workload)',
            ),
        ),
        (
            _stat("Incoming request volume", "workload-request-rate", "reqps"),
            _stat("Incoming success rate (non-5xx)", "workload-success-rate", "percentunit"),
            _stat("Incoming P99 latency", "workload-p99", "ms"),
            Panel(
                "Incoming requests by caller and response code",
                (
                    Target(
                        "workload-requests-by-caller",
                        "{{source_workload}} {{response_code}}",
                    ),
                ),
                "reqps",
            ),
            Panel("Incoming latency", _quantiles("workload"), "ms"),
            Panel(
                "Outgoing requests by destination and response code",
                (
                    Target(
                        "workload-outgoing-requests",
                        "{{destination_service}} {{response_code}}",
                    ),
                ),
                "reqps",
            ),
            Panel(
                "Outgoing latency by destination (P99)",
                (Target("workload-outgoing-p99", "{{destination_service}}"),),
                "ms",
            ),
            Panel(
                "TCP traffic",
                (
                    Target("workload-tcp-sent-bytes", "sent to {{destination_service}}"),
                    Target("workload-tcp-received-bytes", "received from {{destination_service}}"),
                ),
                "Bps",
                width=24,
            ),
        ),
    ),
    "canarymesh-rollouts-dashboard.json": Dashboard(
        "canarymesh-rollouts",
        "Canary Mesh Rollouts",
        "Canary rollouts run by canarymesh: the weight and phase the controller set, its "
        "decisions, and the traffic split, success rate and latency of each version it compares.",
        "canarymesh",
        (
            Variable(
                "namespace", "Namespace", "label_values(canarymesh_rollout_weight, namespace)"
            ),
            Variable(
                "canary",
                "Canary",
                'label_values(canarymesh_rollout_weight{namespace=~"$namespace"}, canary)',
            ),
            Variable(
                "service",
                "Service",
                'label_values(istio_requests_total{reporter="destination", '
                'destination_service_namespace=~"$namespace"}, destination_service)',
            ),
        ),
        (
            Panel(
                "Canary weight",
                (Target("rollout-weight", "{{namespace}}/{{canary}}"),),
                "percent",
                description="Percent of the traffic the controller sends to the canary version.",
            ),
            Panel(
                "Phase",
                (Target("rollout-phase"),),
                kind="table",
                description="The current phase of each rollout (the series of "
                "canarymesh_rollout_phase whose value is 1).",
            ),
            Panel(
                "Traffic split by version (measured)",
                (Target("version-traffic-share", _VERSION),),
                "percentunit",
                description="Each version's share of the service's requests, as its sidecars "
                "counted them: it should follow the canary weight.",
            ),
            Panel("Requests by version", (Target("version-request-rate", _VERSION),), "reqps"),
            Panel(
                "Success rate by version (non-5xx)",
                (Target("version-success-rate", _VERSION),),
                "percentunit",
            ),
            Panel("Latency by version", _quantiles("version", _VERSION), "ms"),
            Panel(
                "Controller decisions",
                (Target("rollout-decisions", "{{canary}}: {{decision}}"),),
                kind="bargauge",
                width=24,
                description="Decisions in the time range: promote a step, hold, roll back, "
                "complete.",
            ),
        ),
    ),
}


def _variable(v: Variable) -> dict[str, Any]:
    return {
        "name": v.name,
        "label": v.label,
        "type": "query",
        "datasource": _PROMETHEUS,
        "query": {"query": v.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "definition": v.query,
        "refresh": 2,  # on time range change: new versions appear without a reload
        "sort": 1,
        "multi": False,
        "includeAll": False,
        "current": {},
        "options": [],
    }


def _target(ref: str, target: Target, instant: bool) -> dict[str, Any]:
    found: dict[str, Any] = {
        "datasource": _PROMETHEUS,
        "refId": ref,
        "expr": panel_query(target.query, GRAFANA_VARIABLES),
    }
    if target.legend:
        found["legendFormat"] = target.legend
    if instant:
        found |= {"format": "table", "instant": True}
    return found


def _layout(panels: Sequence[Panel]) -> list[dict[str, int]]:
    """Grid positions: left to right, a new row when the next panel does not fit."""
    positions, x, y, row_height = [], 0, 0, 0
    for panel in panels:
        if not 0 < panel.width <= _GRID_WIDTH:
            raise ConfigError(f"panel {panel.title!r}: width must be 1..{_GRID_WIDTH}")
        if x + panel.width > _GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        positions.append({"h": panel.height, "w": panel.width, "x": x, "y": y})
        x, row_height = x + panel.width, max(row_height, panel.height)
    return positions


def _panel(number: int, panel: Panel, grid: dict[str, int]) -> dict[str, Any]:
    refs = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    found: dict[str, Any] = {
        "id": number,
        "type": panel.kind,
        "title": panel.title,
        "datasource": _PROMETHEUS,
        "gridPos": grid,
        "targets": [_target(refs[i], t, panel.instant) for i, t in enumerate(panel.targets)],
        "fieldConfig": {"defaults": {"unit": panel.unit} if panel.unit else {}, "overrides": []},
        "options": {},
    }
    if panel.description:
        found["description"] = panel.description
    return found


def render_dashboard(board: Dashboard) -> dict[str, Any]:
    """Grafana's JSON model of ``board``."""
    return {
        "uid": board.uid,
        "title": board.title,
        "description": board.description,
        "tags": [board.tag],
        "editable": False,
        "graphTooltip": 1,  # a shared crosshair: the same moment on every panel
        "refresh": "10s",
        "schemaVersion": 39,
        "time": {"from": "now-30m", "to": "now"},
        "timezone": "browser",
        "templating": {"list": [_variable(v) for v in board.variables]},
        "panels": [
            _panel(i, p, g)
            for i, (p, g) in enumerate(zip(board.panels, _layout(board.panels), strict=True), 1)
        ],
    }


def render_dashboards() -> dict[str, dict[str, Any]]:
    """ConfigMap key (``<name>.json``) -> Grafana's JSON model, for every dashboard."""
    return {key: render_dashboard(board) for key, board in DASHBOARDS.items()}


def _block(key: str, board: Mapping[str, Any]) -> str:
    body = json.dumps(board, indent=2, ensure_ascii=False)
    return f"  {key}: |\n" + "".join(f"    {line}\n" for line in body.splitlines())


def sync_grafana(text: str) -> str:
    """``text`` (a manifest file) with each dashboard's ``<key>.json: |`` block re-rendered."""
    for key, board in render_dashboards().items():
        # The block: its key line, then every line indented deeper than the key (or blank).
        pattern = re.compile(rf"^  {re.escape(key)}: \|\n(?:(?:    .*)?\n)*", re.MULTILINE)
        found = pattern.findall(text)
        if len(found) != 1:
            raise ConfigError(
                f"{key}: expected one '  {key}: |' block in a ConfigMap's data, found {len(found)}"
            )
        match = pattern.search(text)
        assert match is not None  # found it just above
        # Blank lines before the next document belong to the file, not the block.
        trailing = match.group(0)[len(match.group(0).rstrip("\n")) + 1 :]
        text = text[: match.start()] + _block(key, board) + trailing + text[match.end() :]
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m canarymesh.dashboard.grafana")
    parser.add_argument("path", type=Path)
    parser.add_argument("--check", action="store_true", help="Report drift; change nothing.")
    args = parser.parse_args(argv)
    text = args.path.read_text()
    synced = sync_grafana(text)
    if synced == text:
        print(f"{args.path}: the Grafana dashboards are the rendered ones")
        return 0
    if args.check:
        print(f"{args.path}: out of date; run python -m canarymesh.dashboard.grafana {args.path}")
        return 1
    args.path.write_text(synced)
    print(f"{args.path}: dashboards rendered from canarymesh.analysis.panels")
    return 0


if __name__ == "__main__":
    sys.exit(main())

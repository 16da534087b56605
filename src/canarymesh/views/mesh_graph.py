"""The mesh graph (Kiali-like): ``mesh_graph(rates, errors, p99s, window) -> MeshGraph``. Pure.

Called by the dashboard's ``/api/graph`` with the answers of the panel queries
``edge-request-rate``, ``edge-error-rate`` and ``edge-p99`` (:mod:`canarymesh.analysis.panels`).
Nodes are workloads, grouped by app with their versions; edges carry requests/s, the 5xx
percentage and p99. The layout is computed here, not in the browser, so it is deterministic and
tested: apps in columns by their distance from the callers nobody calls (the gateway), versions
stacked inside their app.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from canarymesh.views.promjson import Series, finite, instant

__all__ = ["AppGroup", "GraphEdge", "GraphNode", "MeshGraph", "mesh_graph"]

# Kiali's defaults: an edge is degraded above 0.1% errors and failing above 20%.
DEGRADED_PCT = 0.1
FAILING_PCT = 20.0
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 150, 44, 170, 28, 14


@dataclass(frozen=True, slots=True)
class GraphNode:
    id: str
    workload: str
    namespace: str
    app: str
    version: str
    x: float
    y: float
    rps_in: float
    rps_out: float
    error_pct: float | None
    health: str


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: str
    target: str
    service: str
    rps: float
    error_pct: float
    p99_ms: float | None
    health: str


@dataclass(frozen=True, slots=True)
class AppGroup:
    app: str
    namespace: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class MeshGraph:
    window: str
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    groups: tuple[AppGroup, ...]
    width: float
    height: float


def health_of(error_pct: float | None) -> str:
    if error_pct is None or error_pct <= DEGRADED_PCT:
        return "healthy"
    return "failing" if error_pct >= FAILING_PCT else "degraded"


@dataclass(frozen=True, slots=True)
class _Workload:
    workload: str
    namespace: str
    app: str
    version: str

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.workload}"


def _ends(labels: Mapping[str, str]) -> tuple[_Workload, _Workload]:
    def side(prefix: str) -> _Workload:
        workload = labels.get(f"{prefix}_workload") or "unknown"
        app = labels.get(f"{prefix}_app") or ""
        return _Workload(
            workload,
            labels.get(f"{prefix}_workload_namespace") or "unknown",
            app if app and app != "unknown" else workload,
            # Proxies without a version label (the gateway) report "unknown".
            (labels.get(f"{prefix}_version") or "").replace("unknown", ""),
        )

    return side("source"), side("destination")


def _by_edge(series: Sequence[Series]) -> dict[tuple[str, str, str], float]:
    found: dict[tuple[str, str, str], float] = {}
    for s in series:
        source, target = _ends(s.labels)
        key = (source.id, target.id, s.labels.get("destination_service", ""))
        found[key] = found.get(key, 0.0) + s.last
    return found


def _depths(apps: Sequence[str], links: set[tuple[str, str]]) -> dict[str, int]:
    """Longest distance from an app nobody calls; cycles are cut at the first revisit."""
    callers = {a: {s for s, t in links if t == a and s != a} for a in apps}
    depth: dict[str, int] = {}

    def visit(app: str, seen: frozenset[str]) -> int:
        if app in depth:
            return depth[app]
        parents = [p for p in callers[app] if p not in seen]
        value = 1 + max((visit(p, seen | {app}) for p in parents), default=-1)
        depth[app] = value
        return value

    for app in apps:
        visit(app, frozenset())
    return depth


def mesh_graph(
    rates: Mapping[str, object],
    errors: Mapping[str, object],
    p99s: Mapping[str, object],
    window: str,
) -> MeshGraph:
    """The graph from the ``data`` of the three edge queries' instant answers."""
    rate_series = instant(rates)
    rate = _by_edge(rate_series)
    error = _by_edge(instant(errors))
    p99 = _by_edge(instant(p99s))
    workloads: dict[str, _Workload] = {}
    for s in rate_series:
        for end in _ends(s.labels):
            workloads.setdefault(end.id, end)
    edges = []
    for (source, target, service), rps in sorted(rate.items()):
        key = (source, target, service)
        pct = 100.0 * error.get(key, 0.0) / rps if rps > 0 else 0.0
        p99_ms = finite(p99.get(key, math.nan))
        edges.append(GraphEdge(source, target, service, rps, pct, p99_ms, health_of(pct)))
    return _layout(window, workloads, edges)


def _layout(window: str, workloads: Mapping[str, _Workload], edges: list[GraphEdge]) -> MeshGraph:
    app_key = {w.id: f"{w.namespace}/{w.app}" for w in workloads.values()}
    apps = sorted(set(app_key.values()))
    links = {(app_key[e.source], app_key[e.target]) for e in edges}
    depth = _depths(apps, links)
    columns: dict[int, list[str]] = {}
    for app in apps:
        columns.setdefault(depth[app], []).append(app)
    members = {a: sorted(w for w, k in app_key.items() if k == a) for a in apps}
    nodes: list[GraphNode] = []
    groups: list[AppGroup] = []
    height = 0.0
    for column, column_apps in sorted(columns.items()):
        x = PAD + column * (NODE_W + 2 * PAD + GAP_X)
        y = float(PAD)
        for app in column_apps:
            ids = members[app]
            box_h = len(ids) * NODE_H + (len(ids) - 1) * 8 + 2 * PAD + 16
            namespace, name = app.split("/", 1)
            groups.append(AppGroup(name, namespace, x, y, NODE_W + 2 * PAD, box_h))
            for i, node_id in enumerate(ids):
                nodes.append(
                    _node(workloads[node_id], edges, x + PAD, y + PAD + 16 + i * (NODE_H + 8))
                )
            y += box_h + GAP_Y
        height = max(height, y)
    width = PAD + len(columns) * (NODE_W + 2 * PAD + GAP_X) - GAP_X + PAD
    return MeshGraph(window, tuple(nodes), tuple(edges), tuple(groups), max(width, 0), height)


def _node(w: _Workload, edges: Sequence[GraphEdge], x: float, y: float) -> GraphNode:
    incoming = [e for e in edges if e.target == w.id]
    rps_in = sum(e.rps for e in incoming)
    errors = sum(e.rps * e.error_pct / 100 for e in incoming)
    pct = 100.0 * errors / rps_in if rps_in > 0 else None
    rps_out = sum(e.rps for e in edges if e.source == w.id)
    return GraphNode(
        w.id, w.workload, w.namespace, w.app, w.version, x, y, rps_in, rps_out, pct, health_of(pct)
    )

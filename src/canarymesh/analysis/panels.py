"""PromQL of the dashboards' panels, as data: one definition per query, for two front ends.

The local dashboard (:mod:`canarymesh.dashboard`, :mod:`canarymesh.views`) renders some of these
with concrete values (``interval="1m"``, ``service="reviews\\\\.default\\\\.svc..."``); every
panel target of the Grafana dashboards in ``addons/grafana.yaml`` is one of them rendered with
Grafana's variables (:data:`GRAFANA_VARIABLES`) by :mod:`canarymesh.dashboard.grafana`, which
generates those dashboards, so the two cannot say different things. Rendering goes through
:func:`canarymesh.analysis.queries.render_query`, so a missing variable fails loudly.

Variables: ``interval`` (a rate window), ``range`` (the whole time range shown), ``service`` (a
regex on ``destination_service``, the FQDN), ``namespace`` and ``workload`` (regexes on a
workload's namespace and name), ``canary`` (a regex on the controller's ``canary`` label).

The service panels read ``reporter="destination"``: each request counted once, at the server's
sidecar. The graph's edges, the mesh totals and a workload's outgoing calls read
``reporter="source"``: the caller's proxy knows both ends (the gateway included, whose requests a
server may see from an unknown peer), and its view of errors and latency is what the caller lived
through (fault injection and timeouts included), as in Kiali.
"""

from __future__ import annotations

from collections.abc import Mapping

from canarymesh.analysis.queries import render_query

__all__ = [
    "EDGE_LABELS",
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
_INCOMING = (
    'reporter="destination", destination_workload_namespace=~"{{ namespace }}", '
    'destination_workload=~"{{ workload }}"'
)
_OUTGOING = (
    'reporter="source", source_workload_namespace=~"{{ namespace }}", '
    'source_workload=~"{{ workload }}"'
)
_ROLLOUT = 'namespace=~"{{ namespace }}", canary=~"{{ canary }}"'
_RATE = "[{{ interval }}]"
_REQUESTS = "istio_requests_total"
_DURATION = "istio_request_duration_milliseconds_bucket"
_NOT_5XX = 'response_code!~"5.."'
_4XX = 'response_code=~"4.."'
_5XX = 'response_code=~"5.."'
_MTLS = 'connection_security_policy="mutual_tls"'
QUANTILES = ("0.50", "0.90", "0.99")


def _rate(selector: str, by: str = "", metric: str = _REQUESTS) -> str:
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({metric}{{{selector}}}{_RATE}))"


def _success(selector: str, by: str = "") -> str:
    """Share of the requests that were not answered 5xx (a ratio, 1 = all good)."""
    return f"{_rate(f'{selector}, {_NOT_5XX}', by)} / {_rate(selector, by)}"


def _quantile(q: str, selector: str, by: str = "") -> str:
    grouping = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, {_rate(selector, grouping, _DURATION)})"


def _quantiles(prefix: str, selector: str, by: str = "") -> dict[str, str]:
    return {f"{prefix}-p{q[2:]}": _quantile(q, selector, by) for q in QUANTILES}


PANEL_QUERIES: Mapping[str, str] = {
    # Mesh graph: one series per edge.
    "edge-request-rate": _rate(_SRC, _EDGE),
    "edge-error-rate": _rate(f"{_SRC}, {_5XX}", _EDGE),
    "edge-p99": _quantile("0.99", _SRC, _EDGE),
    # Whole mesh, each request counted once (by its caller).
    "mesh-request-rate": _rate(_SRC),
    "mesh-success-rate": _success(_SRC),
    # `or vector(0)`: no 4xx at all is a zero to show, not an absent series.
    "mesh-4xx-rate": f"{_rate(f'{_SRC}, {_4XX}')} or vector(0)",
    "mesh-5xx-rate": f"{_rate(f'{_SRC}, {_5XX}')} or vector(0)",
    # Every service: one series per destination_service. "services" is also the service picker.
    "services": _rate(_DEST, "destination_service"),
    "services-success-rate": _success(_DEST, "destination_service"),
    **_quantiles("services", _DEST, "destination_service"),
    "services-tcp-received-bytes": _rate(
        _DEST, "destination_service", "istio_tcp_received_bytes_total"
    ),
    "workloads": _rate(
        _DEST, "destination_workload_namespace, destination_workload, destination_version"
    ),
    # One service, all versions together.
    "service-request-rate": _rate(_SERVICE),
    "service-success-rate": _success(_SERVICE),
    "service-p99": _quantile("0.99", _SERVICE),
    "service-requests-by-code": _rate(_SERVICE, "destination_version, response_code"),
    "service-requests-by-caller": _rate(_SERVICE, "source_workload, source_workload_namespace"),
    "service-mtls-share": f"{_rate(f'{_SERVICE}, {_MTLS}')} / {_rate(_SERVICE)}",
    # Response flags are set by the caller's proxy (UF, UO, FI, DI, NR...): reporter="source".
    "service-response-flags": _rate(
        'reporter="source", destination_service=~"{{ service }}", response_flags!="-"',
        "response_flags",
    ),
    # One service, one series per version of it, over time (service view, rollout timeline).
    "version-request-rate": _rate(_SERVICE, "destination_version"),
    # The traffic split: each version's share of the service's requests (a ratio).
    "version-traffic-share": (
        f"{_rate(_SERVICE, 'destination_version')} / ignoring (destination_version) group_left "
        f"{_rate(_SERVICE)}"
    ),
    "version-success-rate": _success(_SERVICE, "destination_version"),
    **_quantiles("version", _SERVICE, "destination_version"),
    # One workload: what it serves...
    "workload-request-rate": _rate(_INCOMING),
    "workload-success-rate": _success(_INCOMING),
    **_quantiles("workload", _INCOMING),
    "workload-requests-by-caller": _rate(_INCOMING, "source_workload, response_code"),
    # ...and what it calls.
    "workload-outgoing-requests": _rate(_OUTGOING, "destination_service, response_code"),
    "workload-outgoing-p99": _quantile("0.99", _OUTGOING, "destination_service"),
    "workload-tcp-sent-bytes": _rate(
        _OUTGOING, "destination_service", "istio_tcp_sent_bytes_total"
    ),
    "workload-tcp-received-bytes": _rate(
        _OUTGOING, "destination_service", "istio_tcp_received_bytes_total"
    ),
    # The canary controller's own series (canarymesh.controller.metrics).
    "rollout-weight": f"canarymesh_rollout_weight{{{_ROLLOUT}}}",
    "rollout-phase": (
        f"max by (namespace, canary, phase) (canarymesh_rollout_phase{{{_ROLLOUT}}}) == 1"
    ),
    "rollout-decisions": (
        "sum by (canary, decision) (increase("
        f"canarymesh_rollout_decisions_total{{{_ROLLOUT}}}[{{{{ range }}}}]))"
    ),
}

# Grafana's spelling of each variable: its built-in rate window and range, and the dashboard
# variables of :mod:`canarymesh.dashboard.grafana` (each dashboard defines the ones it uses).
GRAFANA_VARIABLES: Mapping[str, str] = {
    "interval": "$__rate_interval",
    "range": "$__range",
    "service": "$service",
    "namespace": "$namespace",
    "workload": "$workload",
    "canary": "$canary",
}


def panel_query(name: str, variables: Mapping[str, str]) -> str:
    """The PromQL of panel query ``name``; an unknown name is a KeyError naming the known ones."""
    if name not in PANEL_QUERIES:
        raise KeyError(f"no panel query {name!r}; known: {', '.join(sorted(PANEL_QUERIES))}")
    return render_query(PANEL_QUERIES[name], variables)

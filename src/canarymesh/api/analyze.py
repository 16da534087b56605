"""Cross-resource analysis, as ``istioctl analyze`` does it: references that do not resolve,
conflicts between objects, and configurations that would fail at request time. Pure; called by
``canarymesh analyze`` and the dashboard's config view.

The input set is all there is: a check of a reference runs only when the input holds objects
of the referenced kind (Services for hosts, DestinationRules or the Service for subsets,
Gateways for gateway names, ServiceAccounts...), so analysing a single VirtualService file does
not report every host as unknown. Gateway selectors are the exception: the mesh's ingress
gateway always exists. When two documents define the same object, the later one is analysed
(as ``apply`` would keep it).

Findings that ``istioctl analyze`` also reports carry Istio's code (``CM1015 [IST0173]``); the
checks live by subject in ``analyze_routing``, ``analyze_destinations``, ``analyze_gateways``
and ``analyze_workloads``, over the input as ``analyze_index`` arranges it.
"""

from __future__ import annotations

from collections.abc import Sequence

from canarymesh.api import canary, gateway_api
from canarymesh.api.analyze_destinations import check_destination_rule
from canarymesh.api.analyze_gateways import check_conflicting_gateways, check_gateway_workloads
from canarymesh.api.analyze_index import AnalysisIndex, AnyResource, fqdn
from canarymesh.api.analyze_routing import (
    check_canary,
    check_conflicting_virtual_services,
    check_http_route,
    check_virtual_service,
)
from canarymesh.api.analyze_workloads import (
    check_annotations,
    check_port_names,
    check_service_account,
)
from canarymesh.api.diagnostics import Diagnostic, Diagnostics
from canarymesh.api.objects import select

__all__ = ["analyze", "fqdn"]


def analyze(resources: Sequence[AnyResource]) -> Diagnostics:
    """Every cross-resource problem of the input set."""
    index = AnalysisIndex(resources)
    found: list[Diagnostic] = []
    for vs in index.virtual_services:
        found.extend(check_virtual_service(index, vs))
    found.extend(check_conflicting_virtual_services(index))
    for rule in index.rules:
        found.extend(check_destination_rule(index, rule))
    for gateway in index.gateways:
        found.extend(check_gateway_workloads(index, gateway))
    found.extend(check_conflicting_gateways(index))
    for service in index.services:
        found.extend(check_port_names(service))
    for resource in index.all:
        found.extend(check_annotations(resource))
    for route in select(index.all, gateway_api.HTTPRoute):
        found.extend(check_http_route(index, route))
    for deployment in index.deployments:
        found.extend(check_service_account(index, deployment))
    for rollout in select(index.all, canary.Canary):
        found.extend(check_canary(index, rollout))
    return Diagnostics.of(found)

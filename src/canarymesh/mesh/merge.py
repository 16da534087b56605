"""Precedence resolution: the one effective PeerAuthentication and DestinationRule policy.

Called by ``xds.listeners``/``xds.tls`` (inbound mTLS) and ``xds.clusters`` (traffic policy);
they never look at more than one config object themselves. The rules, each with a unit test in
``tests/unit/mesh/test_merge.py``:

PeerAuthentication (``compose_peer_authentication``), as Istio's ``ComposePeerAuthentication``:

1. With no policy at all the mode is PERMISSIVE.
2. A policy in the root namespace without selector is the mesh-wide default.
3. A policy in the workload's namespace without selector overrides the mesh policy.
4. A policy in the workload's namespace whose selector matches overrides the namespace policy.
5. ``UNSET`` (or no ``mtls``) inherits the mode of the level above.
6. ``portLevelMtls`` counts only on a workload policy (with a selector); an UNSET port inherits.
7. Several policies on one level: the first by name wins (Istio takes the oldest; we keep no
   creation time, and name order is deterministic).

DestinationRule (``find_destination_rule``, ``compose_traffic_policy``):

8. The rule for a host is looked up in the client's namespace, then in the host's namespace,
   then in the root namespace; an exact host beats a wildcard host in the same namespace.
9. Several rules for one host in one namespace are merged: the first by name gives the traffic
   policy, later ones only add subsets whose names are new.
10. A field (loadBalancer, connectionPool, outlierDetection, tls) is taken from the most specific
    level that sets it: subset port-level > subset > rule port-level > rule.

Visibility (``exportTo``) is applied before rule 8 by ``mesh.index`` (tested in
``tests/unit/mesh/test_export_to.py``): a rule not exported to the client's namespace does not
exist for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from canarymesh.api.istio_networking import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    DestinationRule,
    LoadBalancerSettings,
    OutlierDetection,
    PortTrafficPolicy,
    TrafficPolicy,
)
from canarymesh.api.istio_security import PeerAuthentication
from canarymesh.mesh.model import Config, labels_match

MtlsMode = Literal["STRICT", "PERMISSIVE", "DISABLE"]
MODES: dict[str, MtlsMode] = {"STRICT": "STRICT", "PERMISSIVE": "PERMISSIVE", "DISABLE": "DISABLE"}
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EffectiveMtls:
    """The inbound mTLS mode of one workload, with per-port exceptions."""

    mode: MtlsMode
    ports: tuple[tuple[int, MtlsMode], ...] = ()

    def for_port(self, port: int) -> MtlsMode:
        return dict(self.ports).get(port, self.mode)


def first_by_name(configs: Iterable[Config[T]]) -> Config[T] | None:
    return min(configs, key=lambda c: c.name, default=None)


def mode_of(policy: PeerAuthentication | None, inherited: MtlsMode) -> MtlsMode:
    mode = policy.mtls.mode if policy is not None and policy.mtls is not None else None
    return MODES.get(mode or "UNSET", inherited)


def compose_peer_authentication(
    policies: Sequence[Config[PeerAuthentication]],
    namespace: str,
    labels: Mapping[str, str],
    root_namespace: str,
) -> EffectiveMtls:
    """The effective inbound mTLS of a workload (rules 1-7 of the module docstring)."""
    mesh = first_by_name(
        p for p in policies if p.namespace == root_namespace and p.spec.selector is None
    )
    in_namespace = [p for p in policies if p.namespace == namespace]
    ns_level = first_by_name(p for p in in_namespace if p.spec.selector is None)
    workload = first_by_name(
        p
        for p in in_namespace
        if p.spec.selector is not None and labels_match(p.spec.selector.match_labels, labels)
    )
    mode = mode_of(mesh.spec if mesh else None, "PERMISSIVE")
    mode = mode_of(ns_level.spec if ns_level else None, mode)
    mode = mode_of(workload.spec if workload else None, mode)
    if workload is None:
        return EffectiveMtls(mode)
    ports = tuple(
        sorted(
            (int(port), mode_of(PeerAuthentication(mtls=setting), mode))
            for port, setting in workload.spec.port_level_mtls.items()
            if port.isdigit()
        )
    )
    return EffectiveMtls(mode, ports)


@dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    """The traffic policy of one (host, subset, port) after rule 10."""

    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


def host_matches(pattern: str, host: str) -> bool:
    """Istio host matching: exact, or ``*.suffix`` matching any name ending in ``.suffix``."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return pattern == host


def find_destination_rule(
    rules: Sequence[tuple[str, Config[DestinationRule]]],
    host: str,
    client_namespace: str,
    host_namespace: str,
    root_namespace: str,
) -> DestinationRule | None:
    """The merged rule for ``host`` (rules 8-9); ``rules`` pairs each with its resolved host."""
    namespaces = (client_namespace, host_namespace, root_namespace)
    relevant = [
        (h, r) for h, r in rules if h == host or (h.startswith("*") and host_matches(h, host))
    ]
    for namespace in dict.fromkeys(namespaces):
        candidates = [(h, r) for h, r in relevant if r.namespace == namespace]
        exact = [r for h, r in candidates if h == host]
        wild = [r for h, r in candidates if h != host]
        chosen = exact or wild
        if chosen:
            return merge_destination_rules(sorted(chosen, key=lambda r: r.name))
    return None


def merge_destination_rules(rules: Sequence[Config[DestinationRule]]) -> DestinationRule:
    first = rules[0].spec
    subsets = list(first.subsets)
    seen = {s.name for s in subsets}
    for later in rules[1:]:
        for subset in later.spec.subsets:
            if subset.name not in seen:
                subsets.append(subset)
                seen.add(subset.name)
    return first.model_copy(update={"subsets": tuple(subsets)})


def port_level(policy: TrafficPolicy | None, port: int) -> PortTrafficPolicy | None:
    if policy is None:
        return None
    return next(
        (p for p in policy.port_level_settings if p.port is not None and p.port.number == port),
        None,
    )


def overlay(
    base: ResolvedPolicy, layer: TrafficPolicy | PortTrafficPolicy | None
) -> ResolvedPolicy:
    if layer is None:
        return base
    return ResolvedPolicy(
        load_balancer=layer.load_balancer or base.load_balancer,
        connection_pool=layer.connection_pool or base.connection_pool,
        outlier_detection=layer.outlier_detection or base.outlier_detection,
        tls=layer.tls or base.tls,
    )


def compose_traffic_policy(rule: DestinationRule | None, subset: str, port: int) -> ResolvedPolicy:
    """The policy of one cluster (rule 10): the most specific level that sets a field wins."""
    resolved = ResolvedPolicy()
    if rule is None:
        return resolved
    resolved = overlay(resolved, rule.traffic_policy)
    resolved = overlay(resolved, port_level(rule.traffic_policy, port))
    chosen = next((s for s in rule.subsets if s.name == subset), None) if subset else None
    if chosen is not None:
        resolved = overlay(resolved, chosen.traffic_policy)
        resolved = overlay(resolved, port_level(chosen.traffic_policy, port))
    return resolved

"""One test per precedence rule of ``canarymesh.mesh.merge`` (numbered as in its docstring)."""

from __future__ import annotations

from canarymesh.api.istio_networking import (
    DestinationRule,
    LoadBalancerSettings,
    OutlierDetection,
    PortSelector,
    PortTrafficPolicy,
    Subset,
    TrafficPolicy,
)
from canarymesh.api.istio_security import (
    PeerAuthentication,
    PeerAuthenticationMutualTLS,
    WorkloadSelector,
)
from canarymesh.mesh.merge import (
    compose_peer_authentication,
    compose_traffic_policy,
    find_destination_rule,
)
from canarymesh.mesh.model import Config

ROOT = "istio-system"
REVIEWS = {"app": "reviews", "version": "v1"}
HOST = "reviews.default.svc.cluster.local"


def pa(
    name: str,
    namespace: str,
    mode: str | None,
    selector: dict[str, str] | None = None,
    ports: dict[str, str] | None = None,
) -> Config[PeerAuthentication]:
    spec = PeerAuthentication(
        selector=WorkloadSelector(match_labels=selector) if selector is not None else None,
        mtls=PeerAuthenticationMutualTLS(mode=mode) if mode else None,  # type: ignore[arg-type]
        port_level_mtls={
            p: PeerAuthenticationMutualTLS(mode=m)  # type: ignore[arg-type]
            for p, m in (ports or {}).items()
        },
    )
    return Config("PeerAuthentication", name, namespace, spec)


def mode(*policies: Config[PeerAuthentication], port: int = 9080) -> str:
    return compose_peer_authentication(policies, "default", REVIEWS, ROOT).for_port(port)


def test_rule1_no_policy_is_permissive() -> None:
    assert mode() == "PERMISSIVE"


def test_rule2_root_namespace_policy_is_the_mesh_default() -> None:
    assert mode(pa("default", ROOT, "STRICT")) == "STRICT"
    assert mode(pa("default", "other", "STRICT")) == "PERMISSIVE"


def test_rule3_namespace_policy_overrides_mesh() -> None:
    assert mode(pa("default", ROOT, "STRICT"), pa("default", "default", "DISABLE")) == "DISABLE"


def test_rule4_workload_policy_overrides_namespace() -> None:
    policies = (
        pa("default", "default", "STRICT"),
        pa("reviews", "default", "PERMISSIVE", {"app": "reviews"}),
        pa("ratings", "default", "DISABLE", {"app": "ratings"}),
    )
    assert mode(*policies) == "PERMISSIVE"


def test_rule5_unset_inherits_from_the_level_above() -> None:
    assert mode(pa("default", ROOT, "STRICT"), pa("default", "default", "UNSET")) == "STRICT"
    assert (
        mode(pa("default", ROOT, "STRICT"), pa("w", "default", None, {"app": "reviews"}))
        == "STRICT"
    )


def test_rule6_port_level_mtls_counts_only_with_a_selector() -> None:
    selected = pa(
        "w", "default", "STRICT", {"app": "reviews"}, {"9080": "DISABLE", "9090": "UNSET"}
    )
    assert mode(selected, port=9080) == "DISABLE"
    assert mode(selected, port=9090) == "STRICT"
    assert mode(selected, port=8000) == "STRICT"
    namespace_wide = pa("ns", "default", "STRICT", None, {"9080": "DISABLE"})
    assert mode(namespace_wide, port=9080) == "STRICT"


def test_rule7_first_by_name_wins_on_one_level() -> None:
    assert mode(pa("b", "default", "DISABLE"), pa("a", "default", "STRICT")) == "STRICT"


def dr(
    name: str, namespace: str, host: str, *subsets: str, policy: TrafficPolicy | None = None
) -> tuple[str, Config[DestinationRule]]:
    spec = DestinationRule(
        host=host,
        traffic_policy=policy,
        subsets=tuple(Subset(name=s, labels={"version": s}) for s in subsets),
    )
    return host, Config("DestinationRule", name, namespace, spec)


def find(
    rules: list[tuple[str, Config[DestinationRule]]], client: str = "default"
) -> DestinationRule | None:
    return find_destination_rule(rules, HOST, client, "default", ROOT)


def test_rule8_client_namespace_then_host_namespace_then_root() -> None:
    rules = [
        dr("r", ROOT, HOST, "root"),
        dr("r", "default", HOST, "svc"),
        dr("r", "client", HOST, "mine"),
    ]
    assert [s.name for s in find(rules, "client").subsets] == ["mine"]  # type: ignore[union-attr]
    assert [s.name for s in find(rules, "default").subsets] == ["svc"]  # type: ignore[union-attr]
    assert [s.name for s in find(rules[:1], "elsewhere").subsets] == ["root"]  # type: ignore[union-attr]


def test_rule8_exact_host_beats_wildcard_in_one_namespace() -> None:
    rules = [
        dr("a", "default", "*.default.svc.cluster.local", "wild"),
        dr("b", "default", HOST, "exact"),
    ]
    assert [s.name for s in find(rules).subsets] == ["exact"]  # type: ignore[union-attr]
    assert [s.name for s in find(rules[:1]).subsets] == ["wild"]  # type: ignore[union-attr]


def test_rule9_rules_for_one_host_merge_subsets_first_policy_wins() -> None:
    random = TrafficPolicy(load_balancer=LoadBalancerSettings(simple="RANDOM"))
    least = TrafficPolicy(load_balancer=LoadBalancerSettings(simple="LEAST_REQUEST"))
    rules = [
        dr("b", "default", HOST, "v2", "v1", policy=least),
        dr("a", "default", HOST, "v1", policy=random),
    ]
    merged = find(rules)
    assert merged is not None
    assert [s.name for s in merged.subsets] == ["v1", "v2"]
    assert merged.traffic_policy == random


def test_rule10_most_specific_level_sets_each_field() -> None:
    outlier = OutlierDetection(consecutive_5xx_errors=1)
    rule = DestinationRule(
        host=HOST,
        traffic_policy=TrafficPolicy(
            load_balancer=LoadBalancerSettings(simple="RANDOM"),
            outlier_detection=outlier,
            port_level_settings=(
                PortTrafficPolicy(
                    port=PortSelector(number=9080),
                    load_balancer=LoadBalancerSettings(simple="LEAST_REQUEST"),
                ),
            ),
        ),
        subsets=(
            Subset(
                name="v2",
                labels={"version": "v2"},
                traffic_policy=TrafficPolicy(
                    load_balancer=LoadBalancerSettings(simple="ROUND_ROBIN")
                ),
            ),
        ),
    )
    lb = lambda subset, port: compose_traffic_policy(rule, subset, port).load_balancer.simple  # type: ignore[union-attr]  # noqa: E731
    assert lb("", 8080) == "RANDOM"
    assert lb("", 9080) == "LEAST_REQUEST"
    assert lb("v2", 9080) == "ROUND_ROBIN"
    assert compose_traffic_policy(rule, "v2", 9080).outlier_detection == outlier
    assert compose_traffic_policy(None, "", 9080).load_balancer is None

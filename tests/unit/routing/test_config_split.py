"""Config canaries as Istio config: the split documents, and which pods take them. Pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canarymesh.errors import ConfigError
from canarymesh.routing.config_split import (
    CANARY,
    LABEL,
    STABLE,
    choose_pods,
    document_key,
    split_documents,
)

CURRENT_VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "details", "namespace": "default"},
    "spec": {"hosts": ["details"], "http": [{"route": [{"destination": {"host": "details"}}]}]},
}
FAULTY_VS = {
    **CURRENT_VS,
    "spec": {
        "hosts": ["details"],
        "http": [
            {
                "name": "all",
                "fault": {"abort": {"percentage": {"value": 100.0}, "httpStatus": 555}},
                "route": [{"destination": {"host": "details", "subset": "v1"}}],
            }
        ],
    },
}


def _current(*docs: dict[str, object]) -> dict[tuple[str, str, str], dict[str, object]]:
    return {document_key(d): d for d in docs}


def test_the_candidate_rules_come_first_and_only_for_the_canary_label() -> None:
    split, replaced = split_documents(_current(CURRENT_VS), [FAULTY_VS])
    assert replaced == {("VirtualService", "default", "details")}
    (vs,) = split
    rules = vs["spec"]["http"]
    assert rules[0]["name"] == "all-config-canary"
    assert rules[0]["match"] == [{"sourceLabels": {LABEL: CANARY}}]
    assert rules[0]["fault"]["abort"]["httpStatus"] == 555
    # Everyone else keeps the current rule, unchanged and last.
    assert rules[1:] == CURRENT_VS["spec"]["http"]  # type: ignore[index]
    # The inputs are not touched.
    assert "match" not in FAULTY_VS["spec"]["http"][0]  # type: ignore[index]


def test_a_candidate_that_routes_only_some_requests_does_not_leak_the_current_rules() -> None:
    matched = {
        **CURRENT_VS,
        "spec": {
            "hosts": ["details"],
            "http": [
                {
                    "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                    "route": [{"destination": {"host": "details"}}],
                }
            ],
        },
    }
    (vs,), _ = split_documents(_current(CURRENT_VS), [matched])
    rules = vs["spec"]["http"]
    assert rules[0]["match"] == [
        {"headers": {"end-user": {"exact": "jason"}}, "sourceLabels": {LABEL: CANARY}}
    ]
    # The canary's other requests get what the candidate alone would give them: no route.
    assert rules[1] == {
        "name": "unrouted-config-canary",
        "match": [{"sourceLabels": {LABEL: CANARY}}],
        "directResponse": {"status": 404},
    }
    assert rules[2:] == CURRENT_VS["spec"]["http"]  # type: ignore[index]


def test_a_new_virtual_service_keeps_the_host_s_default_route_for_the_others() -> None:
    (vs,), replaced = split_documents({}, [FAULTY_VS])
    assert replaced == set()
    assert vs["spec"]["http"][-1] == {"route": [{"destination": {"host": "details"}}]}


def test_gateway_only_rules_and_changed_hosts_are_refused() -> None:
    gateway_only = {**FAULTY_VS, "spec": {**FAULTY_VS["spec"], "gateways": ["bookinfo-gateway"]}}  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="bound to gateways only"):
        split_documents({}, [gateway_only])
    other_hosts = {**FAULTY_VS, "spec": {**FAULTY_VS["spec"], "hosts": ["details", "x"]}}  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="keeps the hosts"):
        split_documents(_current(CURRENT_VS), [other_hosts])
    with pytest.raises(ConfigError, match="changes VirtualService, DestinationRule"):
        split_documents({}, [{"kind": "Gateway", "metadata": {"name": "g"}}])


def test_a_destination_rule_candidate_selects_the_canary_pods() -> None:
    current = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "details", "namespace": "default"},
        "spec": {"host": "details", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
    }
    candidate = {**current, "spec": {**current["spec"], "trafficPolicy": {"tls": {"mode": "X"}}}}  # type: ignore[dict-item]
    split, replaced = split_documents(_current(current), [candidate])
    assert replaced == {("DestinationRule", "default", "details")}
    kept, selected = split
    assert kept == current
    assert selected["metadata"]["name"] == "details-config-canary"
    assert selected["spec"]["workloadSelector"] == {"matchLabels": {LABEL: CANARY}}
    assert selected["spec"]["trafficPolicy"] == {"tls": {"mode": "X"}}


def test_an_authorization_policy_runs_exactly_one_version_per_pod() -> None:
    current = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "ratings", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "ratings"}}, "action": "ALLOW"},
    }
    candidate = {**current, "spec": {**current["spec"], "rules": [{}]}}  # type: ignore[dict-item]
    (old, new), _ = split_documents(_current(current), [candidate])
    assert old["spec"]["selector"]["matchLabels"] == {"app": "ratings", LABEL: STABLE}
    assert new["spec"]["selector"]["matchLabels"] == {"app": "ratings", LABEL: CANARY}
    assert new["metadata"]["name"] == "ratings-config-canary"


@given(
    pods=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=30, unique=True),
    low=st.integers(1, 100),
    high=st.integers(1, 100),
    seed=st.text(max_size=10),
)
def test_choosing_more_pods_keeps_the_ones_chosen_before(
    pods: list[str], low: int, high: int, seed: str
) -> None:
    low, high = min(low, high), max(low, high)
    fewer, more = choose_pods(pods, low, seed), choose_pods(pods, high, seed)
    assert set(fewer) <= set(more)
    assert 1 <= len(fewer) <= len(pods)
    assert len(more) >= high * len(pods) / 100 - 1e-9
    assert len(choose_pods(pods, 100, seed)) == len(pods)
    assert choose_pods(pods, 0, seed) == []

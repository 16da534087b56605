"""A Canary with ``spec.config``: what validation says about its changed documents, and the
Canary ``apply --canary`` writes."""

from __future__ import annotations

import json

import pytest

from canarymesh.api.loader import load_text
from canarymesh.cli.config_canary import config_canary_document, parse_percent
from canarymesh.errors import ConfigError
from canarymesh.runtime.local.api_models import DocumentText

VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "details"},
    "spec": {
        "hosts": ["details"],
        "http": [
            {
                "fault": {"abort": {"percentage": {"value": 100.0}, "httpStatus": 555}},
                "route": [{"destination": {"host": "details"}}],
            }
        ],
    },
}


def _canary(resources: list[object], **target: object) -> str:
    doc = {
        "apiVersion": "canarymesh.io/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "details-config"},
        "spec": {"target": {"host": "details", **target}, "config": {"resources": resources}},
    }
    return json.dumps(doc)


def _problems(text: str) -> list[str]:
    return [str(d) for d in load_text(text, "c.yaml").diagnostics if d.level == "error"]


def test_a_config_canary_needs_no_virtual_service_or_subsets() -> None:
    assert _problems(_canary([VS])) == []


def test_its_changed_documents_are_validated_as_istio_does() -> None:
    bad_weight = json.loads(json.dumps(VS))
    bad_weight["spec"]["http"][0]["route"][0]["weight"] = -5
    problems = _problems(_canary([bad_weight]))
    assert len(problems) == 1 and "CM0609" in problems[0]
    assert "spec.config.resources[0]" in problems[0] and "weight" in problems[0]


@pytest.mark.parametrize(
    ("resource", "target", "reason"),
    [
        ({**VS, "spec": {**VS["spec"], "gateways": ["gw"]}}, {}, "bind the changed rules to mesh"),
        ({**VS, "spec": {**VS["spec"], "hosts": ["ratings"]}}, {}, "none is the target host"),
        ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}, {}, "changes Istio"),
        (VS, {"stableSubset": "v1", "canarySubset": "v2"}, "not subsets or deployments"),
    ],
)
def test_what_a_config_canary_cannot_roll_out_is_refused(
    resource: dict[str, object], target: dict[str, object], reason: str
) -> None:
    problems = _problems(_canary([resource], **target))
    assert any("CM0609" in p and reason in p for p in problems), problems


def test_without_config_a_canary_still_needs_its_virtual_service() -> None:
    text = _canary([]).replace(', "config": {"resources": []}', "")
    assert any("virtualService is required" in p for p in _problems(text))


def test_apply_canary_writes_a_valid_canary_with_the_percent_as_first_step() -> None:
    text = DocumentText(text=json.dumps(VS), source="new.yaml")
    document = config_canary_document([text], 10, namespace="shop")
    assert document["metadata"] == {"name": "details-config", "namespace": "shop"}
    assert document["spec"]["target"] == {"host": "details.shop.svc.cluster.local"}
    weights = [
        s["setWeight"] for s in document["spec"]["strategy"]["canary"]["steps"] if "setWeight" in s
    ]
    assert weights == [10, 25, 50]
    (resource,) = document["spec"]["config"]["resources"]
    assert resource["metadata"]["namespace"] == "shop"
    assert _problems(json.dumps(document)) == []


@pytest.mark.parametrize("text", ["0%", "100%", "12.5%", "ten", "-3"])
def test_a_percent_outside_1_to_99_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="whole percent"):
        parse_percent(text)
    assert parse_percent("10%") == parse_percent("10") == 10


def test_a_policy_needs_a_host_to_judge_and_other_kinds_are_refused() -> None:
    policy = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "ratings"},
        "spec": {"selector": {"matchLabels": {"app": "ratings"}}},
    }
    with pytest.raises(ConfigError, match="--host"):
        config_canary_document([DocumentText(text=json.dumps(policy))], 10)
    document = config_canary_document([DocumentText(text=json.dumps(policy))], 10, host="ratings")
    assert document["spec"]["target"]["host"] == "ratings"
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}
    with pytest.raises(ConfigError, match="rolls out VirtualService"):
        config_canary_document([DocumentText(text=json.dumps(service))], 10)

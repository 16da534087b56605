"""Flagger's Canary as input: what maps, what is warned about, and the shipped examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.api.flagger import translate_flagger, translate_flagger_provider
from canarymesh.api.loader import load_paths, load_text
from canarymesh.errors import ConfigError
from canarymesh.rollout.plan import build_plan

ROOT = Path(__file__).parents[3]
EXAMPLE = ROOT / "canary-manifests" / "canary-reviews-flagger.yaml"
OURS = ROOT / "canary-manifests" / "canary-reviews.yaml"


def flagger(**analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898, "gateways": ["public-gateway"], "hosts": ["app.example"]},
            "analysis": {"interval": "1m", "threshold": 5, **analysis},
            "autoscalerRef": {"kind": "HorizontalPodAutoscaler", "name": "podinfo"},
        },
    }


def test_the_shipped_example_translates_without_warnings_into_a_valid_canary() -> None:
    translation = translate_flagger(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    assert translation.warnings == ()
    canary = translation.canary
    assert (canary.stable_subset(), canary.canary_subset()) == ("v1", "v3")
    assert canary.analysis.judge == "threshold" and canary.analysis.failure_limit == 5
    assert [s.describe() for s in build_plan(canary)] == [
        "setWeight 10%", "analysis 1m", "setWeight 20%", "analysis 1m", "setWeight 30%",
        "analysis 1m", "setWeight 40%", "analysis 1m", "setWeight 50%", "analysis 1m",
    ]  # fmt: skip
    assert [(w.name, w.type) for w in canary.webhooks] == [("smoke-test", "pre-rollout")]
    manifest = yaml.safe_dump(translation.to_manifest())
    loaded = load_text(manifest, "translated.yaml")
    assert [str(d) for d in loaded.diagnostics] == []
    assert loaded.resources[0].spec == canary


def test_our_example_canary_validates_clean() -> None:
    result = load_paths([OURS])
    assert [str(d) for d in result.diagnostics] == []
    assert [s.describe() for s in build_plan(result.resources[0].spec)] == [  # type: ignore[arg-type]
        "setWeight 10%", "analysis 1m", "setWeight 25%", "analysis 1m", "setWeight 50%",
        "analysis 2m",
    ]  # fmt: skip


def test_what_does_not_map_is_warned_about_field_by_field() -> None:
    document = flagger(
        stepWeight=5,
        maxWeight=30,
        metrics=[
            {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "30s"},
            {"name": "latency", "templateRef": {"name": "latency"}, "thresholdRange": {"max": 1}},
        ],
        webhooks=[
            {"name": "load", "url": "http://tester/", "metadata": {"cmd": "hey -z 1m http://x"}},
            {"name": "ask", "type": "confirm-traffic-increase", "url": "http://gate/"},
        ],
        alerts=[{"name": "slack"}],
    )
    translation = translate_flagger(document)
    assert translation.warnings == (
        "Flagger creates podinfo-primary; we shift between subsets primary -> canary of the "
        "VirtualService podinfo (set the annotations canarymesh.io/stable-subset and "
        "canarymesh.io/canary-subset to choose them)",
        "spec.service.gateways is not mapped: the VirtualService is yours",
        "spec.service.hosts is not mapped: the VirtualService is yours",
        "spec.analysis.metrics[0].interval is not mapped: every metric uses spec.analysis.interval",
        "spec.analysis.metrics[1] (latency) is not mapped: MetricTemplates are not supported, "
        "add a query instead",
        "spec.analysis.webhooks[0] runs a load test through Flagger's tester; "
        "spec.loadGenerator is built in",
        "spec.analysis.webhooks[1] (ask) of type confirm-traffic-increase is not mapped",
        "spec.analysis.alerts[0] has no providerRef.name: not mapped",
        "spec.autoscalerRef is not mapped: the local mesh has no equivalent",
    )
    canary = translation.canary
    assert [m.name for m in canary.analysis.metrics] == ["request-success-rate"]
    assert [(w.name, w.type) for w in canary.webhooks] == [("load", "rollout")]
    weights = [s.value for s in build_plan(canary) if s.kind == "setWeight"]
    assert weights == [5, 10, 15, 20, 25, 30]


@pytest.mark.parametrize(
    ("analysis", "strategy", "plan"),
    [
        ({"iterations": 3, "match": [{"headers": {"x-canary": {"exact": "insider"}}}]},
         "blueGreen", ["analysis 3m"]),
        ({"iterations": 4, "mirror": True, "mirrorWeight": 50}, "mirror",
         ["mirror 50%", "analysis 4m"]),
        ({"stepWeights": [1, 10, 60]}, "canary",
         ["setWeight 1%", "analysis 1m", "setWeight 10%", "analysis 1m", "setWeight 60%",
          "analysis 1m"]),
    ],
)  # fmt: skip
def test_the_strategy_is_inferred_as_flagger_does(
    analysis: dict[str, Any], strategy: str, plan: list[str]
) -> None:
    canary = translate_flagger(flagger(**analysis)).canary
    assert canary.strategy_name() == strategy
    assert [s.describe() for s in build_plan(canary)] == plan


def test_session_affinity_and_deadline_carry_over() -> None:
    document = flagger(stepWeight=10, sessionAffinity={"cookieName": "flagger", "maxAge": 3600})
    document["spec"]["progressDeadlineSeconds"] = 120
    canary = translate_flagger(document).canary
    affinity = canary.strategy.session_affinity
    assert affinity is not None and (affinity.cookie_name, affinity.max_age) == ("flagger", "3600s")
    assert canary.progress_deadline == "120s"


def test_not_a_flagger_canary_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a Flagger Canary"):
        translate_flagger({"apiVersion": "canarymesh.io/v1alpha1", "kind": "Canary"})
    broken = flagger()
    broken["spec"]["targetRef"] = {"kind": "StatefulSet", "name": "x"}
    with pytest.raises(ConfigError, match="targetRef must name a Deployment"):
        translate_flagger(broken)


def test_alerts_become_notifications_by_severity() -> None:
    alerts = [
        {"name": "all", "severity": "info", "providerRef": {"name": "team-slack"}},
        {"name": "on-call", "severity": "error",
         "providerRef": {"name": "on-call", "namespace": "flagger"}},
    ]  # fmt: skip
    canary = translate_flagger(flagger(stepWeight=10, alerts=alerts)).canary
    found = [
        (n.provider_ref.name if n.provider_ref else None, n.events) for n in canary.notifications
    ]
    assert found == [("team-slack", ()), ("on-call", ("rolledBack",))]
    assert canary.notifications[1].provider_ref is not None
    assert canary.notifications[1].provider_ref.namespace == "flagger"


def test_flagger_alert_providers_become_ours_or_are_refused_by_field() -> None:
    provider = {
        "apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
        "metadata": {"name": "on-call", "namespace": "flagger"},
        "spec": {"type": "slack", "channel": "on-call", "username": "flagger",
                 "secretRef": {"name": "on-call-url"}, "proxy": "http://squid:3128"},
    }  # fmt: skip
    manifest, warnings = translate_flagger_provider(provider)
    assert manifest["spec"] == {"type": "slack", "secretRef": {"name": "on-call-url"},
                                "channel": "on-call", "username": "flagger"}  # fmt: skip
    assert warnings == ["Flagger AlertProvider on-call: spec.proxy is not mapped"]
    inline = {**provider, "spec": {"type": "msteams", "address": "https://example/hook"}}
    with pytest.raises(ConfigError, match="spec.address: a webhook URL is a credential"):
        translate_flagger_provider(inline)
    rocket = {**provider, "spec": {"type": "rocket", "secretRef": {"name": "x"}}}
    with pytest.raises(ConfigError, match="spec.type: rocket is not supported"):
        translate_flagger_provider(rocket)

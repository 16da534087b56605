"""Argo Rollouts' Rollout and AnalysisTemplate as input, pure: what our own Argo manifest becomes
revision by revision, how analysis maps (conditions, args, counts, limits), and every refusal
named by its field path on one line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.api.argo import (
    MeshState,
    RolloutTranslation,
    analysis_template_problems,
    pod_template_hash,
    translate_rollout,
)
from canarymesh.api.argo_analysis import Refusals, threshold_of
from canarymesh.api.loader import load_text
from canarymesh.errors import ConfigError

ROOT = Path(__file__).parents[3]
OURS = ROOT / "canary-manifests" / "argo" / "rollouts-demo.yaml"
HASH = "rollouts-pod-template-hash"


def documents() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(OURS.read_text()) if d]
    for doc in docs:
        doc["metadata"].setdefault("namespace", "default")
    return {d["kind"]: d for d in docs}


def templates(docs: dict[str, dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    return {("AnalysisTemplate", "default", "success-rate"): docs["AnalysisTemplate"]}


def with_image(rollout: dict[str, Any], image: str) -> dict[str, Any]:
    changed = copy.deepcopy(rollout)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return changed


def applied(translation: RolloutTranslation, state: MeshState) -> MeshState:
    """The mesh after ``translation`` was applied."""
    rule = next(d for d in translation.documents if d["kind"] == "DestinationRule")
    revisions = dict(state.revisions)
    for doc in translation.documents:
        if doc["kind"] == "Deployment":
            revisions[doc["metadata"]["labels"][HASH]] = doc  # type: ignore[index]
    return MeshState(rule, rule, revisions, state.templates)


def test_our_rollout_revision_by_revision() -> None:
    docs = documents()
    rollout, rule = docs["Rollout"], docs["DestinationRule"]
    state = MeshState(destination_rule=rule, templates=templates(docs))
    first = translate_rollout(rollout, state)
    blue = pod_template_hash(rollout["spec"]["template"])
    assert (first.stable_hash, first.canary_hash, first.canary) == (blue, None, None)
    assert first.summary == f"revision {blue} is stable (the first revision: no steps, as in Argo)"
    deployment, labelled = first.documents
    assert deployment["metadata"] == {
        "name": f"rollouts-demo-{blue}", "namespace": "default",
        "labels": {"canarymesh.io/rollout": "rollouts-demo", HASH: blue},
        "annotations": {"rollout.argoproj.io/revision": "1"},
    }  # fmt: skip
    spec: Any = deployment["spec"]
    assert spec["selector"]["matchLabels"] == {"app": "rollouts-demo", HASH: blue}
    assert spec["template"]["metadata"]["labels"] == {"app": "rollouts-demo", HASH: blue}
    subsets: Any = labelled["spec"]
    assert [s["labels"][HASH] for s in subsets["subsets"]] == [blue, blue]

    yellow_rollout = with_image(rollout, "argoproj/rollouts-demo:yellow")
    second = translate_rollout(yellow_rollout, applied(first, state))
    yellow = pod_template_hash(yellow_rollout["spec"]["template"])
    assert (second.stable_hash, second.canary_hash) == (blue, yellow)
    kinds = [(d["kind"], d["metadata"]["name"]) for d in second.documents]  # type: ignore[index]
    assert kinds == [
        ("Deployment", f"rollouts-demo-{blue}"),
        ("Deployment", f"rollouts-demo-{yellow}"),
        ("DestinationRule", "rollouts-demo-destrule"),
        ("Canary", "rollouts-demo"),
    ]
    stable_doc: Any = second.documents[0]
    assert stable_doc["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":blue")
    canary = second.canary
    assert canary is not None
    assert canary.target.revisions is not None
    assert (canary.target.host, canary.target.virtual_service, canary.target.routes) == (
        "rollouts-demo", "rollouts-demo-vsvc", ("primary",))  # fmt: skip
    assert (canary.stable_subset(), canary.canary_subset()) == ("stable", "canary")
    assert canary.target.revisions.canary_hash == yellow
    steps = [s.model_dump(exclude_none=True, by_alias=True) for s in canary.steps()]
    assert steps == [{"setWeight": 20}, {"pause": {"duration": "10s"}}, {"setWeight": 50},
                     {"analysis": {"duration": "15s"}}, {"setWeight": 80},
                     {"pause": {"duration": "5s"}}]  # fmt: skip
    analysis = canary.analysis
    assert (analysis.judge, analysis.interval, analysis.failure_limit) == ("threshold", "5s", 2)
    (metric,) = analysis.metrics
    assert metric.threshold_range is not None and metric.threshold_range.min == 0.95
    assert metric.query is not None and "{{" not in metric.query
    assert 'destination_service="rollouts-demo.default.svc.cluster.local"' in metric.query
    manifest: Any = second.documents[-1]
    assert manifest["metadata"]["annotations"] == {"canarymesh.io/rollout-id": yellow}
    # What it becomes validates as our own kinds do.
    made = load_text(yaml.safe_dump_all(list(second.documents)), "made.yaml")
    assert not made.diagnostics.has_errors, made.diagnostics.lines()

    # Applied again unchanged: the same rollout (the id is the canary's hash).
    assert translate_rollout(yellow_rollout, applied(first, state)).canary_hash == yellow
    # rollout start restamps it.
    restarted = translate_rollout(yellow_rollout, applied(first, state), rollout_id="r2")
    assert restarted.documents[-1]["metadata"]["annotations"]["canarymesh.io/rollout-id"] == "r2"  # type: ignore[index]


def test_promoted_revisions_and_the_history_limit() -> None:
    docs = documents()
    rollout = docs["Rollout"]
    state = MeshState(destination_rule=docs["DestinationRule"], templates=templates(docs))
    colors = ["blue", "yellow", "green", "red", "purple"]
    for color in colors:
        translation = translate_rollout(with_image(rollout, f"argoproj/rollouts-demo:{color}"),
                                        state)  # fmt: skip
        state = applied(translation, state)
        # The router's promotion: the stable subset moves to the canary's hash.
        if translation.canary_hash is not None:
            rule: Any = copy.deepcopy(state.applied_rule)
            for subset in rule["spec"]["subsets"]:
                subset["labels"][HASH] = translation.canary_hash
            state = MeshState(rule, rule, state.revisions, state.templates)
    last = translate_rollout(with_image(rollout, "argoproj/rollouts-demo:purple"), state)
    assert last.canary_hash is None and last.summary.endswith("is stable (unchanged)")
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in last.documents  # type: ignore[index]
                if d["kind"] == "Deployment"}  # fmt: skip
    assert sorted(replicas.values()) == [0, 0, 0, 0, 1]
    # revisionHistoryLimit 2: the two oldest scaled-down revisions go.
    images = [with_image(rollout, f"argoproj/rollouts-demo:{c}") for c in colors[:2]]
    oldest = [f"rollouts-demo-{pod_template_hash(r['spec']['template'])}" for r in images]
    assert list(last.prune) == oldest


def rollout_with(**canary: Any) -> dict[str, Any]:
    docs = documents()
    rollout = copy.deepcopy(docs["Rollout"])
    rollout["spec"]["strategy"]["canary"].update(canary)
    return rollout


def refusals(rollout: dict[str, Any], state: MeshState | None = None) -> list[str]:
    docs = documents()
    state = state or MeshState(destination_rule=docs["DestinationRule"], templates=templates(docs))
    with pytest.raises(ConfigError) as err:
        translate_rollout(rollout, state)
    return str(err.value).splitlines()


R = "Rollout default/rollouts-demo"


@pytest.mark.parametrize(
    ("change", "line"),
    [
        ({"canaryService": "c", "stableService": "s"},
         f"{R} spec.strategy.canary.canaryService: host-level traffic splitting is not supported:"
         " route between the subsets of trafficRouting.istio.destinationRule"),
        ({"trafficRouting": {"nginx": {"stableIngress": "x"}, "istio": {}}},
         f"{R} spec.strategy.canary.trafficRouting.nginx: the nginx traffic router is not "
         "supported: use istio"),
        ({"trafficRouting": None},
         f"{R} spec.strategy.canary.trafficRouting: traffic routing is required: the local mesh "
         "shifts requests with trafficRouting.istio, not by replica counts"),
        ({"steps": [{"setWeight": 10}, {"experiment": {"templates": []}}]},
         f"{R} spec.strategy.canary.steps[1].experiment: experiments are not supported"),
        ({"steps": [{"setMirrorRoute": {"name": "m"}}]},
         f"{R} spec.strategy.canary.steps[0].setMirrorRoute: mirror routes are not supported; a "
         "Canary's strategy.mirror copies traffic to the canary"),
        ({"steps": [{"pause": {"duration": "ten"}}]},
         f"{R} spec.strategy.canary.steps[0].pause.duration: 'ten': must be seconds or a "
         "duration such as 30s, 5m, 1h"),
        ({"analysis": {"templates": [{"templateName": "missing"}]}},
         f"{R} spec.strategy.canary.analysis.templates[0]: AnalysisTemplate default/missing is "
         "neither in the input nor applied"),
        ({"analysis": {"templates": [{"templateName": "success-rate"}]}},
         "AnalysisTemplate success-rate spec.args[0]: argument 'service' was not supplied by the "
         "Rollout"),
        ({"pingPong": {"pingService": "a", "pongService": "b"}},
         f"{R} spec.strategy.canary.pingPong: ping-pong services are not supported"),
    ],
)  # fmt: skip
def test_what_we_cannot_run_is_refused_by_field(change: dict[str, Any], line: str) -> None:
    rollout = rollout_with(**change)
    if rollout["spec"]["strategy"]["canary"].get("trafficRouting") is None:
        del rollout["spec"]["strategy"]["canary"]["trafficRouting"]
    assert line in refusals(rollout)


def test_every_refusal_of_a_rollout_is_listed_at_once() -> None:
    rollout = rollout_with(steps=[{"setHeaderRoute": {"name": "h"}}, {"plugin": {"name": "p"}}])
    rollout["spec"]["paused"] = True
    rollout["spec"]["strategy"]["blueGreen"] = {"activeService": "a"}
    lines = refusals(rollout)
    assert lines == [
        f"{R} spec.paused: a paused Rollout is not supported: apply it unpaused and use "
        "`canarymesh rollout pause`",
        f"{R} spec.strategy.blueGreen: the blue-green strategy is not supported: use a canary "
        "strategy (or our Canary's strategy.blueGreen)",
    ]
    steps_only = refusals(rollout_with(steps=[{"setHeaderRoute": {"name": "h"}},
                                              {"plugin": {"name": "p"}}]))  # fmt: skip
    assert [line.split(":")[0] for line in steps_only] == [
        f"{R} spec.strategy.canary.steps[0].setHeaderRoute",
        f"{R} spec.strategy.canary.steps[1].plugin",
    ]


def test_a_workload_ref_and_a_missing_destination_rule_are_refused() -> None:
    rollout = documents()["Rollout"]
    rollout["spec"]["workloadRef"] = {"kind": "Deployment", "name": "web"}
    del rollout["spec"]["template"]
    assert f"{R} spec.workloadRef: a Rollout that references a Deployment is not supported: " \
           "write the pod template in spec.template" in refusals(rollout)  # fmt: skip
    with pytest.raises(ConfigError, match="DestinationRule default/rollouts-demo-destrule .* is "
                       "neither in the input nor applied"):  # fmt: skip
        translate_rollout(documents()["Rollout"], MeshState(templates=templates(documents())))


def template(**metric: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "t", "namespace": "default"},
        "spec": {"metrics": [{"name": "m", "successCondition": "result[0] >= 0.9",
                              "provider": {"prometheus": {"query": "up"}}, **metric}]},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "problem"),
    [
        ({"provider": {"job": {"spec": {}}}},
         "AnalysisTemplate t spec.metrics[0].provider.job: the job provider is not supported: "
         "only prometheus runs on the local mesh"),
        ({"provider": {"web": {"url": "http://x"}}},
         "AnalysisTemplate t spec.metrics[0].provider.web: the web provider is not supported: "
         "only prometheus runs on the local mesh"),
        ({"provider": {"prometheus": {"query": "up", "rangeQuery": {"step": "1m"}}}},
         "AnalysisTemplate t spec.metrics[0].provider.prometheus.rangeQuery: range queries are "
         "not supported: write an instant query"),
        ({"successCondition": "all(result, # < 1000)"},
         "AnalysisTemplate t spec.metrics[0].successCondition: `all(result, # < 1000)` is not "
         "supported: write a comparison of result[0] (or result) with a number, several joined "
         "by &&"),
        ({"successCondition": "len(result) == 0 || result[0] >= 0.95"},
         "AnalysisTemplate t spec.metrics[0].successCondition: `len(result) == 0 || result[0] >= "
         "0.95` is not supported: write a comparison of result[0] (or result) with a number, "
         "several joined by &&"),
        ({"failureLimit": -1},
         "AnalysisTemplate t spec.metrics[0].failureLimit: -1: must be 0 or more"),
    ],
)  # fmt: skip
def test_template_refusals(metric: dict[str, Any], problem: str) -> None:
    refused, _ = analysis_template_problems("AnalysisTemplate", template(**metric))
    assert refused == [problem]


def test_a_dry_run_template_is_refused_and_provider_settings_are_noted() -> None:
    doc = template(provider={"prometheus": {"query": "up", "address": "http://p:9090",
                                            "timeout": 40}})  # fmt: skip
    doc["spec"]["dryRun"] = [{"metricName": "m"}]
    refused, warnings = analysis_template_problems("AnalysisTemplate", doc)
    assert refused == ["AnalysisTemplate t spec.dryRun: dry-run metrics are not supported: their "
                       "failures would roll back here"]  # fmt: skip
    assert warnings == [
        "AnalysisTemplate t spec.metrics[0].provider.prometheus.address: not mapped: the canary "
        "controller queries its own Prometheus",
        "AnalysisTemplate t spec.metrics[0].provider.prometheus.timeout: not mapped: the canary "
        "controller queries its own Prometheus",
    ]


@pytest.mark.parametrize(
    ("success", "failure", "bounds"),
    [
        ("result[0] >= 0.95", None, (0.95, None)),
        ("result >= .5 && result <= 2", None, (0.5, 2.0)),
        ("0.9 < result[0]", None, (0.9, None)),
        ("asFloat(result[0]) <= 500", None, (None, 500.0)),
        (None, "result[0] > 0.05", (None, 0.05)),
        (None, "result[0] < 10", (10.0, None)),
        ("result[0] <= 1", "result[0] < 0.9", (0.9, 1.0)),
        ("result[0] == 1", None, (1.0, 1.0)),
    ],
)
def test_conditions_become_threshold_ranges(
    success: str | None, failure: str | None, bounds: tuple[float | None, float | None]
) -> None:
    out = Refusals()
    assert threshold_of(success, failure, "T", "m", out) == bounds
    assert out.refused == []


def test_conditions_that_cannot_hold_together_are_refused() -> None:
    out = Refusals()
    assert threshold_of("result[0] >= 2", "result[0] >= 1", "T", "m", out) is None
    assert [r.line() for r in out.refused] == [
        "T m: the conditions can never hold together (min 2.0 > max 1.0)"
    ]


def test_args_come_from_the_rollout_its_metadata_and_its_revisions() -> None:
    docs = documents()
    at = copy.deepcopy(docs["AnalysisTemplate"])
    at["spec"]["args"] += [{"name": "canary-hash"}, {"name": "team"}, {"name": "window",
                                                                       "value": "30s"}]  # fmt: skip
    at["spec"]["metrics"][0]["provider"]["prometheus"]["query"] = (
        'x{h="{{args.canary-hash}}",t="{{ args.team }}",n="{{args.namespace}}"}[{{args.window}}]'
    )
    rollout = copy.deepcopy(docs["Rollout"])
    rollout["metadata"]["labels"] = {"team": "checkout"}
    rollout["spec"]["strategy"]["canary"]["analysis"]["args"] += [
        {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
    ]
    rollout["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 50}]
    state = MeshState(destination_rule=docs["DestinationRule"],
                      templates={("AnalysisTemplate", "default", "success-rate"): at})  # fmt: skip
    first = translate_rollout(rollout, state)
    second = translate_rollout(with_image(rollout, "argoproj/rollouts-demo:red"),
                               applied(first, state))  # fmt: skip
    assert second.canary is not None
    (metric,) = second.canary.analysis.metrics
    assert metric.query == f'x{{h="{second.canary_hash}",t="checkout",n="default"}}[30s]'


def test_argo_notification_annotations_become_subscriptions() -> None:
    docs = documents()
    rollout = copy.deepcopy(docs["Rollout"])
    rollout["metadata"]["annotations"] = {
        "notifications.argoproj.io/subscribe.on-rollout-completed.slack": "deploys",
        "notifications.argoproj.io/subscribe.on-rollout-aborted.slack": "deploys",
        "notifications.argoproj.io/subscribe.on-analysis-run-failed.slack": "deploys",
        "notifications.argoproj.io/subscribe.on-rollout-step-completed.hooks": "",
        "notifications.argoproj.io/subscribe.on-scaling-replica-set.slack": "deploys",
    }
    state = MeshState(destination_rule=docs["DestinationRule"], templates=templates(docs))
    first = translate_rollout(rollout, state)
    second = translate_rollout(with_image(rollout, "argoproj/rollouts-demo:red"),
                               applied(first, state))  # fmt: skip
    assert second.canary is not None
    found = [(n.provider_ref.name if n.provider_ref else "", n.events)
             for n in second.canary.notifications]  # fmt: skip
    assert found == [("hooks", ("step",)), ("slack", ("rolledBack", "promoted"))]
    assert any("on-scaling-replica-set is not mapped" in w for w in second.warnings)
    assert any("goes to the AlertProvider slack" in w for w in second.warnings)


def test_a_template_hash_is_stable_and_follows_the_template() -> None:
    rollout = documents()["Rollout"]
    same = copy.deepcopy(rollout["spec"]["template"])
    assert pod_template_hash(rollout["spec"]["template"]) == pod_template_hash(same)
    other = with_image(rollout, "argoproj/rollouts-demo:red")["spec"]["template"]
    found = pod_template_hash(other)
    assert found != pod_template_hash(same) and len(found) == 10
    assert set(found) <= set("bcdfghjklmnpqrstvwxz2456789")

"""The Canary kind: what validation says about each field, with codes and field paths, and the
defaults every consumer reads from the spec's getters."""

from __future__ import annotations

import datetime
import textwrap

import pytest

from canarymesh.api.canary import DEFAULT_STEPS, Canary
from canarymesh.api.loader import load_text

HEAD = """\
apiVersion: canarymesh.io/v1alpha1
kind: Canary
metadata:
  name: reviews
spec:
"""
TARGET = """\
  target: {host: reviews, virtualService: reviews, stableSubset: v1, canarySubset: v3}
"""


def diagnose(spec: str) -> list[str]:
    text = HEAD + textwrap.indent(textwrap.dedent(spec), "  ")
    return [
        line.split(" Canary default/reviews ", 1)[1]
        for line in load_text(text, "c.yaml").diagnostics.lines()
    ]


def codes(spec: str) -> list[str]:
    text = HEAD + textwrap.indent(textwrap.dedent(spec), "  ")
    return [d.code for d in load_text(text, "c.yaml").diagnostics]


def test_a_complete_canary_validates_clean() -> None:
    spec = """\
        target:
          host: reviews
          virtualService: reviews
          stableSubset: v1
          canarySubset: v3
          routes: [primary]
        strategy:
          canary:
            steps:
            - setWeight: 10
            - pause: {duration: 30s}
            - setWeight: 50
            - analysis: {duration: 2m}
            - pause: {}
            match:
            - headers: {end-user: {exact: jason}}
            - headers: {cookie: {regex: "^(.*?;)?(canary=always)(;.*)?$"}}
          sessionAffinity: {cookieName: canary, maxAge: 1h}
        analysis:
          judge: statistical
          alpha: 0.01
          interval: 15s
          metrics:
          - name: request-success-rate
          - name: request-duration
          - name: ratings-errors
            query: sum(rate(my_errors{version="{{ version }}"}[{{ interval }}]))
            thresholdRange: {max: 1}
        webhooks:
        - {name: smoke, type: pre-rollout, url: "http://tester.default:8080/smoke"}
        - {name: gate, type: confirm-promotion, url: "https://gate.example/approve"}
        loadGenerator: {url: "http://reviews:9080/reviews/0", rps: 20}
        progressDeadline: 10m
    """
    assert diagnose(spec) == []


def test_step_weights_must_be_percentages_that_increase() -> None:
    spec = (
        TARGET
        + """\
  strategy:
    canary:
      steps: [{setWeight: 20}, {setWeight: 20}, {setWeight: 101}, {setWeight: 30}]
"""
    )
    # One line of YAML: the diagnostics of a line are ordered by code.
    assert diagnose(spec) == [
        "spec.strategy.canary.steps[2].setWeight: 101: must be between 0 and 100",
        "spec.strategy.canary.steps[1].setWeight: 20: weights must increase; "
        "an earlier step sets 20",
    ]
    assert codes(spec) == ["CM0103", "CM0603"]


def test_a_step_does_exactly_one_thing() -> None:
    spec = (
        TARGET
        + """\
  strategy:
    canary:
      steps: [{setWeight: 10, pause: {}}, {}]
      maxWeight: 50
"""
    )
    assert diagnose(spec) == [
        "spec.strategy.canary: use steps or stepWeight/maxWeight, not both",
        "spec.strategy.canary.steps[0]: a step sets exactly one of setWeight, pause, analysis "
        "(found setWeight and pause)",
        "spec.strategy.canary.steps[1]: a step sets exactly one of setWeight, pause, analysis "
        "(found nothing)",
        "spec.strategy.canary.maxWeight: 50: maxWeight needs stepWeight",
    ]
    assert set(codes(spec)) == {"CM0604"}


def test_a_ramp_needs_max_weight_at_least_step_weight() -> None:
    spec = TARGET + "  strategy: {canary: {stepWeight: 30, maxWeight: 20}}\n"
    assert diagnose(spec) == [
        "spec.strategy.canary.maxWeight: 20: maxWeight 20 is below stepWeight 30: the ramp "
        "would have no step"
    ]


def test_one_strategy_at_a_time_and_mirror_percentages() -> None:
    spec = (
        TARGET
        + """\
  strategy:
    blueGreen: {analysisDuration: 1m}
    mirror: {percentage: 0}
"""
    )
    assert diagnose(spec) == [
        "spec.strategy: choose one of canary, blueGreen, mirror (found blueGreen and mirror)",
        "spec.strategy.mirror.percentage: 0.0: must be in (0, 100]",
    ]


@pytest.mark.parametrize(
    ("alpha", "ok"), [(0.01, True), (0.2, True), (0.0, False), (0.25, False), (-1.0, False)]
)
def test_alpha_is_a_false_alarm_rate_up_to_one_in_five(alpha: float, ok: bool) -> None:
    found = diagnose(TARGET + f"  analysis: {{alpha: {alpha}}}\n")
    expected = f"spec.analysis.alpha: {alpha}: alpha is a false-alarm rate in (0, 0.2]"
    assert found == ([] if ok else [expected])
    assert codes(TARGET + f"  analysis: {{alpha: {alpha}}}\n") == ([] if ok else ["CM0605"])


def test_analysis_metrics_are_checked() -> None:
    spec = (
        TARGET
        + """\
  analysis:
    judge: threshold
    interval: 30
    failureLimit: 0
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99, max: 90}
    - name: request-success-rate
      thresholdRange: {min: 95}
    - name: latency
      tolerance: 0.5
    - name: custom
      query: sum(rate(x{svc="{{ service }}"}[{{ interval }}]))
      thresholdRange: {max: 1}
"""
    )
    found = diagnose(spec)
    assert found == [
        "spec.analysis.interval: 30: must be a duration of at least 1ms, such as 7s, 0.5s, "
        "100ms or 1m",
        "spec.analysis.failureLimit: 0: must be 1 or more",
        "spec.analysis.metrics[0].thresholdRange: min 99 is above max 90",
        'spec.analysis.metrics[1].name: "request-success-rate": a metric is named twice',
        'spec.analysis.metrics[2].name: "latency": not a built-in metric (request-success-rate, '
        "request-duration); a custom metric needs a query",
        "spec.analysis.metrics[2]: metric latency is judged by thresholds and needs "
        "thresholdRange min or max",
        "spec.analysis.metrics[2]: tolerance and effectSize apply to the statistical judge's "
        "built-in metrics",
        "spec.analysis.metrics[2].tolerance: 0.5: must be between 1 and 100",
        'spec.analysis.metrics[3].query: "sum(rate(x{svc=\\"{{ service }}\\"}[{{ interval }}]))": '
        "unknown template variable service (known: host, interval, namespace, version)",
    ]


def test_the_statistical_judge_fields_are_checked() -> None:
    spec = (
        TARGET
        + """\
  strategy: {canary: {adaptive: true, steps: [{setWeight: 10}, {analysis: {duration: 1m}}]}}
  analysis:
    power: 0.3
    history: 10
    metrics:
    - {name: request-success-rate, tolerance: 2, effectSize: 1.5}
    - {name: request-duration, effectSize: 1}
"""
    )
    assert diagnose(spec) == [
        "spec.analysis.power: 0.3: power is the chance of catching an effectSize regression, in "
        "[0.5, 1)",
        "spec.analysis.history: 10: must be a duration of at least 1ms, such as 7s, 0.5s, "
        "100ms or 1m",
        "spec.analysis.metrics[0].effectSize: 1.5: effectSize 1.5 must be above tolerance 2: a "
        "regression within the tolerance is no regression",
        "spec.analysis.metrics[1].effectSize: 1.0: must be in (1, 1000]",
    ]
    fine = TARGET + "  strategy: {canary: {adaptive: true}}\n  analysis: {history: 0s}\n"
    assert diagnose(fine) == []
    threshold = TARGET + "  strategy: {canary: {adaptive: true}}\n  analysis: {judge: threshold}\n"
    assert diagnose(threshold) == [
        "spec.strategy.canary.adaptive: true: adaptive mode needs the statistical judge"
    ]


def test_target_names_two_different_versions_one_way() -> None:
    both = """\
  target:
    host: reviews
    virtualService: reviews
    stableSubset: v1
    deployments: {stable: reviews-v1, canary: reviews-v3}
"""
    assert diagnose(both) == ["spec.target: set stableSubset/canarySubset or deployments, not both"]
    same = "  target: {host: reviews, virtualService: r, stableSubset: v1, canarySubset: v1}\n"
    assert diagnose(same) == ["spec.target: stable and canary are both v1"]
    half = "  target: {host: reviews, virtualService: r, canarySubset: v3}\n"
    assert diagnose(half) == ["spec.target.stableSubset: stableSubset is required with the other"]
    none = "  target: {host: reviews, virtualService: r, routes: [a, a]}\n"
    assert diagnose(none) == [
        'spec.target.routes: ["a", "a"]: a route is named twice',
        "spec.target: set stableSubset and canarySubset (or deployments)",
    ]
    assert set(codes(none)) == {"CM0606"}


def test_a_step_as_long_as_the_deadline_is_a_warning() -> None:
    spec = (
        TARGET
        + """\
  progressDeadline: 5m
  strategy:
    canary:
      steps: [{setWeight: 10}, {analysis: {duration: 5m}}]
"""
    )
    assert diagnose(spec) == [
        'spec.strategy.canary.steps[1].analysis.duration: "5m": not shorter than '
        "progressDeadline 5m: the rollout would roll back before the step ends"
    ]
    assert codes(spec) == ["CM0607"]
    text = HEAD + textwrap.indent(textwrap.dedent(spec), "  ")
    assert not load_text(text, "c.yaml").diagnostics.has_errors


def test_webhooks_and_load_generator() -> None:
    spec = (
        TARGET
        + """\
  webhooks:
  - {name: a, type: rollout, url: "http://tester/x", timeout: 5}
  - {name: a, type: rollback, url: "ftp://tester/x"}
  loadGenerator: {url: "reviews:9080", rps: 0}
"""
    )
    assert diagnose(spec) == [
        "spec.webhooks[0].timeout: 5: must be a duration of at least 1ms, such as 7s, 0.5s, "
        "100ms or 1m",
        'spec.webhooks[1].name: "a": a webhook is named twice',
        'spec.webhooks[1].url: "ftp://tester/x": must be an http or https URL',
        "spec.loadGenerator.rps: 0.0: must be in (0, 10000]",
        'spec.loadGenerator.url: "reviews:9080": must be an http or https URL',
    ]
    assert codes(spec) == ["CM0107", "CM0608", "CM0608", "CM0103", "CM0608"]


def test_an_unknown_webhook_type_is_refused_by_the_schema() -> None:
    spec = TARGET + '  webhooks: [{name: b, type: sometime, url: "http://t/x"}]\n'
    assert diagnose(spec) == [
        'spec.webhooks[0].type: "sometime": must be one of pre-rollout, rollout, '
        "confirm-promotion, post-rollout, rollback"
    ]


def test_defaults_live_in_the_getters() -> None:
    spec = Canary.model_validate(
        {"target": {"host": "reviews", "virtualService": "reviews",
                    "deployments": {"stable": "reviews-v1", "canary": "reviews-v3"}}}
    )  # fmt: skip
    assert spec.strategy_name() == "canary"
    assert spec.steps() == DEFAULT_STEPS
    assert [s.set_weight for s in spec.steps() if s.set_weight is not None] == [10, 25, 50]
    assert (spec.stable_subset(), spec.canary_subset()) == ("reviews-v1", "reviews-v3")
    assert spec.interval() == datetime.timedelta(seconds=30)
    assert spec.deadline() == datetime.timedelta(minutes=10)
    assert [m.name for m in spec.metric_checks()] == ["request-success-rate", "request-duration"]
    ramp = Canary.model_validate(
        {"target": {"host": "r", "virtualService": "r", "stableSubset": "a", "canarySubset": "b"},
         "strategy": {"canary": {"stepWeight": 20, "maxWeight": 60}}}
    )  # fmt: skip
    weights = [s.set_weight for s in ramp.steps() if s.set_weight is not None]
    assert weights == [20, 40, 60]
    assert all(s.analysis is not None for s in ramp.steps() if s.set_weight is None)

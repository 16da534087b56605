"""``canarymesh rollout simulate``: a Canary played against simulated traffic, beside a
Flagger-style plan, with the plan's warnings; and its flags' checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from canarymesh.cli.main import cli as main
from canarymesh.cli.simulate import parse_share
from canarymesh.errors import ConfigError

SHORT = """
apiVersion: canarymesh.io/v1alpha1
kind: Canary
metadata: {name: reviews, namespace: default}
spec:
  target: {host: reviews, virtualService: reviews, stableSubset: v1, canarySubset: v3}
  strategy:
    canary: {steps: [{setWeight: 20}, {analysis: {duration: 20s}}]}
  analysis:
    history: 2m
    metrics:
      - name: request-success-rate
      - name: queue
        query: sum(rate(queue{version="{{ version }}"}[{{ interval }}]))
        thresholdRange: {max: 5}
"""


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    path = tmp_path / "canary.yaml"
    path.write_text(SHORT)
    return path


def test_a_failing_canary_is_rolled_back_by_both_plans(canary: Path) -> None:
    result = CliRunner().invoke(main, ["rollout", "simulate", "-f", str(canary), "--rps", "20",
                                       "--canary-error-rate", "30%", "--runs", "3", "--jobs", "1",
                                       "-o", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (
        report["traffic"]["canaryErrorRate"] == 0.3 and report["traffic"]["historySeconds"] == 120
    )
    ours, flagger = report["plans"]
    assert (ours["plan"], ours["rolledBack"], ours["runs"]) == ("this Canary", 3, 3)
    assert flagger["plan"] == "Flagger-style" and flagger["rolledBack"] == 3
    assert ours["medianRollbackSeconds"] < flagger["medianRollbackSeconds"]
    assert ours["meanFailedRequests"] < flagger["meanFailedRequests"]
    assert "custom metrics are not simulated: queue" in result.stderr


def test_the_text_report_and_what_the_plan_cannot_see(canary: Path) -> None:
    result = CliRunner().invoke(main, ["rollout", "simulate", "-f", str(canary), "--rps", "2",
                                       "--runs", "2", "--jobs", "1", "--no-baseline"])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "2 req/s; stable errors 0.5%, canary 0.5%; 120s of the stable's history" in text
    assert "this Canary" in text and "Flagger-style" not in text
    assert "rolled back" in text and "time to promote (median)" in text
    assert "plan warning: request-success-rate: at 2 req/s this plan catches a 3x" in text


@pytest.mark.parametrize(("text", "share"), [("0.5%", 0.005), ("0.005", 0.005), ("100%", 1.0)])
def test_rates_read_as_percent_or_share(text: str, share: float) -> None:
    assert parse_share(text) == pytest.approx(share)


@pytest.mark.parametrize("text", ["abc", "150%", "-1", "nan"])
def test_a_bad_rate_is_refused_with_its_text(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a rate"):
        parse_share(text)

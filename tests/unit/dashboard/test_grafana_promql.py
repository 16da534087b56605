"""The panel queries compute what their panels claim, in Prometheus' own engine (promtool).

``promtool test rules`` evaluates each query, rendered with concrete values as the local
dashboard renders it (Grafana substitutes its variables with the same values), over synthetic
counter and histogram series with known rates, and compares the samples with the expected ones.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.analysis.panels import panel_query

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian: prometheus) absent")

REVIEWS = "reviews.default.svc.cluster.local"
VARIABLES = {
    "interval": "5m",
    "range": "10m",
    "service": REVIEWS.replace(".", "\\\\."),
    "namespace": "default",
    "workload": "reviews-v1",
    "canary": "reviews",
}


def _requests(version: str, code: str, per_minute: int, service: str = REVIEWS) -> dict[str, str]:
    app = service.split(".")[0]
    labels = (
        f'reporter="destination", destination_service="{service}", '
        f'destination_workload="{app}-{version}", destination_workload_namespace="default", '
        f'destination_version="{version}", response_code="{code}"'
    )
    return {"series": f"istio_requests_total{{{labels}}}", "values": f"0+{per_minute}x20"}


def _bucket(le: str, per_minute: int) -> dict[str, str]:
    labels = (
        f'reporter="destination", destination_service="{REVIEWS}", '
        f'destination_version="v1", le="{le}"'
    )
    return {
        "series": f"istio_request_duration_milliseconds_bucket{{{labels}}}",
        "values": f"0+{per_minute}x20",
    }


SERIES = [
    # reviews v1: 1.5/s answered 200, 0.5/s answered 503; v2: 1/s, all 200.
    _requests("v1", "200", 90),
    _requests("v1", "503", 30),
    _requests("v2", "200", 60),
    # Another service's traffic, which no reviews panel may count.
    _requests("v1", "200", 600, "ratings.default.svc.cluster.local"),
    # reviews v1 latency: half the requests within 10 ms, all within 100 ms.
    _bucket("10", 60),
    _bucket("100", 120),
    _bucket("+Inf", 120),
    {
        "series": 'canarymesh_rollout_weight{namespace="default", canary="reviews"}',
        "values": "20x20",
    },
    {
        "series": (
            'canarymesh_rollout_phase{namespace="default", canary="reviews", phase="Progressing"}'
        ),
        "values": "1x20",
    },
    {
        "series": (
            'canarymesh_rollout_phase{namespace="default", canary="reviews", phase="Succeeded"}'
        ),
        "values": "0x20",
    },
    {
        "series": (
            'canarymesh_rollout_decisions_total{namespace="default", canary="reviews", '
            'decision="promote"}'
        ),
        "values": "0+1x20",
    },
]

# query name -> expected samples at 20m: (labels, value)
EXPECTED: dict[str, list[tuple[str, float]]] = {
    "version-request-rate": [
        ('{destination_version="v1"}', 2.0),
        ('{destination_version="v2"}', 1.0),
    ],
    "version-traffic-share": [
        ('{destination_version="v1"}', 2 / 3),
        ('{destination_version="v2"}', 1 / 3),
    ],
    "version-success-rate": [
        ('{destination_version="v1"}', 0.75),
        ('{destination_version="v2"}', 1.0),
    ],
    # Rank 1 of 2 ends the first bucket (10 ms); rank 1.98 is 98% into the (10, 100] bucket.
    "version-p50": [('{destination_version="v1"}', 10.0)],
    "version-p99": [('{destination_version="v1"}', 98.2)],
    "service-request-rate": [("{}", 3.0)],
    "service-success-rate": [("{}", 2.5 / 3)],
    "workload-success-rate": [("{}", 0.75)],
    "mesh-4xx-rate": [("{}", 0.0)],
    "rollout-weight": [('canarymesh_rollout_weight{namespace="default", canary="reviews"}', 20.0)],
    "rollout-phase": [('{namespace="default", canary="reviews", phase="Progressing"}', 1.0)],
    "rollout-decisions": [('{canary="reviews", decision="promote"}', 10.0)],
}


def _tests() -> dict[str, Any]:
    cases = [
        {
            "expr": panel_query(name, VARIABLES),
            "eval_time": "20m",
            "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
        }
        for name, samples in EXPECTED.items()
    ]
    return {"tests": [{"interval": "1m", "input_series": SERIES, "promql_expr_test": cases}]}


def test_panel_queries_compute_what_their_panels_show(tmp_path: Path) -> None:
    path = tmp_path / "panels_test.yml"
    path.write_text(yaml.safe_dump(_tests()))
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    # The harness above would pass vacuously if promtool ignored the samples: it must not.
    tests = _tests()
    tests["tests"][0]["promql_expr_test"][0]["exp_samples"][0]["value"] = 2.5
    path = tmp_path / "panels_test.yml"
    path.write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert 'got: {destination_version="v1"} 2E+00' in result.stdout + result.stderr

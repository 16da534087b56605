"""``canarymesh validate`` and ``canarymesh analyze`` through click's CliRunner, whole outputs."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from canarymesh.cli.main import cli

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  ports:
  - port: 9080
    name: http
  selector:
    app: reviews
"""
RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
"""
ROUTE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: {weight}
    - destination:
        host: reviews
        subset: {subset}
      weight: {other}
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_validate_a_clean_file(tmp_path: Path) -> None:
    path = write(tmp_path, "rule.yaml", RULE)
    assert run("validate", "-f", path) == (0, "checked 1 resource: 0 errors, 0 warnings, 0 info\n")


def test_validate_reports_every_error_and_exits_2(tmp_path: Path) -> None:
    write(tmp_path, "vs.yaml", ROUTE.format(weight=-5, subset="v1", other=100))
    write(tmp_path, "broken.yaml", "kind: [\n")
    code, output = run("validate", "-f", str(tmp_path))
    vs, broken = tmp_path / "vs.yaml", tmp_path / "broken.yaml"
    assert code == 2
    assert output == (
        f"CM0001 error {broken}:2: expected the node content, but found '<stream end>'\n"
        f"CM0201 [IST0106] error {vs}:13 VirtualService default/reviews "
        "spec.http[0].route[0].weight: -5: must not be negative\n"
        "checked 1 resource: 2 errors, 0 warnings, 0 info\n"
    )


def test_analyze_warnings_pass_unless_asked_to_fail(tmp_path: Path) -> None:
    service = write(tmp_path, "a-service.yaml", SERVICE)
    rule = write(tmp_path, "b-rule.yaml", RULE)
    route = write(tmp_path, "c-route.yaml", ROUTE.format(weight=80, subset="v1", other=10))
    expected = (
        # No Deployment in the input runs reviews v1 (Istio's IST0173 too).
        f"CM1015 [IST0173] warning {rule}:8 DestinationRule default/reviews "
        'spec.subsets[0].name: "v1": subset v1 selects no pods of reviews (labels version=v1)\n'
        f"CM0203 warning {route}:9 VirtualService default/reviews spec.http[0].route: "
        "the weights add up to 90, not 100; they are read as proportions of 90\n"
        "checked 3 resources: 0 errors, 2 warnings, 0 info\n"
    )
    assert run("analyze", "-f", service, "-f", rule, "-f", route) == (0, expected)
    args = ("analyze", "-f", service, "-f", rule, "-f", route, "--fail-on", "warning")
    assert run(*args) == (1, expected)


def test_analyze_finds_references_validate_cannot(tmp_path: Path) -> None:
    rule = write(tmp_path, "rule.yaml", RULE)
    route = write(tmp_path, "route.yaml", ROUTE.format(weight=90, subset="v3", other=10))
    assert run("validate", "-f", rule, "-f", route)[0] == 0
    code, output = run("analyze", "-f", rule, "-f", route)
    assert code == 2
    assert output == (
        f"CM1001 [IST0101] error {route}:16 VirtualService default/reviews "
        'spec.http[0].route[1].destination.subset: "v3": '
        "subset v3 of host reviews is not defined by any DestinationRule\n"
        "checked 2 resources: 1 error, 0 warnings, 0 info\n"
    )


def test_json_output_for_machines(tmp_path: Path) -> None:
    route = write(tmp_path, "route.yaml", ROUTE.format(weight=-1, subset="v1", other=100))
    code, output = run("validate", "-f", route, "-o", "json")
    assert code == 2
    assert json.loads(output) == {
        "diagnostics": [
            {
                "code": "CM0201",
                "istioCode": "IST0106",
                "level": "error",
                "file": route,
                "line": 13,
                "resource": "VirtualService default/reviews",
                "field": "spec.http[0].route[0].weight",
                "value": "-1",
                "reason": "must not be negative",
            }
        ],
        "summary": {"resources": 1, "error": 1, "warning": 0, "info": 0},
    }


def test_a_missing_path_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert run("validate", "-f", str(missing)) == (
        2,
        f"CM0010 error {missing}:0: no such file or directory\n"
        "checked 0 resources: 1 error, 0 warnings, 0 info\n",
    )


def test_standard_input_is_read_for_a_dash(tmp_path: Path) -> None:
    rule = write(tmp_path, "rule.yaml", RULE)
    route = ROUTE.format(weight=-5, subset="v1", other=100)
    result = CliRunner().invoke(cli, ["analyze", "-f", rule, "-f", "-"], input=route)
    assert (result.exit_code, result.output) == (
        2,
        "CM0201 [IST0106] error <stdin>:13 VirtualService default/reviews "
        "spec.http[0].route[0].weight: -5: must not be negative\n"
        "checked 2 resources: 1 error, 0 warnings, 0 info\n",
    )

"""``canarymesh render`` through click's CliRunner: output, proxy lookup, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from canarymesh.cli.main import cli
from tests.unit.xds.meshes import SAMPLES

BOOKINFO = str(SAMPLES / "platform" / "kube" / "bookinfo.yaml")
NETWORKING = SAMPLES / "networking"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["render", *args])
    return result.exit_code, result.stdout, result.stderr


def test_render_prints_the_proxy_snapshot_as_yaml() -> None:
    code, out, _ = run(
        "-f",
        BOOKINFO,
        "-f",
        str(NETWORKING / "destination-rule-all.yaml"),
        "-f",
        str(NETWORKING / "virtual-service-reviews-test-v2.yaml"),
        "--proxy",
        "productpage-v1",
    )
    assert code == 0
    document = yaml.safe_load(out)
    assert document["proxy"] == "productpage-v1-0"
    clusters = {c["name"] for c in document["resources"]["clusters"]}
    assert "outbound|9080|v2|reviews.default.svc.cluster.local" in clusters
    assert len(document["version"]) == 16


def test_render_is_deterministic_and_speaks_json() -> None:
    args = ("-f", BOOKINFO, "--proxy", "istio-ingressgateway", "-o", "json")
    first, second = run(*args), run(*args)
    assert first == second
    assert json.loads(first[1])["proxy"] == "istio-ingressgateway"


def test_unknown_proxy_exits_1_and_lists_the_known_ones() -> None:
    code, _, err = run("-f", BOOKINFO, "--proxy", "nope")
    assert code == 1
    assert err == (
        "error: no proxy named 'nope'; known proxies: details-v1-0, istio-ingressgateway, "
        "productpage-v1-0, ratings-v1-0, reviews-v1-0, reviews-v2-0, reviews-v3-0\n"
    )


def test_invalid_manifest_exits_1_with_its_diagnostic(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
        "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n"
        "      weight: -5\n"
    )
    code, out, err = run("-f", str(bad), "--proxy", "x")
    assert code == 1
    assert out == ""
    assert "weight" in err and "bad.yaml" in err

"""``canarymesh render --bootstrap`` output is a config the real Envoy accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from canarymesh.cli.main import cli
from tests.integration.test_envoy_validate_golden import envoy_binary
from tests.unit.xds.meshes import SAMPLES

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("proxy", ["productpage-v1", "istio-ingressgateway", "mysqldb-v1"])
def test_rendered_bootstrap_passes_envoy_validate(proxy: str, tmp_path: Path) -> None:
    files = [
        SAMPLES / "platform/kube/bookinfo.yaml",
        SAMPLES / "platform/kube/bookinfo-mysql.yaml",
        SAMPLES / "networking/bookinfo-gateway.yaml",
        SAMPLES / "networking/destination-rule-all-mtls.yaml",
        SAMPLES / "networking/virtual-service-reviews-jason-v2-v3.yaml",
    ]
    args = ["render", "--bootstrap", "-o", "json", "--proxy", proxy, "--telemetry-port", "15999"]
    for file in files:
        args += ["-f", str(file)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    config = tmp_path / "envoy.json"
    config.write_text(result.stdout)
    checked = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(config), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

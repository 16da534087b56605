"""Every Istio Bookinfo sample translates for every proxy, consistently, and every resource
is accepted by Envoy's protobuf schema the way the ADS server packs it (dynamic form)."""

from __future__ import annotations

from pathlib import Path

import pytest

from canarymesh.mesh.model import MeshSettings
from canarymesh.runtime.local.codec import load_all_protos, pack
from canarymesh.xds.generate import generate
from tests.unit.xds.meshes import SAMPLES, bookinfo, case_mesh, case_proxies, golden_cases

SAMPLE_FILES = sorted(
    str(p.relative_to(SAMPLES))
    for p in SAMPLES.rglob("*.yaml")
    if p.parent.name in ("networking", "gateway-api", "kube") and p.name != "bookinfo.yaml"
)
# GAMMA routes name the per-version Services of bookinfo-versions.yaml.
NEEDS_PARTNER = {
    "gateway-api/route-all-v1.yaml": "platform/kube/bookinfo-versions.yaml",
    "gateway-api/route-reviews-v1.yaml": "platform/kube/bookinfo-versions.yaml",
    "gateway-api/route-reviews-v3.yaml": "platform/kube/bookinfo-versions.yaml",
    "gateway-api/route-reviews-50-v3.yaml": "platform/kube/bookinfo-versions.yaml",
    "gateway-api/route-reviews-90-10.yaml": "platform/kube/bookinfo-versions.yaml",
}


@pytest.fixture(scope="module", autouse=True)
def protos() -> None:
    load_all_protos()


@pytest.mark.parametrize("sample", SAMPLE_FILES)
def test_every_sample_translates_for_every_proxy(sample: str) -> None:
    files = [sample] + ([NEEDS_PARTNER[sample]] if sample in NEEDS_PARTNER else [])
    mesh = bookinfo(*files)
    assert mesh.proxies
    for proxy in mesh.proxies:
        snapshot = generate(mesh, proxy)
        assert snapshot.problems() == [], f"{sample}: {proxy.id}"
        for type_url, resources in snapshot.resources:
            for resource in resources:
                pack(type_url, resource)


def test_the_sample_list_is_complete() -> None:
    assert len(SAMPLE_FILES) >= 40
    assert all(Path(SAMPLES / s).is_file() for s in SAMPLE_FILES)


@pytest.mark.parametrize("case", golden_cases(), ids=lambda p: p.name)
def test_every_golden_resource_packs_as_protobuf(case: Path) -> None:
    mesh = case_mesh(case, MeshSettings(telemetry_port=15999))
    for proxy_id in case_proxies(case):
        for type_url, resources in generate(mesh, mesh.proxy(proxy_id)).resources:
            for resource in resources:
                pack(type_url, resource)

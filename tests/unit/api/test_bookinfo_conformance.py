"""Istio's own Bookinfo YAML is a conformance suite: it must load, validate and analyse clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from canarymesh.api.analyze import analyze
from canarymesh.api.diagnostics import Diagnostics
from canarymesh.api.loader import load_paths, load_text
from tests.unit.api.undeployed import unexpected

BOOKINFO = Path(__file__).parents[2] / "data" / "istio" / "samples" / "bookinfo"
KUBE = BOOKINFO / "platform" / "kube"
NETWORKING = BOOKINFO / "networking"
SAMPLES = sorted(BOOKINFO.rglob("*.yaml"))
VIRTUAL_SERVICE_FILES = sorted(
    p for p in NETWORKING.glob("*.yaml") if "kind: VirtualService" in p.read_text()
)
# The Deployments Istio's tasks apply before routing to these subsets (bookinfo.yaml has only
# the v1 of details and ratings); without them the route goes to pods that do not exist.
COMPANIONS = {
    "virtual-service-details-v2.yaml": ["bookinfo-details-v2.yaml"],
    "virtual-service-ratings-db.yaml": ["bookinfo-ratings-v2.yaml", "bookinfo-db.yaml"],
    "virtual-service-ratings-mysql.yaml": ["bookinfo-ratings-v2-mysql.yaml", "bookinfo-mysql.yaml"],
    "virtual-service-ratings-mysql-vm.yaml": ["bookinfo-ratings-v2-mysql-vm.yaml"],
}


def problems(diagnostics: Diagnostics) -> list[str]:
    return [str(d) for d in diagnostics if d.level in ("error", "warning")]


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_every_sample_file_validates_without_errors(sample: Path) -> None:
    result = load_paths([sample])
    assert [str(d) for d in result.diagnostics.errors] == []
    # Only files made entirely of foreign kinds (EnvoyFilter, Ingress, cert-manager) type nothing.
    skipped_only = all(d.code in ("CM0008", "CM0012") for d in result.diagnostics)
    assert result.resources or (skipped_only and result.diagnostics)


def test_the_whole_sample_tree_loads_every_manifest() -> None:
    result = load_paths([BOOKINFO])
    kinds = {r.kind for r in result.resources}
    assert {"Service", "Deployment", "VirtualService", "DestinationRule", "Gateway"} <= kinds
    assert {"HTTPRoute", "ServiceEntry", "ServiceAccount", "Secret"} <= kinds
    assert not result.diagnostics.has_errors


def test_only_foreign_kinds_are_skipped() -> None:
    diagnostics = load_paths([BOOKINFO]).diagnostics
    skipped = sorted(
        (d.code, (d.resource or "").split()[0])
        for d in diagnostics
        if d.code in ("CM0008", "CM0012")
    )
    assert skipped == [
        ("CM0008", "EnvoyFilter"),
        ("CM0008", "EnvoyFilter"),
        ("CM0008", "Ingress"),
        ("CM0012", "Certificate"),
        ("CM0012", "ClusterIssuer"),
    ]


CLEAN_VS_FILES = [p for p in VIRTUAL_SERVICE_FILES if p.name != "certmanager-gateway.yaml"]


@pytest.mark.parametrize("vs_file", CLEAN_VS_FILES, ids=[p.name for p in CLEAN_VS_FILES])
def test_analyze_bookinfo_with_each_virtual_service_file_is_clean(vs_file: Path) -> None:
    companions = [KUBE / name for name in COMPANIONS.get(vs_file.name, [])]
    paths = [KUBE / "bookinfo.yaml", *companions, NETWORKING / "destination-rule-all.yaml", vs_file]
    result = load_paths(paths)
    found = unexpected(result.diagnostics + analyze(result.resources), result.resources)
    if vs_file.name == "egress-rule-google-apis.yaml":
        # Istio reports it too: TLS origination that names no CA checks the system's roots.
        assert [f.split()[:2] for f in found] == [["CM1022", "[IST0129]"]]
    else:
        assert found == []


def test_routing_to_a_version_that_is_not_deployed_is_reported() -> None:
    paths = [
        KUBE / "bookinfo.yaml",
        NETWORKING / "destination-rule-all.yaml",
        NETWORKING / "virtual-service-ratings-db.yaml",
    ]
    result = load_paths(paths)
    found = analyze(result.resources)
    assert [(d.code, d.field, d.value) for d in found if d.level != "info"] == [
        ("CM1015", "spec.subsets[1].name", '"v2"'),  # ratings v2 selects no pod...
        ("CM1015", "spec.subsets[2].name", '"v2-mysql"'),
        ("CM1015", "spec.subsets[3].name", '"v2-mysql-vm"'),
        ("CM1015", "spec.subsets[1].name", '"v2"'),  # (details v2)
        ("CM1002", "spec.http[0].route[0].destination.subset", '"v2"'),  # ... and is routed to
    ]


def test_certmanager_gateway_routes_to_a_service_bookinfo_does_not_define() -> None:
    paths = [KUBE / "bookinfo.yaml", NETWORKING / "certmanager-gateway.yaml"]
    result = load_paths(paths)
    found = analyze(result.resources)
    assert [(d.code, d.value) for d in found] == [("CM1003", '"cert-manager-resolver"')]


def test_gateway_api_samples_with_the_version_services_are_clean() -> None:
    paths = [KUBE / "bookinfo.yaml", KUBE / "bookinfo-versions.yaml"]
    paths += sorted((BOOKINFO / "gateway-api").glob("*.yaml"))
    result = load_paths(paths)
    assert problems(result.diagnostics + analyze(result.resources)) == []


def test_gateway_api_routes_without_the_version_services_are_reported() -> None:
    paths = [KUBE / "bookinfo.yaml", BOOKINFO / "gateway-api" / "route-reviews-90-10.yaml"]
    result = load_paths(paths)
    found = [(d.code, d.value) for d in analyze(result.resources)]
    assert found == [("CM1009", '"reviews-v1"'), ("CM1009", '"reviews-v2"')]


def test_mtls_destination_rules_under_strict_peer_authentication_are_clean() -> None:
    strict = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
"""
    result = load_paths([KUBE / "bookinfo.yaml", NETWORKING / "destination-rule-all-mtls.yaml"])
    policy = load_text(strict, "strict.yaml")
    resources = result.resources + policy.resources
    found = result.diagnostics + policy.diagnostics + analyze(resources)
    assert unexpected(found, resources) == []

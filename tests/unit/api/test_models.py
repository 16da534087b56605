"""The input models: complete against Istio's schemas, strict where Istio is, lenient where
Kubernetes is, and the Resource envelope's helpers."""

from __future__ import annotations

import types
import typing
from functools import cache
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from canarymesh.api import istio_networking as net
from canarymesh.api import istio_security as sec
from canarymesh.api import kube
from canarymesh.api.kinds import KINDS
from canarymesh.api.objects import ObjectMeta, Resource, select
from canarymesh.api.source import Source

CRDS = Path(__file__).parents[2] / "data/istio/manifests/charts/base/files/crd-all.gen.yaml"
ISTIO_KINDS = [k for k in KINDS if k.group.endswith("istio.io")]


@cache
def spec_schemas() -> dict[str, dict[str, object]]:
    found = {}
    with CRDS.open(encoding="utf-8") as stream:
        for crd in yaml.load_all(stream, Loader=yaml.CSafeLoader):
            if crd:
                for version in crd["spec"]["versions"]:
                    schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
                    found[f"{crd['spec']['names']['kind']}/{version['name']}"] = schema
    return found


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside Optional/tuple/dict annotations, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _is_open_mapping(annotation: object) -> bool:
    if typing.get_origin(annotation) is dict:
        return _model_in(annotation) is None
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_is_open_mapping(a) for a in typing.get_args(annotation))
    return False


def missing_fields(schema: dict[str, object], model: type[BaseModel], path: str) -> list[str]:
    """Schema properties that ``model`` (recursively) does not accept."""
    missing = []
    by_alias = {(f.alias or name): f for name, f in model.model_fields.items()}
    properties = schema.get("properties", {})
    assert isinstance(properties, dict)
    for name, sub in properties.items():
        field = by_alias.get(name) or model.model_fields.get(name)
        if field is None:
            missing.append(f"{path}.{name}")
            continue
        if _is_open_mapping(field.annotation):
            continue
        inner = _model_in(field.annotation)
        if inner is None:
            continue
        if sub.get("type") == "array":
            sub = sub.get("items", {})
        elif "additionalProperties" in sub and "properties" not in sub:
            sub = sub["additionalProperties"]
        missing += missing_fields(sub, inner, f"{path}.{name}")
    return missing


@pytest.mark.parametrize(
    ("kind", "version"),
    [(k, v) for k in ISTIO_KINDS for v in k.versions],
    ids=[f"{k.kind}/{v}" for k in ISTIO_KINDS for v in k.versions],
)
def test_models_accept_every_field_of_istio_schema(kind: typing.Any, version: str) -> None:
    # extra="forbid" must never refuse a field Istio accepts.
    schema = spec_schemas()[f"{kind.kind}/{version}"]
    assert missing_fields(schema, kind.model, "spec") == []


def test_istio_models_refuse_unknown_fields_and_are_frozen() -> None:
    with pytest.raises(ValidationError) as info:
        net.HTTPRouteDestination.model_validate({"destination": {"host": "r"}, "weigth": 5})
    assert info.value.errors()[0]["type"] == "extra_forbidden"
    route = net.HTTPRouteDestination.model_validate({"destination": {"host": "r"}, "weight": 5})
    with pytest.raises(ValidationError):
        route.weight = 6  # type: ignore[misc]


def test_models_take_yaml_names_and_python_names() -> None:
    by_alias = net.HTTPFaultInjection.model_validate(
        {"abort": {"httpStatus": 500, "percentage": {"value": 100}}}
    )
    by_name = net.HTTPFaultInjection(
        abort=net.HTTPFaultInjection.Abort(http_status=500, percentage=net.Percent(value=100))
    )
    assert by_alias == by_name
    rule = sec.Rule.model_validate({"from": [{"source": {"principals": ["a"]}}]})
    assert rule.from_[0].source == sec.Source(principals=("a",))


def test_strict_scalars_refuse_quoted_numbers() -> None:
    with pytest.raises(ValidationError):
        net.HTTPRouteDestination.model_validate({"destination": {"host": "r"}, "weight": "5"})


def test_kube_models_keep_fields_they_do_not_type() -> None:
    deployment = kube.Deployment.model_validate(
        {
            "selector": {"matchLabels": {"app": "r"}},
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": {"app": "r"}},
                "spec": {
                    "containers": [{"name": "r", "image": "i", "securityContext": {}}],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        }
    )
    assert deployment.replica_count == 1
    assert deployment.model_extra == {"strategy": {"type": "Recreate"}}
    assert deployment.template.spec.model_extra == {"volumes": [{"name": "tmp", "emptyDir": {}}]}


def test_string_match_names_the_kinds_set() -> None:
    assert net.StringMatch(exact="a", regex="b").kinds_set == ("exact", "regex")
    assert net.StringMatch().kinds_set == ()


def _resource(kind: str, namespace: str | None, spec: BaseModel) -> Resource[BaseModel]:
    meta = ObjectMeta(name="reviews", namespace=namespace)
    lines = {("spec", "hosts", 0): 7, ("spec",): 5}
    return Resource("v1", kind, meta, spec, Source("f.yaml", 0, 1), lines)


def test_resource_identity_and_namespace_defaults() -> None:
    vs = _resource("VirtualService", None, net.VirtualService(hosts=("reviews",)))
    assert vs.key == ("VirtualService", "default", "reviews")
    assert vs.namespace_or("bookinfo") == "bookinfo"
    assert vs.display_name == "default/reviews"
    placed = vs.with_namespace("bookinfo")
    assert placed.key == ("VirtualService", "bookinfo", "reviews")
    assert placed.with_namespace("other") is placed
    namespace = _resource("Namespace", None, kube.Namespace())
    assert namespace.key == ("Namespace", "", "reviews")


def test_resource_finds_the_line_of_a_field_or_its_nearest_ancestor() -> None:
    vs = _resource("VirtualService", "ns", net.VirtualService())
    assert vs.line_of(("spec", "hosts", 0)) == 7
    assert vs.line_of(("spec", "http", 3, "route")) == 5
    assert vs.line_of(("metadata",)) == 1


def test_select_keeps_the_resources_of_one_spec_type_in_order() -> None:
    a = _resource("VirtualService", "a", net.VirtualService())
    b = _resource("DestinationRule", "b", net.DestinationRule(host="r"))
    c = _resource("VirtualService", "c", net.VirtualService())
    assert select([a, b, c], net.VirtualService) == [a, c]
    assert select([a, b, c], net.DestinationRule) == [b]
